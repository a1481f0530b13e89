"""Whole packs staged from another store (`stage_pack`, what a pull or clone does with each pack it downloads):
fsynced in the store's syncing thread, and published only once every one of them is on disk."""

from __future__ import annotations

import errno
import os
import threading
import time

import pytest

from backends import store_dir

from pvc.store.local.packstore import PackStore
from pvc.store.packed import _SYNC_BACKLOG



def _source_packs(tmp_path, count: int):
    """`count` packs of a local store, each as (pack id, its bytes, its records, {id: content})."""
    src = PackStore(store_dir(tmp_path / "src"), pack_size=4096, chunk_threshold=1 << 20)
    contents = {src.put(os.urandom(5000), compress=False): None for _ in range(count)}
    src.flush()
    by_pack: dict[bytes, list] = {}
    for idx in src.indexes:
        for oid, loc in idx:
            by_pack.setdefault(loc.pack, []).append((oid, loc.offset, loc.stored_len, loc.raw_len, loc.codec))
    packs = [(pack, src.read_pack(pack), records, {oid: src.get(oid) for oid, *_ in records})
             for pack, records in by_pack.items()]
    src.close()
    assert len(packs) == count
    return packs


def _is_staged_pack(fd: int) -> bool:
    """Whether `fd` is open on a pack `stage_pack` wrote (a temp `pack-*.tmp`), not on any other file fsynced."""
    return os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).startswith("pack-")


def test_staged_packs_are_fsynced_before_the_index_names_them(tmp_path, monkeypatch):
    packs = _source_packs(tmp_path, 5)
    store = PackStore(store_dir(tmp_path / "dst"))
    synced: set[int] = set()
    real_fsync = os.fsync

    def slow_fsync(fd):  # a slow disk: a flush that did not wait for the fsyncs would publish before them
        if _is_staged_pack(fd):
            time.sleep(0.2)
        real_fsync(fd)
        synced.add(os.fstat(fd).st_ino)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    publish = store._publish

    def checked_publish(sealed):
        assert {os.stat(tmp).st_ino for tmp, _, _ in sealed} <= synced  # every pack on disk before its index
        publish(sealed)

    monkeypatch.setattr(store, "_publish", checked_publish)
    for pack, data, records, _ in packs:
        store.stage_pack(pack, data, records)
    store.flush()
    assert store._syncer is None  # its thread stopped with the flush
    monkeypatch.undo()
    store.close()
    again = PackStore(tmp_path / "dst")
    for _, _, _, contents in packs:
        for oid, content in contents.items():
            assert again.get(oid) == content
    again.close()


def test_a_failed_fsync_publishes_nothing_and_leaves_no_temp_file(tmp_path, monkeypatch):
    packs = _source_packs(tmp_path, 3)
    store = PackStore(store_dir(tmp_path / "dst"))
    real_fsync = os.fsync

    def failing_fsync(fd):  # the staged packs' fsyncs fail, nothing else's
        if _is_staged_pack(fd):
            raise OSError(errno.EIO, "I/O error")
        real_fsync(fd)

    def never_publish(sealed):
        raise AssertionError("a pack whose fsync failed was about to be published")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    monkeypatch.setattr(store, "_publish", never_publish)
    for pack, data, records, _ in packs:
        store.stage_pack(pack, data, records)
    with pytest.raises(OSError, match="I/O error"):
        store.flush()
    monkeypatch.undo()
    assert list((tmp_path / "dst" / "tmp").iterdir()) == [] and list((tmp_path / "dst" / "packs").iterdir()) == []
    assert not any(store.has(oid) for *_, contents in packs for oid in contents)
    store.close()


def test_at_most_a_backlog_of_packs_wait_for_their_fsync(tmp_path, monkeypatch):
    packs = _source_packs(tmp_path, _SYNC_BACKLOG + 2)
    store = PackStore(store_dir(tmp_path / "dst"))
    disk = threading.Event()
    real_fsync = os.fsync

    def held_fsync(fd):
        disk.wait(30)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", held_fsync)
    staged = []

    def stage_all():
        for pack, data, records, _ in packs:
            store.stage_pack(pack, data, records)
            staged.append(pack)

    writer = threading.Thread(target=stage_all)
    writer.start()
    try:
        deadline = time.monotonic() + 20
        while len(staged) < _SYNC_BACKLOG and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)  # time for one more, which must not come while the first fsync holds the syncing thread
        # _SYNC_BACKLOG packs returned with their fsync waiting; the next one waits for the first fsync
        assert writer.is_alive() and len(staged) == _SYNC_BACKLOG
    finally:
        disk.set()
        writer.join(30)
    assert not writer.is_alive() and len(staged) == len(packs)
    store.flush()
    for *_, contents in packs:
        assert all(store.get(oid) == content for oid, content in contents.items())
    store.close()


def test_abort_waits_for_the_fsyncs_and_deletes_the_staged_packs(tmp_path):
    packs = _source_packs(tmp_path, 3)
    store = PackStore(store_dir(tmp_path / "dst"))
    for pack, data, records, _ in packs:
        store.stage_pack(pack, data, records)
    store.abort()
    assert list((tmp_path / "dst" / "tmp").iterdir()) == [] and store._syncer is None
    store.flush()
    assert not any(store.has(oid) for *_, contents in packs for oid in contents)
    store.close()
