"""The lineage graph across linked projects: Mermaid, DOT, JSON, and the self-contained HTML page opened in a
real headless browser (Debian's chromium, which `make test` installs when it can)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from pvc.sample import make_image_project


@pytest.fixture
def family(tmp_path, cli) -> dict[str, Path]:
    """source (v1 tagged `baseline`, v2) -> restored from v1 (one commit) -> restored from that, not committed."""
    source = make_image_project(tmp_path / "source", items=6, datasets=1, seed=9)
    assert cli("init", source).code == 0
    train = tmp_path / "train.json"
    train.write_text(json.dumps({"app": "train-yolo", "params": {"epochs": 30, "lr": 0.01}}))
    assert cli("commit", "-m", "labelled", "--description-json", train, cwd=source).code == 0
    assert cli("tag", "baseline", "1").code == 0
    (source / "NOTES.txt").write_text("more\n")
    assert cli("commit", "-m", "more notes").code == 0
    restored, again = tmp_path / "restored", tmp_path / "again"
    assert cli("restore", "baseline", "--to", restored).code == 0
    assert cli("commit", "-m", "augmented", "--description", "flip and crop", cwd=restored).code == 0
    assert cli("restore", "1", "--to", again, "--class", "car").code == 0
    return {"source": source, "restored": restored, "again": again}


def test_graph_spans_every_linked_project(family, cli):
    doc = cli("graph", "--json", cwd=family["restored"]).json()
    assert {p["path"] for p in doc["projects"]} == {str(p) for p in family.values()}
    assert [p["path"] for p in doc["projects"]] == [str(family[k]) for k in ("source", "restored", "again")]
    assert [p["current"] for p in doc["projects"]] == [False, True, False]
    nodes = {(n["project"], n["number"], n["kind"]): n for n in doc["nodes"]}
    keys = {p["path"]: p["key"] for p in doc["projects"]}
    v1 = nodes[(keys[str(family["source"])], 1, "version")]
    assert v1["tags"] == ["baseline"] and v1["app"] == "train-yolo" and v1["params"] == {"epochs": 30, "lr": 0.01}
    assert v1["items"] == 6 and sum(v1["classes"].values()) > 0
    pending = nodes[(keys[str(family["again"])], None, "pending")]
    edges = {(e["from"], e["to"], e["kind"]) for e in doc["edges"]}
    restored_v1 = f"{keys[str(family['restored'])]}:1"
    assert (v1["id"], restored_v1, "origin") in edges and (restored_v1, pending["id"], "origin") in edges
    assert (v1["id"], f"{keys[str(family['source'])]}:2", "parent") in edges

    mermaid = cli("graph").out
    assert mermaid.startswith("flowchart TB") and mermaid.count("subgraph") == 3
    assert "v1 #91;baseline#93;" in mermaid and "app: train-yolo" in mermaid and "-.->|restored|" in mermaid
    dot = cli("graph", "--format", "dot").out
    assert dot.startswith("digraph lineage {") and dot.count("subgraph cluster_") == 3
    assert '[style=dashed, label="restored"]' in dot and 'params: {\\"epochs\\":30,\\"lr\\":0.01}' in dot
    assert cli("graph", "--format", "svg").code == 1


def test_graph_after_the_source_version_is_gone(family, cli):
    assert cli("delete", "baseline", "--yes", cwd=family["source"]).code == 0
    doc = cli("graph", "--json", cwd=family["restored"]).json()
    missing = [n for n in doc["nodes"] if n["kind"] == "missing"]
    assert len(missing) == 1 and missing[0]["number"] == 1 and "gone" in missing[0]["title"]
    assert any(e["from"] == missing[0]["id"] and e["kind"] == "origin" for e in doc["edges"])


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("chromium is not installed: `make test` installs Debian's chromium package, and could not here")
    return found


def test_html_page_draws_every_node_in_a_real_browser(family, cli, tmp_path):
    page = tmp_path / "lineage.html"
    result = cli("graph", "--format", "html", "-o", page, "--json", cwd=family["restored"])
    assert result.code == 0 and result.json()["output"] == str(page)
    nodes = result.json()["nodes"]
    html = page.read_text()
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", html)  # nothing is fetched
    browser = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
               "--window-size=1400,1000"]
    dom = subprocess.run([*browser, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    drawn = re.findall(r'<g class="node ([a-z ]+)" data-id="([^"]+)"', dom.stdout)
    assert sorted(i for _, i in drawn) == sorted(n["id"] for n in nodes)  # the script ran and drew every node
    assert dom.stdout.count('class="edge origin"') == 2 and dom.stdout.count('class="edge parent"') == 1
    for text in ("v1 [baseline]", "labelled", "app: train-yolo", "augmented", "restored, not committed yet"):
        assert text in dom.stdout.replace("&amp;", "&")
    shot = tmp_path / "lineage.png"
    run = subprocess.run([*browser, f"--screenshot={shot}", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and shot.is_file(), run.stderr[-2000:]
    with Image.open(shot) as image:
        rgb = image.convert("RGB")
        pixels = [rgb.getpixel((x, y)) for y in range(0, rgb.height, 2) for x in range(0, rgb.width, 2)]
        orange = sum(1 for r, g, b in pixels if r > 170 and 40 < g < 110 and b < 50)  # the dashed origin edges
        inked = sum(1 for r, g, b in pixels if r + g + b < 200)  # the text of the boxes
    assert orange > 15 and inked > 200
