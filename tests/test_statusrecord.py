"""The status record (`.pvc/status`, pvc/store/statusrecord.py): a changed project's status report, kept for the next
status whose walk sees the same files against the same latest version and settings, and never used otherwise."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

import pvc.core.status as status_module
from pvc import cli as full_cli
from pvc import entry
from pvc.store import statusrecord

PAST = 1_500_000_000 * 10**9  # 2017: older than any scan's clock, so that the changed files are settled at once


@pytest.fixture
def changed(initialised, cli):
    """A committed project with an annotation edited, an image removed and a file added, all settled."""
    assert cli("commit", "-m", "v1", cwd=initialised).code == 0
    anns = sorted(initialised.glob("train/ann/*.json"))
    anns[0].write_text(anns[0].read_text().replace("{", "{ ", 1))
    sorted(initialised.glob("train/img/*"))[1].unlink()
    (initialised / "notes.txt").write_text("a new file")
    for path in (anns[0], initialised / "notes.txt"):
        os.utime(path, ns=(PAST, PAST))
    time.sleep(0.05)  # their ctimes (now) older than the next scan's clock
    return initialised


def _entry(args: list[str], capsys) -> str:
    assert entry._answer_untouched(args) == 0
    return capsys.readouterr().out


def _full(args: list[str], capsys) -> str:
    assert full_cli.main(args) == 0
    return capsys.readouterr().out


def _captures(monkeypatch) -> list:
    """Count the captures status runs (each builds the working tree's snapshot)."""
    calls, real = [], status_module.working_snapshot
    monkeypatch.setattr(status_module, "working_snapshot", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    return calls


def test_a_repeated_status_prints_the_kept_report_without_capturing_anything(changed, capsys, monkeypatch):
    monkeypatch.chdir(changed)
    first = _entry(["status", "--json"], capsys)
    assert (changed / ".pvc" / "status").is_file()
    assert json.loads(first)["clean"] is False
    text = _full(["status"], capsys)  # (the full CLI computes it: it has no walk of its own to key the record with)
    calls = _captures(monkeypatch)
    assert _entry(["status", "--json"], capsys) == first
    assert _entry(["status"], capsys) == text
    assert calls == []


def test_a_file_written_again_with_its_size_and_mtime_put_back_is_seen(changed, capsys, monkeypatch):
    """Only its ctime tells the write: the record holds for the walk's stat records, ctime among them."""
    monkeypatch.chdir(changed)
    _entry(["status", "--json"], capsys)
    ann = sorted(changed.glob("train/ann/*.json"))[2]
    before = ann.stat()
    time.sleep(0.02)  # (a ctime tick later)
    content = ann.read_text()
    ann.write_text(content.replace('"', "'", 1) if '"' in content else content)  # same size, other bytes
    os.utime(ann, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert ann.stat().st_size == before.st_size
    calls = _captures(monkeypatch)
    fast = _entry(["status", "--json"], capsys)
    assert calls == [1]
    assert fast == _full(["status", "--json"], capsys)
    assert f"{ann.name[:-len('.json')]}" in {m["item"] for m in json.loads(fast)["items"]["modified"]}


def test_the_record_of_another_latest_version_is_not_used(changed, cli, capsys, monkeypatch):
    """Against v2, then v2 deleted: the tree is the same, the latest version is not, and neither is the report."""
    monkeypatch.chdir(changed)
    assert cli("commit", "-m", "v2").code == 0
    (changed / "more.txt").write_text("after v2")
    os.utime(changed / "more.txt", ns=(PAST, PAST))
    time.sleep(0.05)
    assert json.loads(_entry(["status", "--json"], capsys))["from"] == 2
    assert (changed / ".pvc" / "status").is_file()
    assert cli("delete", "2", "--yes").code == 0
    calls = _captures(monkeypatch)
    report = json.loads(_entry(["status", "--json"], capsys))
    assert calls == [1] and report["from"] == 1
    assert json.dumps(report, indent=2) + "\n" == _full(["status", "--json"], capsys)


def test_the_record_of_other_settings_is_not_used(changed, cli, capsys, monkeypatch):
    monkeypatch.chdir(changed)
    _entry(["status", "--json"], capsys)
    assert (changed / ".pvc" / "status").is_file()
    assert cli("config", "chunk_threshold", "1MiB").code == 0
    calls = _captures(monkeypatch)
    fast = _entry(["status", "--json"], capsys)
    assert calls == [1] and fast == _full(["status", "--json"], capsys)


def test_no_report_is_kept_for_a_walk_that_is_not_settled(changed, capsys, monkeypatch):
    """A file modified after the scan's clock (here: an mtime in the future) could change again unseen within the
    same tick: the walk vouches for nothing, and no report is written."""
    future = time.time_ns() + 3600 * 10**9
    os.utime(changed / "notes.txt", ns=(future, future))
    monkeypatch.chdir(changed)
    _entry(["status", "--json"], capsys)
    assert not (changed / ".pvc" / "status").exists()


@pytest.mark.parametrize("damage", [b"", b"\x93\x01", b"not msgpack at all \xff\xfe", "truncated"])
def test_a_damaged_record_is_no_record(changed, capsys, monkeypatch, damage):
    monkeypatch.chdir(changed)
    expected = _entry(["status", "--json"], capsys)
    record = changed / ".pvc" / "status"
    record.write_bytes(record.read_bytes()[:-7] if damage == "truncated" else damage)
    calls = _captures(monkeypatch)
    assert _entry(["status", "--json"], capsys) == expected
    assert calls == [1]
    assert statusrecord.read_report(record, b"any key") is None
    monkeypatch.undo()
    calls = _captures(monkeypatch)  # rewritten whole by that status: the next one reads it
    monkeypatch.chdir(changed)
    assert _entry(["status", "--json"], capsys) == expected and calls == []


def test_the_record_round_trips_what_it_keeps(tmp_path: Path):
    path, key = tmp_path / "status", statusrecord.record_key(b"\1" * 32, 3, "ab" * 32, {"format": 1})
    report = {"from": 3, "to": "working", "clean": False, "items": {"added": [{"path": "ds/a.jpg", "size": 1.5}]}}
    assert statusrecord.write_report(path, key, report)
    assert statusrecord.read_report(path, key) == report
    assert statusrecord.read_report(path, statusrecord.record_key(b"\2" * 32, 3, "ab" * 32, {"format": 1})) is None
    assert statusrecord.read_report(tmp_path / "none", key) is None


def test_a_report_too_large_to_keep_is_not_kept(tmp_path: Path, monkeypatch):
    path, key = tmp_path / "status", b"k"
    assert statusrecord.write_report(path, key, {"small": True})
    monkeypatch.setattr(statusrecord, "MAX_BYTES", 64)
    assert not statusrecord.write_report(path, key, {"large": "x" * 100})
    assert not path.exists()


def test_a_report_msgpack_cannot_encode_is_not_kept_and_status_still_answers(changed, capsys, monkeypatch):
    """An annotation's JSON may hold an integer of 2**64 or more (here a tag's name), which the report carries and
    msgpack cannot encode: the status prints its report, the CLI's, and keeps none."""
    ann = sorted(changed.glob("train/ann/*.json"))[3]
    doc = json.loads(ann.read_text())
    doc["tags"] = [{"name": 10**25}]
    ann.write_text(json.dumps(doc))
    os.utime(ann, ns=(PAST, PAST))
    time.sleep(0.05)  # (settled: only the encoding stops the record)
    monkeypatch.chdir(changed)
    fast = _entry(["status", "--json"], capsys)
    assert str(10**25) in fast and fast == _full(["status", "--json"], capsys)
    assert not (changed / ".pvc" / "status").exists()


def test_a_report_kept_by_other_code_is_not_used(changed, capsys, monkeypatch):
    """The key names pvc's code (its modules' and extensions' paths, sizes and mtimes): an upgrade or an edit of any
    module, which may change what a report says, makes the record hold for nothing."""
    monkeypatch.chdir(changed)
    _entry(["status", "--json"], capsys)
    assert (changed / ".pvc" / "status").is_file()
    first = statusrecord.code_id()
    assert first is not None and first == statusrecord.code_id()
    monkeypatch.setattr(statusrecord, "code_id", lambda: b"\0" * 16)
    calls = _captures(monkeypatch)
    _entry(["status", "--json"], capsys)
    assert calls == [1]


def test_code_id_changes_with_a_module_s_mtime(tmp_path: Path, monkeypatch):
    import pvc

    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    for name in ("__init__.py", "sub/mod.py"):
        (package / name).write_text("x = 1\n")
    monkeypatch.setattr(pvc, "__file__", str(package / "__init__.py"))
    before = statusrecord.code_id()
    os.utime(package / "sub" / "mod.py", ns=(PAST, PAST))
    assert statusrecord.code_id() not in (None, before)


def test_a_walk_is_settled_only_when_every_mtime_and_ctime_is_older_than_its_clock():
    """The C walk's `names` gives the newest of the mtimes and ctimes: a file whose metadata changed after the clock
    (a ctime at or after it, its mtime put back) makes the walk unsettled, as the Python scan's files do."""
    import struct

    from pvc import _walk
    from pvc.core.capture.walk import Walked
    from pvc.project.walk import RECORD

    def records(*files: tuple[str, int, int]) -> bytes:
        return b"".join(name.encode() + b"\0" + RECORD.pack(1, mtime, 7, ctime) for name, mtime, ctime in files)

    data = records(("a", 10, 20), ("b", 30, 15))
    assert _walk.names(data)[2] == 30
    assert _walk.names(records(("a", 10, 50), ("b", 30, 15)))[2] == 50
    assert struct.calcsize("<QqQq") == RECORD.size
    for newest_ctime, settled in ((99, True), (100, False)):
        raw = records(("a", 10, newest_ctime))
        walked = Walked(100, None, native=(raw, b"\0", _walk.names(raw)), prefix="/")
        assert walked.settled is settled


def test_a_kept_report_with_problems_prints_them_as_the_first_status_did(changed, capsys, monkeypatch):
    """A file a commit would refuse (here a malformed annotation) is in the report's `problems`: the status answered
    from the record prints the same text on stdout and the same problem lines on stderr."""
    ann = sorted(changed.glob("train/ann/*.json"))[4]
    ann.write_text("{not json")
    os.utime(ann, ns=(PAST, PAST))
    time.sleep(0.05)
    monkeypatch.chdir(changed)
    assert entry._answer_untouched(["status"]) == 0
    first = capsys.readouterr()
    assert (changed / ".pvc" / "status").is_file() and "problem" in first.err
    calls = _captures(monkeypatch)
    assert entry._answer_untouched(["status"]) == 0
    again = capsys.readouterr()
    assert calls == [] and (again.out, again.err) == (first.out, first.err)
