"""The object store on its own: ids, codecs, packs, indexes, pages, refs, stat cache."""

from __future__ import annotations

import io
import json
import os
import random
from types import SimpleNamespace

import blake3
import msgpack
import pytest
import zstandard

from pvc.errors import CorruptObject, ObjectMissing
from pvc.store import objects
from pvc.store.objects import hash_bytes
from pvc.store.local.packindex import PackIndex
from pvc.store.local.packs import Codec
from pvc.store.model import FileValue, Page
from pvc.store.pages import build_pages, iter_entries
from pvc.store.refs import VersionRecord, read_versions, write_versions
from pvc.store.repository import Repository
from pvc.store.statcache import CacheEntry, StatCache, StatKey, fs_clock


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "p"
    root.mkdir()
    r = Repository.init(root)
    yield r
    r.close()


def test_blob_id_is_blake3_of_the_bytes(repo):
    data = os.urandom(5000)
    assert repo.store.put(data) == blake3.blake3(data).digest()


def test_round_trip_and_visibility_only_after_flush(repo):
    data = b'{"objects": []}' * 100
    oid = repo.store.put(data)
    assert repo.store.has(oid)
    assert not list((repo.dir / "packs").glob("*.pack"))  # staged under tmp/ until flush
    repo.store.flush()
    assert len(list((repo.dir / "packs").glob("*.pack"))) == 1
    fresh = Repository(repo.project_root).store
    assert fresh.get(oid) == data


def test_abort_leaves_nothing_behind(repo):
    repo.store.put(os.urandom(100))
    repo.store.abort()
    assert not list((repo.dir / "packs").iterdir()) and not list((repo.dir / "tmp").iterdir())


def test_compression_only_where_it_pays(repo):
    store = repo.store
    text = json.dumps([{"classTitle": "car", "points": [[i, i]]} for i in range(2000)]).encode()
    noise = os.urandom(200_000)
    t, n = store.put(text), store.put(noise)
    store.flush()
    assert store.locate(t).codec == Codec.ZSTD and store.locate(t).stored_len < len(text) / 3
    assert store.locate(n).codec == Codec.RAW and store.locate(n).stored_len == len(noise)
    assert store.get(t) == text and store.get(n) == noise


def test_chunked_file_dedups_unchanged_chunks(repo, tmp_path):
    store = repo.store
    store.chunk_threshold = 1 << 20
    big = tmp_path / "big.bin"
    data = bytearray(random.Random(12).randbytes(12 << 20))  # (seeded: the chunk boundaries are the same every run)
    big.write_bytes(data)
    first = store.put_file(big, len(data))
    store.flush()
    packed = sum(p.stat().st_size for p in (repo.dir / "packs").glob("*.pack"))
    data[6 << 20 : (6 << 20) + 1000] = os.urandom(1000)  # in-place edit in the middle
    big.write_bytes(data)
    second = store.put_file(big, len(data))
    store.flush()
    grown = sum(p.stat().st_size for p in (repo.dir / "packs").glob("*.pack")) - packed
    assert first != second and second == blake3.blake3(bytes(data)).digest()
    assert store.locate(second).codec == Codec.CHUNKED
    before = {cid for cid, _ in store.chunk_list(first)}
    new_chunks = [size for cid, size in store.chunk_list(second) if cid not in before]
    assert 1 <= len(new_chunks) <= 2  # the chunk the edit is in, and the next one where a boundary moved
    assert grown < sum(new_chunks) + (64 << 10)  # those chunks (and the chunk list), not the whole file
    assert grown < len(data) / 2
    out = io.BytesIO()
    assert store.write_to(second, out) == len(data) and out.getvalue() == bytes(data)


def test_corrupt_byte_is_detected(repo):
    oid = repo.store.put(os.urandom(1000), compress=False)
    repo.store.flush()
    loc = repo.store.locate(oid)
    pack = repo.dir / "packs" / f"{loc.pack.hex()}.pack"
    raw = bytearray(pack.read_bytes())
    raw[loc.offset + 500] ^= 1
    pack.write_bytes(bytes(raw))
    store = Repository(repo.project_root).store
    with pytest.raises(CorruptObject):
        store.get(oid)
    with pytest.raises(CorruptObject):
        store.write_to(oid, io.BytesIO())


def test_damaged_index_is_a_clear_error(repo):
    repo.store.put(b"x" * 100)
    repo.store.flush()
    idx = next((repo.dir / "packs").glob("*.idx"))
    raw = bytearray(idx.read_bytes())
    raw[len(raw) // 2] ^= 0x40
    idx.write_bytes(bytes(raw))
    with pytest.raises(CorruptObject, match="index .* checksum mismatch"):
        Repository(repo.project_root).store.has(b"\0" * 32)


def test_missing_object(repo):
    with pytest.raises(ObjectMissing):
        repo.store.get(b"\1" * 32)


def test_many_index_files_are_consolidated(repo):
    ids = []
    for i in range(12):
        ids.append(repo.store.put(f"object {i}".encode() * 10))
        repo.store.flush()
    assert len(list((repo.dir / "packs").glob("*.idx"))) <= 8
    store = Repository(repo.project_root).store
    assert all(store.get(oid) for oid in ids)
    assert sorted(store.iter_ids()) == sorted(ids)


def test_index_lookup_over_many_entries(repo):
    ids = [repo.store.put(os.urandom(40)) for _ in range(3000)]
    repo.store.flush()
    idx = PackIndex(next((repo.dir / "packs").glob("*.idx")))
    assert idx.count == 3000
    assert all(idx.lookup(oid) is not None for oid in ids)
    assert idx.lookup(b"\xff" * 32) is None and idx.lookup(b"\0" * 32) is None
    idx.close()


def test_canonical_encoding_ignores_key_order():
    assert objects.encode({"b": 1, "a": {"y": 2, "x": 3}}) == objects.encode({"a": {"x": 3, "y": 2}, "b": 1})
    with pytest.raises(CorruptObject):
        objects.decode(b"\xc1garbage")


def test_pages_change_locally():
    pages: dict[bytes, Page] = {}

    def put(page):
        oid = objects.hash_bytes(page.encode())
        pages[oid] = page
        return oid

    entries = [(f"img_{i:06d}.jpg", FileValue(bytes(32), i, 0o644)) for i in range(5000)]
    root = build_pages("files", entries, put)
    assert len(root) > 5 and sum(r.count for r in root) == 5000
    edited = list(entries)
    edited.insert(2500, ("img_002500a.jpg", FileValue(bytes(32), 1, 0o644)))
    root2 = build_pages("files", edited, put)
    before, after = {r.oid for r in root}, {r.oid for r in root2}
    assert len(after - before) <= 2
    assert list(iter_entries(root2, lambda oid: pages[oid], "files")) == edited


def test_refs_round_trip_backup_and_damage(tmp_path):
    path = tmp_path / "versions"
    rec = VersionRecord(1, "ab" * 32, "t", {"k": [1]}, "2026-01-01T00:00:00+00:00", "me", None, {"items": 1})
    write_versions(path, [rec])
    write_versions(path, [rec, VersionRecord(2, "cd" * 32, "u", None, "2026-01-02T00:00:00+00:00", "me", 1)])
    assert [r.number for r in read_versions(path)] == [1, 2]
    assert [r.number for r in read_versions(path.with_name("versions.bak"))] == [1]
    doc = json.loads(path.read_text())
    doc["versions"][0]["title"] = "tampered"
    path.write_text(json.dumps(doc))
    with pytest.raises(CorruptObject, match="versions.bak"):
        read_versions(path)


def test_stat_cache_trusts_only_unchanged_old_entries(tmp_path):
    path = tmp_path / "index"
    old = StatKey(10, 1_000, 5, 1_000)
    started = fs_clock(tmp_path)
    StatCache(path).save({"a": CacheEntry(old, b"\1" * 32, "file", None)}, started)
    cache = StatCache(path)
    assert cache.get("a", old, "file").oid == b"\1" * 32
    assert cache.get("a", StatKey(10, 1_000, 5, 2_000), "file") is None  # ctime moved
    assert cache.get("a", old, "ann") is None  # role changed
    racy = StatKey(10, started, 5, 1_000)  # modified in the tick the scan began
    StatCache(path).save({"a": CacheEntry(racy, b"\1" * 32, "file", None)}, started)
    assert StatCache(path).get("a", racy, "file") is None
    path.write_bytes(b"garbage")
    assert StatCache(path).get("a", old, "file") is None


def test_a_format_6_stat_cache_is_read_and_saved_again_as_format_7(tmp_path):
    """A cache the previous pvc wrote (format 6: the stats as msgpack integers, inodes as differences, one of them
    past 2**63 kept modulo 2**64) vouches for its entries as it did; what is saved beside its entries (a status's
    changes, a tree record) is written in format 7 and still vouches for them."""
    path = tmp_path / "index"
    keys = {"a.json": StatKey(3, 1_000, 2**64 - 5, 1_001), "b/c.jpg": StatKey(70_000, 2_000, 9, 2_002),
            "é.txt": StatKey(0, -5, 11, 7), "z.txt": StatKey(1, 2**63 + 5, 12, 2**63 + 5)}  # z: dated after 2262
    inodes = [k.ino for k in keys.values()]
    steps = inodes[:1] + [(b - a + 2**63) % 2**64 - 2**63 for a, b in zip(inodes, inodes[1:])]
    stats = [list(keys), [k.size for k in keys.values()], [k.mtime_ns for k in keys.values()], steps,
             [k.ctime_ns for k in keys.values()]]
    results = {"derived": {}, "roles": ["ann", "image", "file", "file"], "infos": [{"objects": {}}, None, None, None],
               "ids": b"".join(bytes([n]) * 32 for n in range(4))}
    zstd = zstandard.ZstdCompressor().compress
    head = {"format": 6, "tree": b"\7" * 32, "manifest": b"\6" * 32, "settings": {"s": 1}, "classes": {}}
    doc = {"base": [b"\6" * 32, {"s": 1}, []], "scan_started": 10_000, "manifest": b"\6" * 32, "settings": {"s": 1},
           "stats": zstd(msgpack.packb(stats)), "results": zstd(msgpack.packb(results, use_bin_type=True)), "pages": {}}
    path.write_bytes(msgpack.packb(head, use_bin_type=True) + msgpack.packb(doc, use_bin_type=True))
    files = [SimpleNamespace(relpath=p, size=k.size, mtime_ns=k.mtime_ns, ino=k.ino, ctime_ns=k.ctime_ns)
             for p, k in keys.items()]
    roles = dict(zip(keys, results["roles"]))

    def vouched(cache: StatCache) -> list:
        return [e and (e.oid, e.role, e.info) for e in cache.get_all(files, roles)]

    # (a time past 2262 is kept modulo 2**64, as format 7 keeps it: that one file is read again, the others are not)
    expected = [(bytes([n]) * 32, role, info) for n, (role, info) in enumerate(zip(results["roles"], results["infos"]))]
    expected[3] = None
    cache = StatCache(path)
    assert cache.may_vouch_for(b"\6" * 32, {"s": 1}) and vouched(cache) == expected
    assert cache.differences(files) == ([3], []) and cache.base == (b"\6" * 32, {"s": 1}, [])
    new = CacheEntry(StatKey(4, 3_000, 12, 3_000), b"\5" * 32, "file", None)
    assert cache.save_changes({"d.txt": new}, ["é.txt"], 20_000, b"\4" * 32, {"s": 1}, base=None)
    assert msgpack.Unpacker(io.BytesIO(path.read_bytes()), raw=False).unpack()["format"] == 7
    assert vouched(StatCache(path)) == [*expected[:2], None, None]
    path.write_bytes(msgpack.packb(head, use_bin_type=True) + msgpack.packb(doc, use_bin_type=True))
    StatCache(path).save_tree(b"\3" * 32, b"\6" * 32, {"s": 1}, {})
    cache = StatCache(path)
    assert cache.vouches_for(b"\6" * 32, {"s": 1}, b"\3" * 32) and vouched(cache) == expected


@pytest.mark.parametrize("native", [True, False])
def test_infos_cut_where_damaged_lengths_say_vouch_for_nothing(tmp_path, monkeypatch, native):
    """A results part whose column of lengths was damaged (rotated by one: the same total) would cut every info at
    another place: no entry is handed on with such bytes, the cache vouches for nothing (with pvc/_pages.c checking
    each slice, or msgpack without it)."""
    from array import array

    from pvc.store import statcache

    if not native:
        monkeypatch.setattr(statcache, "_pages", None)
    path = tmp_path / "index"
    infos = [{"objects": {"car": k}, "size": [k, 2 * k]} if k % 3 else None for k in range(40)]
    entries = {f"f{k:02d}": CacheEntry(StatKey(k, 1_000, k, 1_000), bytes([k]) * 32, "ann", info)
               for k, info in enumerate(infos)}
    StatCache(path).save(entries, 10_000)
    files = [SimpleNamespace(relpath=p, size=e.size, mtime_ns=e.mtime_ns, ino=e.ino, ctime_ns=e.ctime_ns)
             for p, e in entries.items()]
    roles = dict.fromkeys(entries, "ann")
    assert StatCache(path).get_all(files, roles) == list(entries.values())
    head, doc = msgpack.Unpacker(io.BytesIO(path.read_bytes()), raw=False, strict_map_key=False)
    results = msgpack.unpackb(zstandard.ZstdDecompressor().decompress(doc["results"]), raw=False, strict_map_key=False)
    lengths = list(statcache._unshuffled(results["lengths"], "I"))
    results["lengths"] = statcache._shuffled(array("I", lengths[1:] + lengths[:1]))
    doc["results"] = zstandard.ZstdCompressor().compress(msgpack.packb(results, use_bin_type=True))
    path.write_bytes(msgpack.packb(head, use_bin_type=True) + msgpack.packb(doc, use_bin_type=True))
    assert StatCache(path).get_all(files, roles) == [None] * len(files)


def test_stat_cache_file_is_the_documents_msgpack_gives_and_entries_keep_infos_as_bytes(tmp_path):
    """The cache is written by column, infos spliced in as the bytes they are kept as and each part compressed as it
    is made: the file is what msgpack gives for the whole document, each part's frame holding exactly the msgpack
    docs/format.md describes (the format other versions of pvc read), and lookups hand back each entry with its
    info's bytes, decoded only when asked for; damaged parts vouch for nothing."""
    path = tmp_path / "index"
    started = fs_clock(tmp_path)
    infos = {"a.json": {"objects": {"car": 2}, "size": [3, 4], "tags": []}, "b.jpg": {"height": 1.5, "mode": "RGB"},
             "c.txt": None, "d.json": {"invalid": "not JSON"}}
    entries = {rel: CacheEntry(StatKey(k + 1, 1_000 + k, 7 + k, 2_000), bytes([k]) * 32, "ann", info)
               for k, (rel, info) in enumerate(infos.items())}
    entries |= {f"many/{k:05d}": CacheEntry(StatKey(k, 1_000, k, 1_000), hash_bytes(b"%d" % k), "file", None)
                for k in range(70_000)}  # past 65,535 entries: the 32-bit map header
    derived = {b"\3" * 32: {"series": "1.2.3"}}
    pages = {b"\4" * 32: ["a.json", b"\5" * 32, 1, {"car": 2}, []]}
    StatCache(path).save(entries, started, derived, b"\6" * 32, {"s": 1}, tree=b"\7" * 32, classes={"car": 2},
                         pages=pages)
    keys = [e.key for e in entries.values()]

    def shuffled(values: list[int], signed: bool = False, width: int = 8) -> bytes:  # byte i of every value, i = 0..7
        return bytes(v.to_bytes(width, "little", signed=signed)[i] for i in range(width) for v in values)

    stats = ["\0".join(entries).encode(), shuffled([k.size for k in keys]),
             shuffled([k.mtime_ns for k in keys], True), shuffled([k.ino for k in keys]),
             shuffled([k.ctime_ns for k in keys], True)]
    packed_infos = [msgpack.packb(e.info, use_bin_type=True) for e in entries.values()]
    results = {"derived": derived, "roles": ["ann", "file"],
               "role_of": shuffled([0] * 4 + [1] * 70_000, width=2), "infos": b"".join(packed_infos),
               "lengths": shuffled([len(i) for i in packed_infos], width=4),
               "ids": b"".join(e.oid for e in entries.values())}
    head = {"format": 7, "tree": b"\7" * 32, "manifest": b"\6" * 32, "settings": {"s": 1}, "classes": {"car": 2}}
    zstd = zstandard.ZstdCompressor(level=9).compress
    results_raw = msgpack.packb(results, use_bin_type=True)
    doc = {"base": None, "scan_started": started, "manifest": b"\6" * 32, "settings": {"s": 1},
           "stats": zstd(msgpack.packb(stats, use_bin_type=True)), "results": zstd(results_raw), "pages": pages}
    unpacker = msgpack.Unpacker(io.BytesIO(path.read_bytes()), raw=False, strict_map_key=False)
    written_head, written = unpacker.unpack(), unpacker.unpack()
    assert written_head == head and list(written) == list(doc) and next(unpacker, None) is None
    assert {k: v for k, v in written.items() if k not in ("stats", "results")} == {
        k: v for k, v in doc.items() if k not in ("stats", "results")}
    for part in ("stats", "results"):  # each one zstd frame saying its size, of exactly the document's msgpack
        assert zstandard.frame_content_size(written[part]) == len(zstandard.ZstdDecompressor().decompress(doc[part]))
        assert zstandard.ZstdDecompressor().decompress(written[part]) == zstandard.ZstdDecompressor().decompress(
            doc[part])
    cache = StatCache(path)
    files = [SimpleNamespace(relpath=p, size=e.key.size, mtime_ns=e.key.mtime_ns, ino=e.key.ino, ctime_ns=e.key.ctime_ns)
             for p, e in entries.items()]
    found = cache.get_all(files, {p: e.role for p, e in entries.items()})
    assert found == list(entries.values())
    assert [found[k].info for k in range(4)] == list(infos.values())
    assert isinstance(found[0].raw, bytes) and cache.derived(b"\3" * 32) == {"series": "1.2.3"}
    assert cache.differences(files) == ([], []) and cache.holds(dict(zip(entries, found)), b"\6" * 32, {"s": 1})
    assert cache.differences(files[1:]) == ([], [files[0].relpath]) and cache.pages == pages
    assert StatCache(tmp_path / "absent").derived(b"\3" * 32) is None
    cache.release()  # what a capture does once it has its entries: the file's bytes go, what was learnt stays
    assert cache.holds(dict(zip(entries, found)), b"\6" * 32, {"s": 1}) and cache.pages == pages
    assert cache.derived(b"\3" * 32) == {"series": "1.2.3"} and cache.get_all(files[:2], {"a.json": "ann", "b.jpg": "ann"}) == [None, None]
    for damaged in (doc["results"][: len(doc["results"]) // 2], zstd(results_raw[:-7]), zstd(results_raw + b"\0")):
        # a torn frame, a torn part, trailing bytes
        path.write_bytes(msgpack.packb(head, use_bin_type=True) + msgpack.packb(doc | {"results": damaged},
                                                                                 use_bin_type=True))
        assert StatCache(path).get_all(files, {p: e.role for p, e in entries.items()}) == [None] * len(files)


def test_index_of_packed_records_is_the_index_of_their_tuples(tmp_path):
    """A writer keeps its records packed (PackRecords, pickled as one buffer by worker processes); they iterate as
    the tuples, and write_index gives the same file as from a list of tuples, unsorted and with duplicates, always
    did: sorted unique entries after the fanout, the checksum, the name."""
    import pickle
    import struct

    from pvc.store.local.packindex import write_index
    from pvc.store.local.packs import PackRecords

    rows = [(hash_bytes(b"%d" % k), 8 + 100 * k, 50 + k, 60 + k, k % 3) for k in range(3000)]
    records = pickle.loads(pickle.dumps(PackRecords(rows)))
    assert list(records) == rows and len(records) == 3000 and records == rows
    packs = [b"\1" * 32, b"\2" * 32]
    entries = [(oid, packs[k % 2], off, slen, rlen, codec) for k, (oid, off, slen, rlen, codec) in enumerate(records)]
    path = write_index(tmp_path, entries[::-1] + entries[:10])
    unique = sorted(set(entries))
    fanout = [sum(1 for e in unique if e[0][0] <= b) for b in range(256)]
    body = (struct.pack("<8sIQ", b"PVCIDX\x00\x01", 2, len(unique)) + b"".join(packs) + struct.pack("<256I", *fanout)
            + b"".join(struct.pack("<32sIB3xQQQ", oid, packs.index(p), codec, off, slen, rlen)
                       for oid, p, off, slen, rlen, codec in unique))
    body += blake3.blake3(body).digest()
    assert path.read_bytes() == body and path.name == f"{blake3.blake3(body).hexdigest()}.idx"
    index = PackIndex(path)
    assert index.count == 3000 and index.lookup(rows[7][0]).offset == rows[7][1]


def test_merged_indexes_are_the_index_of_all_their_entries(tmp_path):
    """merge_indexes (a remote's index files merged in its cache) moves rows, renumbering their packs: the file is
    the one write_index makes from the union of the entries (an entry in two files once), a previous merge with many
    packs taken as a source like any other; an entry naming a pack its file does not list is refused."""
    import struct

    from pvc.errors import CorruptObject
    from pvc.store.local.packindex import merge_indexes, write_index

    packs = [hash_bytes(b"pack%d" % k) for k in range(12)]
    entries = [(hash_bytes(b"%d" % k), packs[k % 12], 8 + 10 * k, 5 + k, 9 + k, k % 4) for k in range(2400)]
    single = [write_index(tmp_path, [e for e in entries if e[1] == p]) for p in packs[:6]]
    several = write_index(tmp_path, [e for e in entries if e[1] in packs[6:]])
    again = write_index(tmp_path, [e for e in entries if e[1] == packs[7]][:50])  # entries twice
    (tmp_path / "out").mkdir()
    merged = merge_indexes(tmp_path / "out", [*single, several, again])
    expected = write_index(tmp_path / "out", list(reversed(entries)))
    assert merged == expected and merged.read_bytes() == expected.read_bytes()
    index = PackIndex(merged)
    assert index.count == len(entries) and index.lookup(entries[13][0]) is not None
    assert index.lookup(entries[13][0]).pack == packs[1] and index.lookup(entries[13][0]).offset == 138

    bad = bytearray(single[0].read_bytes())  # an entry naming pack #1 of a file listing one pack
    at = struct.calcsize("<8sIQ") + 32 + 256 * 4
    bad[at + 32] = 1
    bad[-32:] = blake3.blake3(bytes(bad[:-32])).digest()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.idx").write_bytes(bytes(bad))
    with pytest.raises(CorruptObject, match="names a pack the file does not list"):
        merge_indexes(tmp_path / "bad", [tmp_path / "bad" / "x.idx"])


def test_clean_tmp_removes_leftovers_of_killed_atomic_writes(repo):
    leftovers = [repo.dir / ".versions.abc123.tmp", repo.dir / "packs" / ".0123.idx.xyz.tmp", repo.dir / "tmp" / "pack-1.tmp"]
    for path in leftovers:
        path.write_bytes(b"half written")
    keep = repo.dir / "config"
    repo.clean_tmp()
    assert not any(p.exists() for p in leftovers) and keep.exists()


def test_stat_cache_body_is_compressed_and_other_formats_read_as_empty(tmp_path):
    """Format 6: stats and results compressed, results in the stats' order; a format-5 cache is ignored (an
    optimisation only: it is rebuilt), and a body whose parts disagree reads as empty."""
    import msgpack

    path = tmp_path / "index"
    started = fs_clock(tmp_path)
    entries = {f"ds/ann/img_{i:05d}.jpg.json": CacheEntry(StatKey(100 + i, 1_000 + i, i, 1_000), bytes([i % 256]) * 32,
                                                           "ann", {"objects": {"car": i % 3}, "size": [640, 480]})
               for i in range(2000)}
    StatCache(path).save(entries, started, manifest=b"\2" * 32, settings={"x": 1})
    cache = StatCache(path)
    got = cache.get_all([type("F", (), {"relpath": p, "size": e.key.size, "mtime_ns": e.key.mtime_ns,
                                        "ino": e.key.ino, "ctime_ns": e.key.ctime_ns})() for p, e in entries.items()],
                        {p: "ann" for p in entries})
    assert [(g.oid, g.info) for g in got] == [(e.oid, e.info) for e in entries.values()]
    plain = len(msgpack.packb({p: [e.oid, e.role, e.info] for p, e in entries.items()}, use_bin_type=True))
    assert path.stat().st_size < plain / 2
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    unpacker.feed(path.read_bytes())
    head, body = unpacker.unpack(), unpacker.unpack()
    # an older format: ignored
    path.write_bytes(msgpack.packb(dict(head, format=5), use_bin_type=True) + msgpack.packb(body, use_bin_type=True))
    assert StatCache(path).get("ds/ann/img_00001.jpg.json", entries["ds/ann/img_00001.jpg.json"].key, "ann") is None
    # results that do not match the stats one for one: empty
    import zstandard

    body["results"] = zstandard.ZstdCompressor().compress(msgpack.packb({"ids": b"", "roles": [], "infos": [], "derived": {}}))
    path.write_bytes(msgpack.packb(head, use_bin_type=True) + msgpack.packb(body, use_bin_type=True))
    assert StatCache(path).get("ds/ann/img_00001.jpg.json", entries["ds/ann/img_00001.jpg.json"].key, "ann") is None


def test_stat_cache_can_leave_the_ids_to_the_manifest(tmp_path):
    """After a commit the ids are those of the manifest's files (in the store): the cache does not repeat them, and
    without a way to read them (or for a path the manifest lacks) it vouches for nothing."""
    path = tmp_path / "index"
    key = StatKey(10, 1_000, 5, 1_000)
    a, b = os.urandom(32), os.urandom(32)
    entries = {"a.json": CacheEntry(key, a, "file", None), "b.json": CacheEntry(key, b, "file", None)}
    StatCache(path).save(entries, fs_clock(tmp_path), manifest=b"\7" * 32, settings={}, ids_in_manifest=True)
    assert StatCache(path).get("a.json", key, "file") is None  # no file_ids: nothing vouched for
    cache = StatCache(path)
    asked = []
    cache.file_ids = lambda m: asked.append(m) or {"a.json": a}
    assert cache.get("a.json", key, "file").oid == a and asked == [b"\7" * 32]
    assert cache.get("b.json", key, "file") is None  # not in the manifest
    with_ids = tmp_path / "index2"
    StatCache(with_ids).save(entries, fs_clock(tmp_path), manifest=b"\7" * 32, settings={})
    assert StatCache(with_ids).get("b.json", key, "file").oid == b
    assert path.stat().st_size <= with_ids.stat().st_size - 64
