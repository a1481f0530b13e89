"""The walk compared with the stat cache in C (pvc/_walk.c `names` and `compare`), the results' infos sliced out in C
(pvc/_pages.c `objects`), and `pvc status --json` / `pvc commit --json` on a changed project taking over the walk of
the entry point's check: each against the Python code or the command it stands in for."""

from __future__ import annotations

import json
import os
import random
from array import array

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pvc.core.capture.walk as capture_walk
from pvc import cli as full_cli
from pvc import entry
from pvc.core import fastpath
from pvc.core.capture.walk import Walked, walk_project
from pvc.errors import BadInput
from pvc.project import walk as walk_module
from pvc.project.scan import FileInfo, Ignore, scan
from pvc.project.walk import RECORD, NATIVE_WALK, stat_records
from pvc.store import statcache
from pvc.store.repository import Repository
from pvc.store.statcache import CacheEntry, StatCache, StatKey

pytestmark = pytest.mark.skipif(not NATIVE_WALK, reason="pvc/_walk.c is not built")


@pytest.fixture
def committed(initialised, cli):
    assert cli("commit", "-m", "v1", cwd=initialised).code == 0
    return initialised


def _walked(files: list[FileInfo], started: int | None = 10**12) -> Walked:
    """A walk of `files` as the C walk gives it: records and flags."""
    from pvc import _walk

    records = stat_records(files)
    flags = bytes(f.executable | (f.symlink << 1) for f in sorted(files, key=lambda f: f.relpath))
    return Walked(started, native=(records, flags, _walk.names(records)), prefix="/p/")


def test_names_give_the_scans_paths_stats_and_newest_mtime_or_ctime(project):
    from pvc import _walk

    (project / "train" / "img" / "ünï ☃.png").write_bytes(b"x")
    (project / "run.sh").write_text("#!/bin/sh\n")
    (project / "run.sh").chmod(0o755)
    files = scan(project, Ignore([]))
    records, flags = walk_module.native_walk(project, Ignore([]))
    names, at, newest = _walk.names(records)
    assert names == [f.relpath for f in files]
    offsets = memoryview(at).cast("Q")
    assert [RECORD.unpack_from(records, offsets[i]) for i in range(len(files))] == [
        (f.size, f.mtime_ns, f.ino, f.ctime_ns) for f in files]
    assert newest == max(max(f.mtime_ns, f.ctime_ns) for f in files)
    walked = Walked(1, native=(records, flags, (names, at, newest)), prefix=f"{project}/")
    assert walked.files == files and walked.file(3) == files[3] and walked.index(files[5].relpath) == 5
    assert walked.index("no/such/file") is None
    with pytest.raises(ValueError):
        _walk.names(records[:-1])  # a record cut short


def test_a_name_that_is_not_utf8_leaves_the_walk_to_the_python_scan(project):
    from pvc import _walk

    with open(os.path.join(os.fsencode(project), b"train", b"x\xff.txt"), "wb") as f:
        f.write(b"x")
    records, _ = walk_module.native_walk(project, Ignore([]))
    assert _walk.names(records) is None
    repo = Repository.init(project)
    with pytest.raises(BadInput, match="x\\\\xff.txt: file name is not valid UTF-8"):
        walk_project(repo, repo.stat_cache(), None, {})  # the scan says what, and where


STAT = st.integers(min_value=0, max_value=3)


@settings(max_examples=60, deadline=None)
@given(names=st.lists(st.sampled_from(["a", "b", "c/d", "c/e", "é", "☃/x", "z", "a b", "a.json", "ab"]),
                      unique=True, max_size=10),
       cached=st.lists(st.tuples(st.sampled_from(["a", "b", "c/d", "é", "q", "☃/x", "ab", "a!"]), STAT, STAT),
                       max_size=8),
       later=st.lists(st.tuples(st.sampled_from(["a", "b", "c/e", "é", "q", "z"]), STAT, st.booleans()), max_size=4),
       gone=st.lists(st.sampled_from(["a", "b", "c/d", "é", "q", "ab"]), max_size=3),
       shuffled=st.booleans())
def test_the_c_comparison_is_the_python_one(tmp_path_factory, names, cached, later, gone, shuffled):
    """Random walks against random caches (columns in path order or not, entries saved after them, paths dropped,
    racy entries): `walk_differences` (C) answers what `differences` (Python) answers."""
    folder = tmp_path_factory.mktemp("c")
    files = [FileInfo(n, "/p/", 10 + k % 2, 1_000 + k % 3, 50 + k % 2, 1_000 + k % 3, False) for k, n in
             enumerate(sorted(names))]
    entries = {}
    for path, size, when in cached:
        entries[path] = CacheEntry(StatKey(10 + size % 2, 1_000 + when, 50 + size % 2, 1_000 + when), b"\1" * 32,
                                   "file", None)
    if shuffled:
        entries = dict(reversed(list(entries.items())))
    cache_path = folder / "index"
    StatCache(cache_path).save(entries, 1_002)  # an entry of mtime 1_002 is racy under this cutoff
    if later or gone:
        changes = {path: CacheEntry(StatKey(10 + size % 2, 1_000 + size % 3, 50 + size % 2, 1_000 + size % 3),
                                    b"\2" * 32, "file", None) for path, size, _ in later}
        StatCache(cache_path).save_changes(changes, gone, 1_001 if any(r for *_, r in later) else 2_000,
                                           b"\3" * 32, {}, base=None)
    walked = _walked(files)
    assert StatCache(cache_path).walk_differences(walked) == StatCache(cache_path).differences(walked.files)


def test_columns_out_of_order_or_of_other_types_are_compared_in_python(tmp_path, monkeypatch):
    from pvc import _walk

    files = [FileInfo(n, "/p/", 1, 5, 2**64 - 1, 5, False) for n in ("a", "b")]
    walked = _walked(files)
    stat = StatKey(1, 5, 2**64 - 1, 5)  # an inode above 2**63 is still compared in C
    StatCache(tmp_path / "sorted").save({p: CacheEntry(stat, b"\1" * 32, "file", None) for p in "ab"}, 10)
    cache = StatCache(tmp_path / "sorted")
    assert cache._native_differences(walked) == ([], []) == cache.differences(files)
    StatCache(tmp_path / "reversed").save({p: CacheEntry(stat, b"\1" * 32, "file", None) for p in "ba"}, 10)
    cache = StatCache(tmp_path / "reversed")
    assert cache._native_differences(walked) is None and cache.walk_differences(walked) == ([], [])
    col = lambda *values: array("q", values)  # noqa: E731
    ino = lambda n: array("Q", [2**64 - 1] * n)  # noqa: E731
    assert _walk.compare(walked.records, walked.at, b"a\0b", col(1, 1), col(5, 5), ino(2), col(5, 5), 10) == ([], [])
    assert _walk.compare(walked.records, walked.at, b"a\0b", col(1, 2), col(5, 5), ino(2), col(5, 5), 10) == ([1], [])
    assert _walk.compare(walked.records, walked.at, b"a\0c", col(1, 1), col(5, 5), ino(2), col(5, 5), 10) == ([1], [1])
    assert _walk.compare(walked.records, walked.at, b"b\0a", col(1, 1), col(5, 5), ino(2), col(5, 5), 10) is None
    assert _walk.compare(walked.records, walked.at, b"a\0a", col(1, 1), col(5, 5), ino(2), col(5, 5), 10) is None
    assert _walk.compare(walked.records, walked.at, b"a", col(1, 1), col(5), ino(1), col(5), 10) is None  # two lengths
    assert _walk.compare(walked.records, walked.at, b"a\0b", col(1, 1), col(5, 5), ino(2), col(5), 10) is None
    assert _walk.compare(walked.records, walked.at, b"a\0b\0", col(1, 1, 1), col(5, 5, 5), ino(3), col(5, 5, 5),
                         10) is None  # an empty path last: not after the one before


def test_infos_sliced_in_c_are_the_unpackers(tmp_path, monkeypatch):
    """The results part read with pvc/_pages.c's `objects` and with msgpack's Unpacker gives the same entries; a
    part cut short vouches for nothing either way."""
    from pvc import _pages

    rng = random.Random(5)
    infos = [None, {"w": 3, "h": 4}, [1, 2.5, "x"], {"objects": {"a": 1}, "t": [True, None]}, "é", 2**40, b"\0"]
    files = [FileInfo(f"f{k:03d}", "/p/", k, 1, k, 1, False) for k in range(60)]
    entries = {f.relpath: CacheEntry(StatKey(f.size, 1, f.ino, 1), bytes([k]) * 32, "ann", rng.choice(infos))
               for k, f in enumerate(files)}
    StatCache(tmp_path / "index").save(entries, 10, {b"\5" * 32: {"series": "1"}})
    roles = {f.relpath: "ann" for f in files}
    native = StatCache(tmp_path / "index").get_all(files, roles)
    assert native == list(entries.values())
    monkeypatch.setattr(statcache, "_pages", None)
    assert StatCache(tmp_path / "index").get_all(files, roles) == native
    assert StatCache(tmp_path / "index").derived(b"\5" * 32) == {"series": "1"}
    data = msgpack.packb([1, "a", {"x": [1, 2]}, b"zz"])
    assert list(memoryview(_pages.objects(data, 1, 4)).cast("Q")) == [1, 2, 4, 10, len(data)]
    assert _pages.objects(data, 1, 5) is None and _pages.objects(data[:-1], 1, 4) is None


def test_status_json_of_a_changed_project_walks_once(committed, cli, capsys, monkeypatch):
    """The entry point's clean check walks the tree; the report of the changed project takes that walk over (with
    the clock read before it), and says what the full command says."""
    _edited(committed)
    expected = cli("status", "--json", cwd=committed).json()
    walks = _walking_once(committed, monkeypatch)
    assert entry._answer_untouched(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == expected and len(walks) == 1
    assert expected["clean"] is False and expected["files"]["added"]


def test_a_prior_walk_of_another_project_is_not_taken(committed, tmp_path):
    from pvc.core.fastpath import PriorWalk

    repo = Repository(committed)
    other = PriorWalk(str(tmp_path), 1, b"", b"", bytes(32))
    walked = walk_project(repo, repo.stat_cache(), None, {}, other)
    assert walked.paths and walked.paths == [f.relpath for f in scan(committed, Ignore([]))]


def _settled_lock(root) -> None:
    """Wait until the file system's clock has moved past the lock file's last change (a commit just let go of it):
    the entry point takes a walk over only when the lock file is older than the clock it read before walking."""
    import time

    from pvc.store.clock import fs_clock

    lock = root / ".pvc" / "lock"
    while fs_clock(root / ".pvc" / "tmp") <= lock.stat().st_ctime_ns:
        time.sleep(0.002)


def _walking_once(root, monkeypatch) -> list:
    """From `root`: the walks the entry point's check takes (appended to the list returned); a walk by the capture,
    or the full command line, fails the test."""
    walks: list = []
    real = walk_module.native_walk
    monkeypatch.setattr(fastpath, "native_walk", lambda *a: walks.append(a) or real(*a))
    monkeypatch.setattr(capture_walk, "native_walk", lambda *a: pytest.fail("the capture walked again"))
    monkeypatch.setattr(full_cli, "main", lambda argv: pytest.fail("the full command line ran"))
    monkeypatch.chdir(root)
    return walks


def _edited(root) -> None:
    ann = sorted(root.glob("train/ann/*.json"))[0]
    ann.write_text(ann.read_text().replace("{", "{ ", 1))
    (root / "train" / "new.txt").write_text("new")


def test_commit_json_of_a_changed_project_walks_once_under_one_lock(committed, cli, capsys, monkeypatch, tmp_path):
    """`pvc commit --json` on a changed project: committed from the entry point's walk, under the lock it took for its
    check, without the CLI; the version is the one the full command makes."""
    import shutil

    _edited(committed)
    twin = tmp_path / "twin"
    shutil.copytree(committed, twin, symlinks=True)
    expected = cli("commit", "-m", "v2", "--json", cwd=twin).json()
    _settled_lock(committed)
    walks = _walking_once(committed, monkeypatch)
    assert entry._answer_untouched(["commit", "-m", "v2", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["created"] is True and got["manifest"] == expected["manifest"] and len(walks) == 1
    assert got["files_hashed"] == 2 and Repository(committed).versions()[-1].title == "v2"  # the edit, the new file
    assert entry._answer_untouched(["status", "--json"]) == 0 and json.loads(capsys.readouterr().out)["clean"]


def test_a_writer_between_the_walk_and_the_lock_makes_the_commit_walk_again(committed, capsys, monkeypatch):
    """A writer that takes and lets go of the lock while the entry point walks (a discard may have changed the files
    the walk saw) changes the lock file: the commit then walks again, under its lock."""
    _edited(committed)
    _settled_lock(committed)
    real_lock = Repository.lock

    def lock_after_a_writer(self, timeout=60.0):
        if timeout == 0:  # the entry point's: another writer gets there first, and is done
            with real_lock(self, timeout=5):
                pass
        return real_lock(self, timeout)

    walks = []
    real = capture_walk.native_walk
    monkeypatch.setattr(Repository, "lock", lock_after_a_writer)
    monkeypatch.setattr(capture_walk, "native_walk", lambda *a: walks.append(a) or real(*a))
    monkeypatch.chdir(committed)
    assert entry._answer_untouched(["commit", "-m", "v2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["created"] is True and len(walks) == 1


def test_an_error_of_a_commit_answered_by_the_entry_point_is_said_as_the_cli_says_it(committed, capsys, monkeypatch,
                                                                                       tmp_path):
    import shutil

    ann = sorted(committed.glob("train/ann/*.json"))[0]
    ann.write_text("{ not json")
    twin = tmp_path / "twin"
    shutil.copytree(committed, twin, symlinks=True)
    monkeypatch.chdir(twin)
    code = full_cli.main(["commit", "-m", "v2", "--json"])
    full = capsys.readouterr()
    monkeypatch.chdir(committed)
    monkeypatch.setattr(full_cli, "main", lambda argv: pytest.fail("the full command line ran"))
    assert entry.main(["commit", "-m", "v2", "--json"]) == code != 0
    fast = capsys.readouterr()
    assert (fast.out, fast.err) == (full.out.replace(str(twin), str(committed)), full.err.replace(str(twin), str(committed)))
    assert json.loads(fast.out)["error"]["type"] == "BadInput" and len(Repository(committed).versions()) == 1


def test_a_taken_lock_leaves_the_commit_to_the_cli(committed, monkeypatch):
    _edited(committed)
    monkeypatch.chdir(committed)
    with Repository(committed).lock(timeout=5):
        assert entry._answer_untouched(["commit", "-m", "v2", "--json"]) is None
    assert len(Repository(committed).versions()) == 1


def test_inodes_of_2_63_and_more_are_saved_and_read_back(tmp_path):
    """The inodes column is kept as differences; two neighbours far apart (2**64 - 1, then 1) make a difference that
    no 64-bit integer holds: it is wrapped, and read back as the inodes themselves."""
    inodes = [2**64 - 1, 1, 2**63, 5]
    files = [FileInfo(f"f{k}", "/p/", 1, 5, ino, 5, False) for k, ino in enumerate(inodes)]
    entries = {f.relpath: CacheEntry(StatKey(1, 5, f.ino, 5), b"\1" * 32, "file", None) for f in files}
    StatCache(tmp_path / "index").save(entries, 10)
    cache = StatCache(tmp_path / "index")
    assert cache.differences(files) == ([], []) and cache.walk_differences(_walked(files)) == ([], [])
    assert cache.get_all(files, {f.relpath: "file" for f in files}) == list(entries.values())


def test_a_cutoff_no_clock_gives_is_compared_in_python(tmp_path):
    files = [FileInfo("a", "/p/", 1, 5, 2, 5, False)]
    StatCache(tmp_path / "index").save({"a": CacheEntry(StatKey(1, 5, 2, 5), b"\1" * 32, "file", None)}, 2**64 - 5)
    cache = StatCache(tmp_path / "index")
    assert cache._native_differences(_walked(files)) is None
    assert cache.walk_differences(_walked(files)) == cache.differences(files) == ([], [])


def test_offsets_that_do_not_match_the_records_are_refused():
    import struct

    from pvc import _walk

    files = [FileInfo(n, "/p/", 1, 5, 2, 5, False) for n in ("a", "bb")]
    walked = _walked(files)
    for at in (struct.pack("=Q", 2**64 - 16), struct.pack("=Q", 2), struct.pack("=Q", 2)[:8] + struct.pack("=Q", 1),
               bytes(walked.at)[:8]):  # beyond the end, inside a path, out of order, records left over
        with pytest.raises(ValueError):
            _walk.compare(walked.records, at, b"", b"", b"", b"", b"", 10)


def test_a_writer_killed_holding_the_lock_makes_the_commit_walk_again(committed, capsys, monkeypatch):
    """A writer killed while holding the lock (the kernel lets the flock go) leaves its record in the lock file: it
    may have changed files the walk saw, so the walk is not taken over."""
    _edited(committed)
    (committed / ".pvc" / "lock").write_text('{"pid": 1, "host": "elsewhere", "since": "2026-01-01T00:00:00+00:00"}')
    _settled_lock(committed)
    walks = []
    real = capture_walk.native_walk
    monkeypatch.setattr(capture_walk, "native_walk", lambda *a: walks.append(a) or real(*a))
    monkeypatch.chdir(committed)
    assert entry._answer_untouched(["commit", "-m", "v2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["created"] is True and len(walks) == 1
    _edited(committed)
    _settled_lock(committed)  # the commit emptied the file as it let go: the next one takes its walk over
    walks.clear()
    assert entry._answer_untouched(["commit", "-m", "v3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["created"] is True and walks == []


@pytest.mark.parametrize("ctime, vouched", [(9, True), (10, False), (11, False)])
def test_an_entry_vouches_only_when_its_ctime_too_is_older_than_the_cutoff(tmp_path, ctime, vouched):
    """A file whose mtime was put back (touch -d, a copy keeping times) in the tick the scan began could be rewritten
    within that tick, same size, mtime put back again, unseen: its ctime, at or after the cutoff, makes it racy. The
    C comparison, the Python one and an entry saved after the columns (`save_changes`) all say so."""
    files = [FileInfo(n, "/p/", 1, 5, 7 + k, ctime, False) for k, n in enumerate(("a", "b"))]
    walked = _walked(files)
    entries = {f.relpath: CacheEntry(StatKey(1, 5, f.ino, ctime), b"\1" * 32, "file", None) for f in files}
    StatCache(tmp_path / "index").save(entries, 10)
    expected = ([], []) if vouched else ([0, 1], [])
    cache = StatCache(tmp_path / "index")
    assert cache._native_differences(walked) == expected == cache.differences(files)
    StatCache(tmp_path / "later").save({"z": CacheEntry(StatKey(1, 5, 99, 5), b"\2" * 32, "file", None)}, 10)
    assert StatCache(tmp_path / "later").save_changes({"a": entries["a"]}, [], 10, b"\3" * 32, {}, base=None)
    assert (StatCache(tmp_path / "later").differences(files[:1])[0] == []) is vouched
