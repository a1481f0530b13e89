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
    assert json.loads(_entry(["status", "--json"], capsys))["from"] == 2
    assert cli("delete", "2", "--yes").code == 0
    calls = _captures(monkeypatch)
    report = json.loads(_entry(["status", "--json"], capsys))
    assert calls == [1] and report["from"] == 1
    assert json.dumps(report, indent=2) + "\n" == _full(["status", "--json"], capsys)


def test_the_record_of_other_settings_is_not_used(changed, cli, capsys, monkeypatch):
    monkeypatch.chdir(changed)
    _entry(["status", "--json"], capsys)
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
