"""The CLI's output contract: JSON keys, exit codes, version names, human output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import pvc
from pvc.core.resolve import resolve_version
from pvc.store.refs import VersionRecord


@pytest.fixture
def two_versions(initialised, cli, tmp_path):
    desc = tmp_path / "workflow.json"
    desc.write_text(json.dumps({"app": "augment", "params": {"flip": True}}))
    assert cli("commit", "-m", "checkpoint-1", "--description", "first", cwd=initialised).code == 0
    (initialised / "train" / "notes.txt").write_text("changed notes\n")
    assert cli("commit", "-m", "checkpoint-2", "--description-json", desc).code == 0
    return initialised


def test_commit_json_contract(initialised, cli):
    doc = cli("commit", "-m", "t", "--json", cwd=initialised).json()
    assert {"version", "created", "manifest"} <= set(doc)
    assert doc["version"] == 1 and doc["created"] is True


def test_log_json_contract_newest_first_and_limit(two_versions, cli):
    log = cli("log", "--json").json()
    assert [v["number"] for v in log] == [2, 1]
    for key in ("number", "manifest", "title", "description", "created_at", "parent"):
        assert all(key in v for v in log)
    assert log[0]["description"] == {"app": "augment", "params": {"flip": True}}
    assert log[0]["parent"] == 1 and log[1]["parent"] is None
    assert [v["number"] for v in cli("log", "-n", "1", "--json").json()] == [2]


def test_show_json_contract(two_versions, cli):
    doc = cli("show", "1", "--json").json()
    assert doc["number"] == 1 and doc["title"] == "checkpoint-1" and doc["description"] == "first"
    stats = doc["stats"]
    for key in ("datasets", "items", "files", "bytes", "classes"):
        assert key in stats
    ann_objects = 0
    for path in two_versions.rglob("ann/*.json"):
        ann_objects += len(json.loads(path.read_text())["objects"])
    assert sum(stats["classes"].values()) == ann_objects
    assert stats["datasets"] == 3 and doc["project_type"] == "images"


def test_ls_json_contract(two_versions, cli):
    items = cli("ls", "1", "--json").json()
    assert len(items) == cli("show", "1", "--json").json()["stats"]["items"]
    for item in items:
        assert {"dataset", "item", "path", "size", "blob", "meta", "annotation"} <= set(item)
    first = items[0]
    assert (two_versions / first["path"]).stat().st_size == first["size"]
    assert {"width", "height", "channels", "mode", "format"} <= set(first["meta"])
    assert "objects" in first["annotation"] and "tags" in first["annotation"]
    nested = cli("ls", "1", "train/hard_cases", "--json").json()
    assert nested and all(i["dataset"] == "train/hard_cases" for i in nested)
    assert cli("ls", "1", "no-such-dataset").code == 1


def test_cat_writes_the_bytes_of_that_version(two_versions, cli):
    result = subprocess.run([sys.executable, "-m", "pvc", "cat", "1", "train/notes.txt"], cwd=two_versions,
                            capture_output=True, check=True)
    assert result.stdout != (two_versions / "train" / "notes.txt").read_bytes()
    assert cli("cat", "2", "train/notes.txt", "--json").json()["text"] == "changed notes\n"
    img = next(p for p in two_versions.glob("train/img/*.png"))
    doc = cli("cat", "2", img.relative_to(two_versions).as_posix(), "--json").json()
    assert doc["size"] == img.stat().st_size and "base64" in doc


@pytest.mark.parametrize("name,number", [("1", 1), ("v2", 2), ("V1", 1), ("latest", 2)])
def test_version_names(two_versions, cli, name, number):
    assert cli("show", name, "--json").json()["number"] == number


def test_hash_prefix_names_and_ambiguity():
    def rec(n, manifest):
        return VersionRecord(n, manifest, "", None, "", "", None)

    versions = [rec(1, "abcdef01" + "0" * 56), rec(2, "abcdef02" + "0" * 56), rec(3, "123456" + "1" * 58)]
    assert resolve_version(versions, "abcdef02").number == 2
    assert resolve_version(versions, "123456").number == 3
    with pytest.raises(pvc.VersionNotFound, match="ambiguous"):
        resolve_version(versions, "abcdef")
    with pytest.raises(pvc.VersionNotFound, match="not a version name"):
        resolve_version(versions, "abc")
    with pytest.raises(pvc.VersionNotFound, match="does not exist"):
        resolve_version(versions, "v4")


def test_error_with_json_prints_an_error_document(initialised, cli):
    result = cli("show", "1", "--json", cwd=initialised)
    assert result.code == 1
    assert result.json() == {"error": {"type": "VersionNotFound", "message": "no versions yet (run `pvc commit`)",
                                       "exit_code": 1}}


def test_usage_error_exits_1_without_traceback(initialised, cli):
    result = cli("restore", "1", cwd=initialised)  # --to is missing
    assert result.code == 1 and "--to" in result.err and "Traceback" not in result.err
    assert cli("commit", "--description", "a", "--description-json", "b.json").code == 1


def test_bad_arguments_are_user_errors(two_versions, cli):
    assert cli("cat", "1", "../outside.txt").code == 1
    assert cli("log", "-n", "0").code == 1


def test_init_twice_is_refused(initialised, cli):
    result = cli("init", initialised)
    assert result.code == 1 and "already" in result.err


def test_human_output(two_versions, cli):
    assert "Nothing changed: version 2" in cli("commit").out
    log = cli("log").out
    assert "checkpoint-1" in log and "checkpoint-2" in log
    show = cli("show", "2").out
    assert "Supervisely images project" in show and "checkpoint-2" in show


@pytest.mark.parametrize("args", [["log", "--json"], ["status", "--json"], ["commit", "--json"], ["show", "--json"],
                                  ["nope"]])
def test_python_m_pvc_and_console_script_agree(two_versions, args):
    """`python -m pvc` and the installed `pvc` script are one program: same output, same exit code (`status` and
    `commit` on this untouched project are answered by the entry point on both)."""
    script = Path(sys.executable).with_name("pvc")
    assert script.is_file(), f"no console script next to {sys.executable} (pip install -e . makes it)"
    runs = [subprocess.run(command + args, cwd=two_versions, capture_output=True, text=True, timeout=120)
            for command in ([sys.executable, "-m", "pvc"], [str(script)])]
    module, console = ((r.returncode, r.stdout, r.stderr) for r in runs)
    assert module == console
    if args[0] == "log":
        assert [v["number"] for v in json.loads(runs[0].stdout)] == [2, 1] and runs[0].stderr == ""
    assert (runs[0].returncode == 0) == (args != ["nope"])


def test_project_discovered_from_a_subfolder(two_versions, cli):
    assert cli("log", "--json", cwd=two_versions / "train" / "img").json()[0]["number"] == 2


def test_api_get_list_filters(two_versions):
    project = pvc.Project(two_versions)
    assert [v.number for v in project.version.get_list()] == [1, 2]
    only = project.version.get_list(filters=[{"field": "title", "operator": "=", "value": "checkpoint-1"}])
    assert [v.number for v in only] == [1]
    later = project.version.get_list(filters=[{"field": "number", "operator": ">=", "value": 2}])
    assert [v.number for v in later] == [2]
    assert [v.number for v in project.version.get_list(filters=[{"field": "title", "operator": "contains", "value": "-2"}])] == [2]
    with pytest.raises(pvc.UsageError):
        project.version.get_list(filters=[{"field": "colour", "operator": "=", "value": 1}])


def test_api_create_returns_created_flag_and_number(initialised):
    project = pvc.Project(initialised)
    v = project.version.create(title="a", description={"app": "x"})
    assert (v.number, v.created) == (1, True)
    again = project.version.create(title="b")
    assert (again.number, again.created) == (1, False)
    assert project.version.get(1).description == {"app": "x"}


def test_ls_of_a_dataset_whose_last_item_has_no_media(initialised, cli):
    (initialised / "train" / "datasets" / "hard_cases" / "ann" / "zz_only_annotation.jpg.json").write_text(
        json.dumps({"size": {"height": 1, "width": 1}, "tags": [], "objects": []}))
    cli("commit", cwd=initialised)
    result = cli("ls", "1", "train/hard_cases", "--json")
    assert result.code == 0, result.err
    only = [i for i in result.json() if i["item"] == "zz_only_annotation.jpg"]
    assert len(only) == 1 and only[0]["path"] is None
