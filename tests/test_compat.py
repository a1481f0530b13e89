"""Stores written by an older pvc still work with this one.

Two archives of image, video and volume projects with their `.pvc/` (tests/data/make_format1_stores.py says how
each was made): format1-stores.tar.gz by pvc at commit ca748cd (store format 1, refs format 1), and
refs2-stores.tar.gz by pvc at commit 086c351 (refs format 2, before tags were written and stores had an id).
Each version must list, verify and restore byte for byte, and committing the restored files in a fresh store must
give the very manifest id the old pvc recorded: that proves the object encoding has not moved.
"""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pytest
from helpers import tree_bytes

DATA = Path(__file__).parent / "data"
ARCHIVES = {"format1": (DATA / "format1-stores.tar.gz", "fixture@format1", 1),  # archive, author, refs format
            "refs2": (DATA / "refs2-stores.tar.gz", "fixture@refs2", 2)}
PROJECTS = ("images", "videos", "volumes")


@pytest.fixture(scope="module", params=list(ARCHIVES))
def archive(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def old_stores(tmp_path_factory, archive) -> Path:
    root = tmp_path_factory.mktemp(archive)
    with tarfile.open(ARCHIVES[archive][0]) as tar:
        tar.extractall(root, filter="data")
    return root


@pytest.mark.parametrize("name", PROJECTS)
def test_old_store_lists_verifies_and_is_clean(old_stores, archive, name, cli):
    project = old_stores / name
    log = cli("log", "--json", cwd=project)
    assert log.code == 0, log.err
    assert [v["author"] for v in log.json()] and all(v["author"] == ARCHIVES[archive][1] for v in log.json())
    verify = cli("verify", "--json", cwd=project)
    assert verify.code == 0 and verify.json()["ok"], verify.out
    status = cli("status", "--json", cwd=project)
    assert status.code == 0 and status.json()["clean"], status.out


@pytest.mark.parametrize("name", PROJECTS)
def test_old_versions_restore_and_recommit_to_the_same_manifest(old_stores, name, cli, tmp_path):
    project = old_stores / name
    for version in cli("log", "--json", cwd=project).json():
        out = tmp_path / f"v{version['number']}"
        assert cli("restore", str(version["number"]), "--to", out, "--verify", "--no-link", cwd=project).code == 0
        if version["number"] == max(v["number"] for v in cli("log", "--json", cwd=project).json()):
            assert tree_bytes(out) == tree_bytes(project)
        assert cli("init", out).code == 0
        again = cli("commit", "-m", "again", "--json", cwd=out)
        assert again.code == 0, again.err
        assert again.json()["manifest"] == version["manifest"]


def test_old_refs_are_upgraded_by_the_next_commit_and_keep_every_record(old_stores, archive, cli, tmp_path):
    project = tmp_path / "images"
    shutil.copytree(old_stores / "images", project, symlinks=True)
    before = cli("log", "--json", cwd=project).json()
    assert json.loads((project / ".pvc" / "versions").read_text())["format"] == ARCHIVES[archive][2]
    (project / "NOTES.txt").write_text("new file\n")
    assert cli("commit", "-m", "third", cwd=project).code == 0
    assert json.loads((project / ".pvc" / "versions").read_text())["format"] == 2
    after = cli("log", "--json", cwd=project).json()
    assert [v["number"] for v in after] == [3, 2, 1] and after[1:] == before
    assert cli("verify", cwd=project).code == 0


def test_tag_edit_and_delete_on_an_old_store_upgrade_its_refs(old_stores, archive, cli, tmp_path):
    project = tmp_path / "images"
    shutil.copytree(old_stores / "images", project, symlinks=True)
    before = cli("log", "--json", cwd=project).json()
    assert cli("tag", "first", "1").code == 0
    refs = json.loads((project / ".pvc" / "versions").read_text())
    assert refs["format"] == 2 and refs["tags"] == {"first": 1}
    assert json.loads((project / ".pvc" / "versions.bak").read_text())["format"] == ARCHIVES[archive][2]  # kept
    assert [v["id"] for v in cli("log", "--json").json()] == [v["id"] for v in before]  # ids stay what they were
    assert cli("edit", "first", "-m", "renamed").code == 0 and cli("show", "first", "--json").json()["title"] == "renamed"
    assert cli("delete", "2", "--yes").code == 0 and [v["number"] for v in cli("log", "--json").json()] == [1]
    assert cli("gc", "--grace", "0").code == 0 and cli("verify").code == 0


@pytest.mark.parametrize("name", PROJECTS)
def test_a_linked_restore_from_an_old_store_gives_it_an_id_and_commits_nothing_new(old_stores, name, cli, tmp_path):
    project = tmp_path / name
    shutil.copytree(old_stores / name, project, symlinks=True)
    assert "id" not in json.loads((project / ".pvc" / "config").read_text())
    latest = cli("log", "--json", cwd=project).json()[0]
    assert cli("restore", "latest", "--to", tmp_path / "linked").code == 0
    store_id = json.loads((project / ".pvc" / "config").read_text())["id"]
    first = cli("commit", "-m", "continued", "--json", cwd=tmp_path / "linked").json()
    assert first["manifest"] == latest["manifest"] and first["files_hashed"] == 0
    assert cli("show", "--json").json()["origin"]["store"] == store_id
    assert not list((tmp_path / "linked" / ".pvc" / "packs").glob("*.pack"))
    assert len(cli("graph", "--json", cwd=project).json()["projects"]) == 2


@pytest.mark.parametrize("name", PROJECTS)
def test_old_stores_push_and_clone_byte_for_byte(old_stores, name, cli, tmp_path):
    """Image, video and volume projects of an old store go to a remote and come back whole."""
    project = tmp_path / name
    shutil.copytree(old_stores / name, project, symlinks=True)
    assert cli("remote", "add", "origin", tmp_path / "remote", "-C", project).code == 0
    pushed = cli("push", "--json", "-C", project)
    assert pushed.code == 0, pushed.err
    versions = cli("log", "--json", "-C", project).json()
    assert pushed.json()["pushed"] == sorted(v["number"] for v in versions)
    assert cli("clone", tmp_path / "remote", tmp_path / "copy").code == 0
    assert tree_bytes(tmp_path / "copy") == tree_bytes(project)
    assert [v["manifest"] for v in cli("log", "--json", "-C", tmp_path / "copy").json()] == [v["manifest"] for v in versions]
    assert cli("ls", "latest", "--json", "-C", tmp_path / "copy").json() == cli("ls", "latest", "--json", "-C", project).json()
    if len(versions) > 1:
        older = cli("ls", "1", "-C", tmp_path / "copy")
        assert older.code == 2 and "pvc pull --versions 1" in older.err


def test_fields_a_newer_pvc_wrote_survive_this_ones_commit(initialised, cli):
    """Two pvc versions sharing a store: a commit by the older must keep what the newer added, byte for byte."""
    from pvc.store.refs import _checksum_v2

    assert cli("commit", "-m", "one", cwd=initialised).code == 0
    path = initialised / ".pvc" / "versions"
    doc = json.loads(path.read_text())
    doc["versions"][0]["reviewed_by"] = {"name": "ann", "at": [1, 2.5]}
    doc["branches"] = {"main": 1}
    body = {k: v for k, v in doc.items() if k not in ("format", "checksum")}
    path.write_text(json.dumps(doc | {"checksum": _checksum_v2(body)}, indent=1))
    (initialised / "README.md").write_text("changed\n")
    assert cli("commit", "-m", "two").code == 0
    after = json.loads(path.read_text())
    assert [v["number"] for v in after["versions"]] == [1, 2]
    assert after["versions"][0]["reviewed_by"] == {"name": "ann", "at": [1, 2.5]} and after["branches"] == {"main": 1}
    assert cli("verify").code == 0
