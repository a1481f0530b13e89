"""`.pvc/config`: every key checked against the table of known settings; `pvc config` to read and change it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import pvc
from pvc.store import config as schema


def _edit(project: Path, **changes) -> None:
    path = project / ".pvc" / "config"
    path.write_text(json.dumps(json.loads(path.read_text()) | changes, indent=1))


@pytest.mark.parametrize("changes, says", [
    ({"chunk_treshold": 1}, "chunk_treshold: unknown key (did you mean 'chunk_threshold'?)"),
    ({"pack_size": "16M"}, 'pack_size: must be an integer, not "16M"'),
    ({"chunk_threshold": 0}, "chunk_threshold: must be between 262144 and"),
    ({"dicom_tags": "Modality"}, "dicom_tags: must be a list of DICOM keywords"),
    ({"remotes": {"origin": {"uri": "s3://b"}}}, "remotes.origin.uri: unknown key (did you mean 'url'?)"),
    ({"remotes": {"origin": {"endpoint": None}}}, "remotes.origin.url: is required"),
])
def test_a_bad_config_stops_every_command_with_one_line_naming_the_key(initialised, cli, changes, says):
    assert cli("commit", "-m", "one", cwd=initialised).code == 0
    _edit(initialised, **changes)
    for args in (["log"], ["status"], ["commit"], ["show"], ["gc", "--dry-run"]):
        result = cli(*args, "--json")
        assert result.code == 2, (args, result.err)
        assert result.err.count("\n") == 1 and says in result.err and "config" in result.err, result.err
        assert "Traceback" not in result.err and result.json()["error"]["type"] == "CorruptObject"


def test_verify_reports_the_config_and_still_checks_the_store(initialised, cli):
    cli("commit", "-m", "one", cwd=initialised)
    _edit(initialised, chunk_treshold=1, pack_size=-1)
    result = cli("verify", "--json")
    doc = result.json()
    assert result.code == 2 and not doc["ok"] and doc["versions"] == 1 and doc["hashed"] == doc["records"] > 0
    assert {(p["subject"], p["kind"]) for p in doc["problems"]} == {("config chunk_treshold", "config"),
                                                                    ("config pack_size", "config")}
    assert "did you mean 'chunk_threshold'" in cli("verify").out


def test_config_list_get_set_unset(initialised, cli):
    listing = cli("config", "--json", cwd=initialised).json()
    values = {s["key"]: (s["value"], s["set"]) for s in listing["settings"]}
    assert values["chunk_threshold"] == (8 << 20, True) and values["dicom_tags"] == (None, False)
    assert values["remotes"] == ({}, False) and listing["problems"] == []
    assert cli("config", "chunk_threshold").out.strip() == str(8 << 20)
    change = cli("config", "chunk_threshold", "16MiB", "--json").json()
    assert change == {"key": "chunk_threshold", "value": 16 << 20, "previous": 8 << 20, "changed": True}
    assert cli("config", "dicom_tags", "Modality,Rows").code == 0
    assert json.loads((initialised / ".pvc" / "config").read_text())["dicom_tags"] == ["Modality", "Rows"]
    assert cli("config", "--unset", "dicom_tags", "--json").json()["value"] is None
    assert pvc.Project(initialised).config_get("chunk_threshold").value == 16 << 20
    assert oct((initialised / ".pvc" / "config").stat().st_mode & 0o777) == "0o644"
    assert not list((initialised / ".pvc").glob(".*.tmp"))


@pytest.mark.parametrize("args, says", [
    (["chunk_treshold", "1"], "chunk_treshold: unknown key (did you mean 'chunk_threshold'?)"),
    (["pack_size", "lots"], 'pack_size: must be an integer, not "lots"'),
    (["pack_size", "1"], "pack_size: must be between"),
    (["format", "2"], "format: cannot be set"),
    (["remotes.origin.endpoint", "http://minio:9000"], "remotes.origin.url: is required"),
    (["remotes.origin", "x"], "set one field at a time"),
])
def test_config_refuses_a_change_that_makes_a_problem(initialised, cli, args, says):
    before = (initialised / ".pvc" / "config").read_bytes()
    result = cli("config", *args, cwd=initialised)
    assert result.code == 1 and says in result.err and result.err.count("\n") == 1, result.err
    assert (initialised / ".pvc" / "config").read_bytes() == before


def test_a_typo_is_fixed_with_pvc_config_itself(initialised, cli):
    _edit(initialised, chunk_treshold=1)
    assert cli("log", cwd=initialised).code == 2
    listing = cli("config", "--json").json()
    assert listing["problems"] == [{"key": "chunk_treshold", "what": "unknown key (did you mean 'chunk_threshold'?)"}]
    assert cli("config", "pack_size", "4MiB").code == 0  # other changes still go through, the typo stays reported
    assert cli("config", "--unset", "chunk_treshold").code == 0
    assert cli("log").code == 0 and cli("config", "--json").json()["problems"] == []


def test_remotes_are_a_section_of_named_objects(initialised, cli):
    assert cli("config", "remotes.origin.url", "s3://bucket/proj", cwd=initialised).code == 0
    assert cli("config", "remotes.origin.region", "eu-west-1").code == 0
    assert cli("config", "remotes.origin", "--json").json()["value"] == {"url": "s3://bucket/proj", "region": "eu-west-1"}
    # as the remote-storage work writes it: every field, nulls included
    _edit(initialised, remotes={"origin": {"url": "s3://b/p", "endpoint": None, "region": None},
                                "backup": {"url": "file:///mnt/backup", "endpoint": "http://minio:9000", "region": "us"}})
    assert cli("log").code == 0 and cli("verify").code == 0
    assert cli("config", "remotes.backup.endpoint").out.strip() == "http://minio:9000"
    assert cli("config", "--unset", "remotes.backup").code == 0
    assert set(json.loads((initialised / ".pvc" / "config").read_text())["remotes"]) == {"origin"}


def test_the_table_is_the_only_definition():
    """A section is one entry of SECTIONS: its fields are checked without code of their own."""
    assert schema.problems(schema.defaults()) == []
    assert set(schema.effective({})) == set(schema.SETTINGS) | set(schema.SECTIONS)
    doc = schema.with_value(schema.defaults(), "remotes.origin.url", "s3://b")
    assert schema.problems(doc) == [] and schema.lookup(doc, "remotes.origin.endpoint") == (None, None, False)
