"""A version's names and words: tags, edits, log filters; and git's habits (`pvc --version`, `pvc -C DIR`)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

import pvc
from pvc.core.tag import check_tag_name
from pvc.sample import make_image_project


@pytest.fixture
def three(tmp_path, cli):
    """Three versions by two authors, the second with a JSON description."""
    proj = make_image_project(tmp_path / "proj", items=6, datasets=1, seed=7)
    assert cli("init", proj).code == 0
    assert cli("commit", "-m", "first import", "--author", "alice", cwd=proj).code == 0
    (proj / "NOTES.txt").write_text("two\n")
    desc = tmp_path / "desc.json"
    desc.write_text(json.dumps({"app": "augment", "params": {"flip": True}}))
    assert cli("commit", "-m", "augmented", "--description-json", desc, "--author", "bob").code == 0
    (proj / "NOTES.txt").write_text("three\n")
    assert cli("commit", "-m", "relabelled", "--description", "fixed the lanes", "--author", "alice").code == 0
    return proj


@pytest.mark.parametrize("name", ["", "has space", "tab\there", "/", "///", "-x", "3", "v3", "V12", "latest", "x" * 201])
def test_bad_tag_names_are_refused(name):
    with pytest.raises(pvc.UsageError, match="cannot be a tag"):
        check_tag_name(name)


@pytest.mark.parametrize("name", ["baseline", "release/2026-11", "v1.0", "a-b_c", "café"])
def test_good_tag_names_pass(name):
    assert check_tag_name(name) == name


def test_tags_name_versions_everywhere(three, cli, tmp_path):
    assert cli("tag", "baseline", "1").code == 0
    assert cli("tag", "base-2", "v2", "--json").json() == {"tag": "base-2", "version": 2, "previous": None, "deleted": False}
    dup = cli("tag", "baseline", "3")
    assert dup.code == 1 and "already names version 1" in dup.err and dup.err.count("\n") == 1
    assert cli("tag", "baseline", "1").code == 0  # naming the same version again is no change
    assert cli("tag", "bad name", "1").code == 1
    assert cli("tag", "nope", "9").code == 1
    tags = cli("tag", "--list", "--json").json()
    assert [(t["tag"], t["version"]) for t in tags] == [("base-2", 2), ("baseline", 1)]
    assert cli("tag").out.splitlines()[1].startswith("base-2")

    assert cli("show", "baseline", "--json").json()["tags"] == ["baseline"]
    assert "tags      baseline" in cli("show", "baseline").out
    assert cli("ls", "baseline", "--json").code == 0
    assert cli("cat", "base-2", "NOTES.txt").out == "two\n"
    assert cli("diff", "baseline", "base-2", "--json").json()["files"]["added"] == ["NOTES.txt"]
    assert cli("restore", "baseline", "--to", tmp_path / "r").code == 0
    assert not (tmp_path / "r" / "NOTES.txt").exists()
    log = {v["number"]: v for v in cli("log", "--json").json()}
    assert log[1]["tags"] == ["baseline"] and log[3]["tags"] == []
    assert "baseline" in cli("log").out

    moved = cli("tag", "baseline", "3", "--force", "--json").json()
    assert moved["previous"] == 1 and cli("show", "baseline", "--json").json()["number"] == 3
    assert cli("tag", "-d", "baseline", "--json").json()["deleted"] is True
    assert cli("show", "baseline").code == 1 and cli("tag", "-d", "baseline").code == 1
    assert cli("tag", "-d").code == 1


def test_edit_changes_words_never_the_manifest(three, cli, tmp_path):
    before = cli("show", "2", "--json").json()
    doc = cli("edit", "2", "-m", "augmented x2", "--json").json()
    assert doc["title"] == "augmented x2" and doc["description"] == before["description"]
    assert doc["manifest"] == before["manifest"] and doc["id"] == before["id"] and doc["created_at"] == before["created_at"]
    assert datetime.fromisoformat(doc["edited_at"]) >= datetime.fromisoformat(before["created_at"])
    workflow = tmp_path / "wf.json"
    workflow.write_text(json.dumps({"app": "train", "params": {"epochs": 3}}))
    assert cli("edit", "2", "--description-json", workflow).code == 0
    assert cli("show", "2", "--json").json()["description"] == {"app": "train", "params": {"epochs": 3}}
    assert cli("edit", "2", "--no-description", "--json").json()["description"] is None
    assert "edited" in cli("show", "2").out
    assert cli("edit", "2").code == 1  # nothing to change
    assert cli("edit", "2", "--description", "a", "--no-description").code == 1
    assert cli("edit", "9", "-m", "x").code == 1
    assert cli("verify").code == 0 and cli("log", "--json").json()[1]["edited_at"] >= doc["edited_at"]

    project = pvc.Project(three)
    edited = project.version.update(version_num=1, title="imported", description={"app": "import"})
    assert edited.title == "imported" and project.version.get(1).description == {"app": "import"}
    assert project.version.update(version_id=edited.manifest[:8], description=None).description is None
    assert project.version.get(1).title == "imported"  # left out: kept
    with pytest.raises(pvc.UsageError):
        project.version.update(version_num=1)


def test_log_filters(three, cli):
    def numbers(*args):
        result = cli("log", *args, "--json")
        assert result.code == 0, result.err
        return [v["number"] for v in result.json()]

    assert numbers("--author", "ALICE") == [3, 1]
    assert numbers("--grep", "lanes") == [3]  # in the description
    assert numbers("--grep", "augment") == [2]  # in a JSON description too
    today = datetime.now(UTC).date().isoformat()
    assert numbers("--since", today) == [3, 2, 1] and numbers("--until", today) == [3, 2, 1]
    assert numbers("--since", "30d") == [3, 2, 1] and numbers("--until", "30d") == []
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert numbers("--since", tomorrow) == []
    assert numbers("--author", "alice", "-n", "1") == [3]
    assert cli("tag", "keep", "2").code == 0
    assert numbers("--tag") == [2]
    assert cli("log", "--since", "last tuesday").code == 1
    assert cli("log", "--grep", "nothing like this").out.strip() == "No versions match."
    project = pvc.Project(three)
    assert [v.number for v in project.log(author="bob")] == [2]
    assert [v.number for v in project.version.get_list(filters=[{"field": "tags", "operator": "contains",
                                                                 "value": "keep"}])] == [2]


def test_version_and_global_directory_option(three, cli, tmp_path):
    assert cli("--version").out.strip() == f"pvc {pvc.__version__}"
    assert cli("--version", "--json").json() == {"version": pvc.__version__}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # through the entry point's fast path (untouched status/commit) and the full CLI alike
    assert cli("-C", three, "status", "--json", cwd=elsewhere).json()["clean"] is True
    assert cli("-C", three, "commit", "--json").json()["created"] is False
    assert [v["number"] for v in cli("-C", three.parent, "log", "-C", three.name, "--json").json()] == [3, 2, 1]
    assert cli("-C", three.parent, "-C", three.name, "show", "--json").json()["number"] == 3
    # paths after the command are relative to -C, as with git
    assert cli("-C", three, "restore", "1", "--to", "../from-c").code == 0
    assert (tmp_path / "from-c" / "meta.json").is_file()
    missing = cli("-C", tmp_path / "nope", "log")
    assert missing.code == 1 and "nope" in missing.err
    assert cli("--json", "log").code == 1
    out = subprocess.run([sys.executable, "-m", "pvc", "-C", str(three), "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout == f"pvc {pvc.__version__}\n"
    out = subprocess.run([sys.executable, "-m", "pvc", "-C", str(three), "status"], capture_output=True, text=True,
                         cwd=elsewhere)
    assert out.returncode == 0 and out.stdout == "nothing to commit: working tree matches v3\n"
