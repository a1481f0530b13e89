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
