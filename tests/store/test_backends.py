"""One suite for every object store: the same protocol (pvc/store/backend.py) must behave the same on each.

Backends (tests/store/conftest.py): the local packs, the overlay (writes kept in memory over a local store), and the
remotes: a folder and an S3 server on loopback."""

from __future__ import annotations

import io
import os

import blake3
import pytest

from backends import backend  # noqa: F401  (the fixture: one run per backend)

from pvc.errors import ObjectMissing
from pvc.store.model import FileValue, Manifest, Page, PageRef, Tree
from pvc.store.overlay import OverlayStore
from pvc.store.pages import build_pages, iter_entries


def _persisted(store) -> bool:
    return not isinstance(store, OverlayStore)


def test_put_flush_get(backend):
    store = backend.store
    data = b"hello pvc " * 100
    oid = store.put(data)
    assert oid == blake3.blake3(data).digest()
    assert store.has(oid)
    store.flush()
    store = backend.reopen()
    assert store.has(oid) and store.get(oid) == data
    assert store.info(oid).size == len(data) and not store.info(oid).chunked
    assert oid in set(store.iter_ids())
    buf = io.BytesIO()
    assert store.write_to(oid, buf) == len(data) and buf.getvalue() == data
    assert store.read_range(oid, 5, 10) == data[5:15]
    assert store.read_range(oid, len(data) - 3, 10) == data[-3:]
    assert store.missing_parts(oid) == [] and store.chunk_list(oid) is None
    store.check(oid)


def test_abort_forgets_staged_objects(backend):
    if not _persisted(backend.store):
        pytest.skip("the overlay never persists anything: abort and flush are the same")
    store = backend.store
    oid = store.put(b"never published")
    store.abort()
    store.flush()
    store = backend.reopen()
    assert not store.has(oid) and store.info(oid) is None


def test_missing_objects(backend):
    store = backend.store
    oid = blake3.blake3(b"absent").digest()
    assert not store.has(oid) and store.info(oid) is None and store.missing_parts(oid) == [oid]
    with pytest.raises(ObjectMissing):
        store.get(oid)
    with pytest.raises(ObjectMissing):
        store.write_to(oid, io.BytesIO())


def test_typed_objects_round_trip(backend):
    store = backend.store
    blob = store.put(b"x")
    files = build_pages("files", [(f"f{i:04d}", FileValue(blob, 1, 0o644)) for i in range(300)], store.put_object)
    tree = store.put_object(Tree("", files, (), ()))
    manifest = store.put_object(Manifest("images", "supervisely", tree, {"classes": {"car": 1}}, ()))
    store.flush()
    store = backend.reopen()
    m = store.get_object(manifest, Manifest)
    assert m.classes == {"car": 1} and m.root == tree
    t = store.get_object(m.root, Tree)
    entries = list(iter_entries(t.files, lambda oid: store.get_object(oid, Page), "files"))
    assert len(entries) == 300 and all(isinstance(r, PageRef) for r in t.files)


def test_large_files_are_chunked_and_read_in_ranges(backend, tmp_path):
    store = backend.store
    data = os.urandom(3 << 20) + bytes(2 << 20) + os.urandom(1 << 20)
    path = tmp_path / "big.raw"
    path.write_bytes(data)
    oid = store.put_file(path, len(data))
    assert oid == blake3.blake3(data).digest()
    store.flush()
    store = backend.reopen()
    assert store.get(oid) == data
    for start, length in ((0, 10), ((3 << 20) - 5, 10), (len(data) - 7, 100), (1 << 20, 3 << 20)):
        assert store.read_range(oid, start, length) == data[start : start + length]
    buf = io.BytesIO()
    store.write_to(oid, buf)
    assert buf.getvalue() == data
    if backend.chunks:
        chunks = store.chunk_list(oid)
        assert store.info(oid).chunked and len(chunks) > 1 and sum(n for _, n in chunks) == len(data)
        assert all(store.has(cid) for cid, _ in chunks) and store.missing_parts(oid) == []


def test_identical_content_is_stored_once(backend):
    store = backend.store
    a = store.put(b"same bytes" * 50)
    b = store.put(b"same bytes" * 50)
    store.flush()
    store = backend.reopen()
    assert a == b and list(store.iter_ids()).count(a) == 1


def _json_files(folder, n: int) -> list:
    """`n` small annotation-like JSON files (alike in keys and structure, different in values)."""
    import json
    import random

    rng = random.Random(5)
    folder.mkdir()
    found = []
    for i in range(n):
        doc = {"description": "", "size": {"height": rng.randint(100, 900), "width": rng.randint(100, 900)},
               "tags": [{"name": "weather", "value": rng.choice(["sunny", "rain"])}],
               "objects": [{"id": rng.randint(1, 10**6), "classTitle": rng.choice(["car", "person", "road"]),
                            "geometryType": "polygon", "tags": [],
                            "points": {"exterior": [[rng.randint(0, 900), rng.randint(0, 900)] for _ in range(6)],
                                       "interior": []}} for _ in range(rng.randint(1, 4))]}
        path = folder / f"img_{i:05d}.jpg.json"
        path.write_text(json.dumps(doc, indent=4))
        found.append((path, path.stat().st_size))
    return found


def test_dictionary_coded_records_round_trip(backend, tmp_path):
    """Small JSON files stored with a dictionary trained on them (codec ZSTD_DICT, the dictionary a DICT record)
    read back byte for byte on every backend (remotes with ranged reads; the overlay reads through its base)."""
    from pvc.store.local.packs import Codec

    files = _json_files(tmp_path / "anns", 1100)
    writer = backend.store.base if isinstance(backend.store, OverlayStore) else backend.store
    [did] = writer.train_dictionaries(files)
    assert writer.train_dictionaries(files) == []  # one dictionary of a kind a store
    ids = [writer.put_file(path, size) for path, size in files]
    assert ids == [blake3.blake3(path.read_bytes()).digest() for path, _ in files]  # ids are the raw bytes'
    writer.flush()
    store = backend.reopen()
    reader = store.base if isinstance(store, OverlayStore) else store
    assert reader.dictionary_ids() == [did] and reader.locate(did).codec == Codec.DICT
    assert {reader.locate(oid).codec for oid in ids} == {Codec.ZSTD_DICT}
    stored = sum(reader.info(oid).stored for oid in ids)
    assert stored < sum(size for _, size in files) / 5
    for (path, size), oid in list(zip(files, ids))[::37]:
        data = path.read_bytes()
        assert store.get(oid) == data and store.info(oid).size == size
        assert store.read_range(oid, 10, 50) == data[10:60]
        buf = io.BytesIO()
        assert store.write_to(oid, buf) == size and buf.getvalue() == data
        store.check(oid)
    if _persisted(store):  # a second writer (another commit) finds the dictionary and writes with it
        extra = tmp_path / "more.json"
        extra.write_text(files[0][0].read_text().replace("sunny", "cloudy"))
        oid = store.put_file(extra, extra.stat().st_size)
        store.flush()
        store = backend.reopen()
        assert store.locate(oid).codec == Codec.ZSTD_DICT and store.get(oid) == extra.read_bytes()


def test_a_missing_or_damaged_dictionary_is_a_clean_error(backend, tmp_path):
    if not _persisted(backend.store):
        pytest.skip("the overlay reads through its base: the local backend covers it")
    from pvc.errors import CorruptObject
    from pvc.store.local.packs import Codec

    files = _json_files(tmp_path / "anns", 1000)
    store = backend.store
    [did] = store.train_dictionaries(files)
    oid = store.put_file(*files[0])
    store.flush()
    store = backend.reopen()
    store._zdicts.clear()
    real = store.get
    store.get = lambda o, verify=True: (_ for _ in ()).throw(ObjectMissing(f"object {o.hex()} is missing")) if o == did else real(o, verify=verify)
    with pytest.raises(ObjectMissing, match="dictionary"):
        store.get(oid)
    store.get = lambda o, verify=True: b"garbage" * 10 if o == did else real(o, verify=verify)
    store._zdicts.clear()
    store._local.__dict__.clear()
    with pytest.raises(CorruptObject):
        real(oid)
    assert store.locate(oid).codec == Codec.ZSTD_DICT


def test_batch_lookups_answer_as_lookups_one_by_one(backend):
    if not _persisted(backend.store):
        pytest.skip("the overlay is never a side of a transfer, which is what asks for objects in batches")
    store = backend.store
    flushed = [store.put(b"flushed object %d " % i * 20) for i in range(40)]
    store.flush()
    store = backend.reopen()
    staged = [store.put(b"staged object %d " % i * 20) for i in range(5)]
    absent = [blake3.blake3(b"absent %d" % i).digest() for i in range(5)]
    asked = flushed + staged + absent
    assert store.held(asked) == {oid for oid in asked if store.has(oid)} == set(flushed + staged)
    assert store.locate_many(asked) == {oid: store.locate(oid) for oid in flushed}
    store.abort()
