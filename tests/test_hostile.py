"""Hostile input: random bytes into every decoder, crafted objects, deep trees, a full disk.

Each decoder must answer garbage with a one-line `PvcError` (or, for the stat cache, by ignoring it), never
with another exception; a full disk must give a clear error and leave the store as it was.
"""

from __future__ import annotations

import errno
import json
import os
import types

import pytest
from helpers import put_raw, store_state, tree_bytes
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from storekit import add_orphans, age_packs

from pvc.core.reach import Root, Walker
from pvc.core.snapshot import Snapshot
from pvc.errors import ObjectMissing, PvcError
from pvc.sample import mutate_image_project
from pvc.store import atomic as atomic_module
from pvc.store.backend import ObjectInfo
from pvc.store.local import packs as packs_module
from pvc.store.local.packcheck import check_pack
from pvc.store.local.packindex import IDX_MAGIC, PackIndex
from pvc.store.local.packs import Codec, decode_chunk_list, parse_records
from pvc.store.model import Page, PageRef
from pvc.store.objects import decode, encode, hash_bytes
from pvc.store.pages import iter_entries
from pvc.store.refs import _checksum, read_versions
from pvc.store.repository import Repository
from pvc.store.statcache import StatCache, StatKey

EXAMPLES = 2000 if os.environ.get("PVC_SOAK") == "1" else 150
fuzz = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                             HealthCheck.too_slow])

# msgpack-encodable junk, with the strings and sizes that hurt: "..", "/", NUL, 32-byte ids, huge ints
_leaf = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.sampled_from(["..", "/etc", "a\x00b", "", "."])
         | st.text(max_size=6) | st.binary(max_size=6) | st.binary(min_size=32, max_size=32))
json_junk = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=6),
                         lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4), max_leaves=16)
junk = st.recursive(_leaf, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                    max_leaves=16)


# -- decoders fed random bytes ---------------------------------------------------------------------------


@fuzz
@given(st.binary(max_size=300))
@example(b"\xdd\xff\xff\xff\xff")  # an array header claiming 4 billion items, then nothing
@example(b"\xc6\xff\xff\xff\xf0abc")  # a bin header claiming 4 GB
def test_objects_decode(data):
    try:
        assert isinstance(decode(data), dict)
    except PvcError as exc:
        assert "\n" not in str(exc)


@fuzz
@given(st.binary(max_size=2000), st.booleans())
def test_pack_index_random_files(tmp_path, data, with_magic):
    path = tmp_path / "x.idx"
    path.write_bytes((IDX_MAGIC + data) if with_magic else data)
    with pytest.raises(PvcError):
        PackIndex(path).close()


@fuzz
@given(st.integers(0, 3), st.lists(st.binary(min_size=64, max_size=64), max_size=20), st.binary(min_size=1024, max_size=1024))
def test_pack_index_with_a_valid_checksum_but_crafted_content(tmp_path, packs, entries, fanout):
    """Past the checksum (as a crafted file would be): lookups and iteration still only raise PvcError."""
    import struct

    import blake3
    body = struct.pack("<8sIQ", IDX_MAGIC, packs, len(entries)) + bytes(32 * packs) + fanout + b"".join(entries)
    path = tmp_path / "c.idx"
    path.write_bytes(body + blake3.blake3(body).digest())
    try:
        idx = PackIndex(path)
    except PvcError:
        return
    try:
        for oid, _ in idx:
            idx.lookup(oid)
        idx.lookup(bytes(32))
    except PvcError:
        pass
    finally:
        idx.close()


@fuzz
@given(st.binary(max_size=400))
def test_refs_random_bytes(tmp_path, data):
    path = tmp_path / "versions"
    path.write_bytes(data)
    try:
        read_versions(path)
    except PvcError as exc:
        assert "versions.bak" in str(exc)


@fuzz
@given(st.lists(json_junk, max_size=4))
def test_refs_with_a_valid_checksum_but_junk_records(tmp_path, versions):
    path = tmp_path / "versions"
    path.write_text(json.dumps({"format": 1, "checksum": _checksum(versions), "versions": versions}))
    try:
        read_versions(path)
    except PvcError:
        pass


@fuzz
@given(st.binary(max_size=400) | junk.map(lambda j: encode({"format": 2, "scan_started": 0, "entries": j})))
def test_stat_cache_ignores_garbage(tmp_path, data):
    path = tmp_path / "index"
    path.write_bytes(data)
    cache = StatCache(path)  # damaged: treated as empty, never an error
    cache.get("a", StatKey(1, 1, 1, 1), "file")


@fuzz
@given(st.binary(max_size=600), st.booleans())
def test_pack_walk_never_raises(tmp_path, data, with_magic):
    blob = (packs_module.PACK_MAGIC + data) if with_magic else data
    parse_records(blob, len(blob))
    path = tmp_path / (hash_bytes(blob).hex() + ".pack")
    path.write_bytes(blob)
    check_pack(path)


@fuzz
@given(st.binary(max_size=200) | junk.map(lambda j: encode({"x": j})[1:]))
def test_chunk_list_decoder(data):
    try:
        decode_chunk_list(data, bytes(32))
    except PvcError:
        pass


# -- crafted structured objects: the walker of verify/gc, and Snapshot (restore, ls, cat) ---------------


class DictStore:
    """The part of the store interface that Snapshot and Walker use, over a dict of encoded objects."""

    def __init__(self) -> None:
        self.objects: dict[bytes, bytes] = {}

    def add(self, obj) -> bytes:
        data = obj if isinstance(obj, bytes) else encode(obj)
        oid = hash_bytes(data)
        self.objects[oid] = data
        return oid

    def get_object(self, oid: bytes, cls):
        if oid not in self.objects:
            raise ObjectMissing(f"object {oid.hex()} is missing from the store")
        return cls.decode(self.objects[oid], oid)

    def info(self, oid: bytes):
        data = self.objects.get(oid)
        return None if data is None else ObjectInfo(len(data), False, len(data))

    def chunk_list(self, oid: bytes):
        return None


def _crafted_version(draw) -> tuple[DictStore, bytes]:
    store = DictStore()
    blob = store.add(b"blob")
    some_id = st.sampled_from([blob, bytes(32)]) | junk
    file_value = st.one_of(junk, st.tuples(some_id, junk | st.integers(0, 9), junk | st.just(0o644)).map(list))
    item_value = junk | st.fixed_dictionaries({}, optional={k: junk | st.text(max_size=4) for k in
                                                            ("media", "ann", "media_files", "companions")})
    pages = {}
    for kind, value in (("files", file_value), ("items", item_value)):
        entries = draw(st.lists(st.one_of(junk, st.tuples(st.text(max_size=6) | junk, value).map(list)), max_size=4))
        pages[kind] = store.add({"type": "page", "kind": draw(st.sampled_from([kind, "other"]) | junk), "entries": entries})
    ref = lambda kind: st.one_of(junk, st.tuples(st.text(max_size=4) | junk, st.just(pages[kind]) | some_id,
                                                 st.integers(0, 2**62) | junk).map(list))
    tree = {"type": "tree", "name": "", "files": draw(st.lists(ref("files"), max_size=3) | junk),
            "items": draw(st.lists(ref("items"), max_size=3) | junk), "children": []}
    child = store.add(tree)
    tree["children"] = draw(st.lists(st.one_of(junk, st.tuples(st.text(max_size=5) | junk, st.text(max_size=5) | junk,
                                                                st.just(child) | some_id).map(list)), max_size=2) | junk)
    root = store.add(tree if draw(st.booleans()) else draw(junk.map(lambda j: {"type": "tree", "x": j})))
    manifest = store.add({"type": draw(st.sampled_from(["manifest", "tree"])), "format": 1, "root": draw(st.just(root) | some_id)})
    return store, manifest


crafted = st.composite(_crafted_version)()


def _one_dataset(files: list | None = None, items: list | None = None) -> tuple[DictStore, bytes]:
    """A version with one dataset whose files root is `files`, or whose one items page holds `items`."""
    store = DictStore()
    if items is not None:
        page = store.add({"type": "page", "kind": "items", "entries": [[f"i{n}", v] for n, v in enumerate(items)]})
        items = [["i0", page, len(items)]]
    tree = store.add({"type": "tree", "name": "ds", "files": files or [], "items": items or [], "children": []})
    root = store.add({"type": "tree", "name": "", "files": [], "items": [], "children": [["ds", "ds", tree]]})
    return store, store.add({"type": "manifest", "format": 1, "root": root})


@fuzz
@given(crafted)
def test_walker_reports_damage_and_never_raises(version):
    store, manifest = version
    for damage in Walker(store).walk(Root("v1", 1, manifest)):
        assert "\n" not in damage.what


@fuzz
@given(crafted)
@example(_one_dataset(files=[5]))  # a page reference that is not a list
@example(_one_dataset(files=[["a", 10**12, 1]]))  # an int where the page id goes (bytes(10**12) would allocate 1 TB)
@example(_one_dataset(items=[{"media": "a", "media_files": 5}]))  # media_files that is not a list
def test_snapshot_gives_only_pvc_errors(version):
    store, manifest = version
    try:
        list(Snapshot(store, manifest).files())
    except PvcError as exc:
        assert "\n" not in str(exc)


@pytest.mark.parametrize("entries", [[[1, 2]], [["a", 2]], [["b", [bytes(32), 1, 420]], ["a", [bytes(32), 1, 420]]],
                                     [["../x", [bytes(32), 1, 420]]]])
def test_a_malformed_page_is_refused_where_it_is_decoded(entries):
    with pytest.raises(PvcError):
        Page.decode(encode({"type": "page", "kind": "files", "entries": entries}), bytes(32))


def test_a_page_that_is_not_what_its_reference_says_is_refused():
    page = Page.decode(encode({"type": "page", "kind": "files", "entries": [["a", [bytes(32), 1, 420]]]}), bytes(32))
    for ref in (PageRef("a", bytes(32), 2), PageRef("b", bytes(32), 1)):
        with pytest.raises(PvcError):
            list(iter_entries((ref,), lambda oid: page, "files"))


# -- crafted versions through the CLI: verify names them, gc refuses, restore refuses without writing -------


def _craft(project, files_root: list, items_root: list | None = None) -> int:
    repo = Repository(project)
    store = repo.store
    tree = put_raw(store, {"type": "tree", "name": "ds", "files": files_root, "items": items_root or [], "children": []})
    root = put_raw(store, {"type": "tree", "name": "", "files": [], "items": [], "children": [["ds", "ds", tree]]})
    manifest = put_raw(store, {"type": "manifest", "format": 1, "root": root, "stats": {}})
    store.flush()
    from pvc.store.refs import VersionRecord
    versions = repo.versions()
    repo.write_versions([*versions, VersionRecord(len(versions) + 1, manifest.hex(), "crafted", None,
                                                  "2026-01-01T00:00:00+00:00", "x", None)])
    repo.close()
    return len(versions) + 1


def _page(project, kind: str, entries: list) -> bytes:
    repo = Repository(project)
    oid = put_raw(repo.store, {"type": "page", "kind": kind, "entries": entries})
    repo.store.flush()
    repo.close()
    return oid


@pytest.mark.parametrize("name", ["../escape", "/abs", "a\x00b", "a/../../b"])
def test_crafted_paths_and_duplicates(initialised, cli, tmp_path, name):
    blob = bytes.fromhex("00" * 32)
    page = _page(initialised, "files", [[name, [blob, 1, 0o644]], ["dup", [blob, 1, 0o644]], ["dup", [blob, 1, 0o644]]])
    number = _craft(initialised, [[name, page, 3]])
    doc = cli("verify", "--json", cwd=initialised).json()
    assert any("unsafe path" in p["what"] and p["versions"] == [f"v{number}"] for p in doc["problems"])
    r = cli("gc", "--grace", "0")
    assert r.code == 2 and "gc refuses" in r.err
    r = cli("restore", number, "--to", tmp_path / "out", "--skip-missing")
    assert r.code == 2 and r.err.count("\n") == 1 and not (tmp_path / "out").exists()
    assert not (tmp_path / "escape").exists() and not (tmp_path.parent / "b").exists()


def test_huge_counts_are_only_numbers(initialised, cli, tmp_path):
    """An entry count of 2^62 in a page reference is not trusted for anything (no allocation, no loop): the
    page does not hold what the reference says, so the version is damaged there, and nothing is written."""
    blob_repo = Repository(initialised)
    blob = blob_repo.store.put(b"tiny")
    blob_repo.store.flush()
    blob_repo.close()
    page = _page(initialised, "files", [["a.txt", [blob, 4, 0o644]]])
    number = _craft(initialised, [["a.txt", page, 2**62]])
    doc = cli("verify", "--json", cwd=initialised).json()
    assert [p["versions"] for p in doc["problems"]] == [[f"v{number}"]]
    r = cli("restore", number, "--to", tmp_path / "out")
    assert r.code == 2 and "does not hold what its reference says" in r.err and not (tmp_path / "out").exists()
    page_ok = _craft(initialised, [["a.txt", page, 1]])
    assert cli("restore", page_ok, "--to", tmp_path / "out").code == 0
    assert (tmp_path / "out" / "ds" / "a.txt").read_bytes() == b"tiny"


def test_truncated_and_garbage_objects_are_corrupt_not_crashes(initialised, cli, tmp_path):
    """A record whose bytes are a truncated zstd frame or truncated msgpack reads as corrupt (exit 2)."""
    import zstandard
    repo = Repository(initialised)
    store = repo.store
    full = encode({"type": "page", "kind": "files", "entries": [["x", [bytes(32), 1, 420]]] * 50})
    frame = zstandard.ZstdCompressor().compress(full)
    bad_zstd = hash_bytes(full)
    bad_msgpack = hash_bytes(full[:-7])
    with repo.lock():
        store.put_record(bad_zstd, Codec.ZSTD, len(full), frame[:-9])  # the header is right, the frame is cut
        store.put_record(bad_msgpack, Codec.RAW, len(full) - 7, full[:-7])  # hashes right, does not parse
        store.flush()
    repo.close()
    number = _craft(initialised, [["x", bad_zstd, 50]], [["y", bad_msgpack, 1]])
    doc = cli("verify", "--json", cwd=initialised).json()
    whats = {p["subject"].split()[1]: p["what"] for p in doc["problems"]}
    assert "zstd" in whats[bad_zstd.hex()] or "content" in whats[bad_zstd.hex()]
    assert "msgpack" in whats[bad_msgpack.hex()]
    r = cli("restore", number, "--to", tmp_path / "out")
    assert r.code == 2 and r.err.count("\n") == 1


# -- hostile projects --------------------------------------------------------------------------------------


def _deep(root, depth: int) -> None:
    """`root/d/d/.../d/f.txt`, built through directory fds (the path is longer than PATH_MAX)."""
    fd = os.open(root, os.O_RDONLY)
    for _ in range(depth):
        os.mkdir("d", dir_fd=fd)
        nfd = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = nfd
    out = os.open("f.txt", os.O_WRONLY | os.O_CREAT, dir_fd=fd)
    os.write(out, b"deep")
    os.close(out)
    os.close(fd)


def _remove_deep(root) -> None:
    """Delete `root/d/d/...` one level at a time with short paths (rmtree would recurse 10k deep)."""
    while (root / "d").exists():
        if (root / "d" / "d").exists():
            os.rename(root / "d" / "d", root / "d.next")
        for leftover in (root / "d").iterdir():
            leftover.unlink()
        os.rmdir(root / "d")
        if (root / "d.next").exists():
            os.rename(root / "d.next", root / "d")


def test_ten_thousand_deep_tree_is_a_clear_error(initialised, cli):
    _deep(initialised, 10_000)
    try:
        before = store_state(initialised)
        r = cli("commit", "-m", "deep", cwd=initialised)
        assert r.code == 1 and r.err.count("\n") == 1 and "File name too long" in r.err and "internal error" not in r.err
        assert store_state(initialised) == before
    finally:
        _remove_deep(initialised)  # pytest's own clean-up recurses per level and would fail on it


def test_thousand_five_hundred_deep_tree_commits_and_restores(initialised, cli, tmp_path):
    _deep(initialised, 1500)
    r = cli("commit", "-m", "deep", cwd=initialised)
    try:
        assert r.code == 0, r.err
        assert cli("restore", "1", "--to", tmp_path / "out").code == 0
        assert (tmp_path / "out" / ("d/" * 1500 + "f.txt")).read_bytes() == b"deep"
    finally:
        _remove_deep(initialised)
        _remove_deep(tmp_path / "out")


# -- a full disk -------------------------------------------------------------------------------------------


class _FullDisk:
    """A file object whose writes fail with ENOSPC once `budget` bytes have been written."""

    def __init__(self, f, budget: int) -> None:
        self._f, self._left = f, budget

    def write(self, data) -> int:
        if len(data) > self._left:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._left -= len(data)
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


def _os_with_full_disk(budget: int, only: str | None = None) -> types.SimpleNamespace:
    """A stand-in for the `os` module whose fdopen'ed files fill up after `budget` bytes (for paths containing `only`)."""
    def fdopen(fd, *args, **kwargs):
        f = os.fdopen(fd, *args, **kwargs)
        if only is None or only in os.readlink(f"/proc/self/fd/{fd}"):
            return _FullDisk(f, budget)
        return f
    return types.SimpleNamespace(**{k: getattr(os, k) for k in dir(os) if not k.startswith("__")} | {"fdopen": fdopen})


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to name an fd's file")
@pytest.mark.parametrize("where", ["pack", "index", "refs"])
def test_full_disk_gives_a_clear_error_and_changes_nothing(initialised, cli, monkeypatch, where, tmp_path):
    assert cli("commit", "-m", "one", cwd=initialised).code == 0
    mutate_image_project(initialised, seed=9)
    before, tree_before = store_state(initialised), tree_bytes(initialised)
    with monkeypatch.context() as m:
        if where == "pack":
            m.setattr(packs_module, "os", _os_with_full_disk(5000))
        else:
            m.setattr(atomic_module, "os", _os_with_full_disk(0, ".idx." if where == "index" else ".versions."))
        r = cli("commit", "-m", "two")
    assert r.code == 1 and r.err.count("\n") == 1 and "No space left on device" in r.err, r.err
    assert "Traceback" not in r.err and "internal error" not in r.err
    assert tree_bytes(initialised) == tree_before
    assert not any((initialised / ".pvc" / "tmp").iterdir())
    assert not list((initialised / ".pvc").glob(".*.tmp")) and not list((initialised / ".pvc" / "packs").glob(".*.tmp"))
    if where == "refs":  # the new objects were published before the refs write failed: orphans, no version
        assert {k: v for k, v in store_state(initialised).items() if k.startswith("versions")} == \
            {k: v for k, v in before.items() if k.startswith("versions")}
    else:
        assert store_state(initialised) == before
    doc = cli("verify", "--json").json()
    assert doc["ok"] and doc["versions"] == 1
    assert cli("commit", "-m", "two").code == 0  # space again: the same commit goes through


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to name an fd's file")
def test_full_disk_during_gc_changes_nothing(initialised, cli, monkeypatch, tmp_path):
    cli("commit", "-m", "one", cwd=initialised)
    repo = Repository(initialised)
    with repo.lock():  # a pack with live and dead records: gc must rewrite it
        store = repo.reopen_store()
        for _ in range(6):
            store.put(os.urandom(3000), compress=False)
        store.put(b"live bytes " * 100, compress=False)
        store.flush()
    repo.close()
    (initialised / "live.txt").write_bytes(b"live bytes " * 100)
    cli("commit", "-m", "two")
    add_orphans(initialised)
    age_packs(initialised)
    before = store_state(initialised)
    with monkeypatch.context() as m:
        m.setattr(packs_module, "os", _os_with_full_disk(100))
        r = cli("gc", "--grace", "0")
    assert r.code == 1 and "No space left on device" in r.err and r.err.count("\n") == 1
    assert store_state(initialised) == before and not any((initialised / ".pvc" / "tmp").iterdir())
    assert cli("verify").code == 0
    assert cli("gc", "--grace", "0").code == 0 and cli("verify").code == 0
    assert cli("restore", "2", "--to", tmp_path / "out", "--verify").code == 0
    assert (tmp_path / "out" / "live.txt").read_bytes() == b"live bytes " * 100


def test_walker_survives_datasets_nested_beyond_the_recursion_limit():
    store = DictStore()
    tree = store.add({"type": "tree", "name": "x", "files": [], "items": [], "children": []})
    for depth in range(3000):
        tree = store.add({"type": "tree", "name": f"d{depth}", "files": [], "items": [], "children": [["d", "d", tree]]})
    manifest = store.add({"type": "manifest", "format": 1, "root": tree})
    damage = Walker(store).walk(Root("v1", 1, manifest))
    assert [d.what for d in damage] == ["datasets nested too deeply to walk"]
