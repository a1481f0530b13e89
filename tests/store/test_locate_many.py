"""Lookups of many objects at once (`held`, `locate_many`; an index's `ids_among`, `locate_among`): the answers of
`has` and `locate` asked once per object, whether the index is searched per id or read whole."""

from __future__ import annotations

import os
import random

import pytest

from backends import store_dir

from pvc.errors import CorruptObject
from pvc.store.local import packindex
from pvc.store.local.packindex import _ENTRY, PackIndex, _write_rows, write_index
from pvc.store.local.packstore import PackStore


def _index(tmp_path, count: int, seed: int = 0) -> tuple[PackIndex, list[tuple]]:
    rng = random.Random(seed)
    packs = [rng.randbytes(32) for _ in range(3)]
    entries = [(rng.randbytes(32), packs[i % 3], 40 * i, 10 + i, 20 + i, i % 4) for i in range(count)]
    return PackIndex(write_index(tmp_path, entries)), entries


# 0: every batch is read from the whole entry table; 10**9: every batch is searched id by id
@pytest.mark.parametrize("share", [0, 10**9])
@pytest.mark.parametrize("asked", [1, 40, 1000])
def test_an_index_answers_a_batch_as_it_answers_each_id(tmp_path, monkeypatch, share, asked):
    index, entries = _index(tmp_path, 1000, seed=asked)
    monkeypatch.setattr(packindex, "_SCAN_SHARE", share)
    rng = random.Random(share + asked)
    present = [e[0] for e in rng.sample(entries, asked)]
    absent = [rng.randbytes(32) for _ in range(25)]
    wanted = set(present + absent)
    located = index.locate_among(set(wanted))
    assert located == {oid: index.lookup(oid) for oid in present}
    assert index.ids_among(set(wanted)) == set(present)
    by_id = {e[0]: e for e in entries}
    for oid, loc in located.items():
        _, pack, offset, stored, raw, codec = by_id[oid]
        assert (loc.pack, loc.offset, loc.stored_len, loc.raw_len, loc.codec) == (pack, offset, stored, raw, codec)
    assert index.locate_among(set()) == {} and index.ids_among(set(absent)) == set()
    index.close()  # no view of the map is left behind by either path


def test_an_entry_naming_a_pack_the_index_lacks_is_refused_when_read_whole(tmp_path, monkeypatch):
    oid = b"\x10" * 32
    rows = _ENTRY.pack(oid, 7, 0, 0, 5, 5)  # pack #7 of 1
    fanout = [0] * 256
    fanout[oid[0]] = 1
    index = PackIndex(_write_rows(tmp_path, [os.urandom(32)], rows, fanout))
    monkeypatch.setattr(packindex, "_SCAN_SHARE", 0)
    with pytest.raises(CorruptObject, match="names pack #7 of 1"):
        index.locate_among({oid})
    monkeypatch.setattr(packindex, "_SCAN_SHARE", 10**9)
    with pytest.raises(CorruptObject, match="names pack #7 of 1"):
        index.locate_among({oid})
    index.close()



@pytest.mark.parametrize("share", [0, 10**9])
def test_a_store_answers_a_batch_from_its_staged_objects_its_indexes_and_its_alternates(tmp_path, monkeypatch,
                                                                                         share):
    monkeypatch.setattr(packindex, "_SCAN_SHARE", share)
    a, b = store_dir(tmp_path / "a"), store_dir(tmp_path / "b")
    source = PackStore(a)
    theirs = [source.put(b"in the source %d" % i) for i in range(30)]
    source.flush()
    store = PackStore(b, alternates=(a / "packs",))
    first = [store.put(b"first flush %d" % i) for i in range(20)]
    store.flush()
    second = [store.put(b"second flush %d" % i) for i in range(5)]
    store.flush()  # two index files of its own
    staged = [store.put(b"staged %d" % i) for i in range(3)]
    absent = [os.urandom(32) for _ in range(4)]
    asked = theirs + first + second + staged + absent
    assert len(store.indexes) == 2
    assert store.held(asked) == {oid for oid in asked if store.has(oid)} == set(theirs + first + second + staged)
    assert store.locate_many(asked) == {oid: store.locate(oid) for oid in theirs + first + second}  # (as `locate`:
    # staged objects have no location yet)
    assert store.held([]) == set() and store.locate_many(absent) == {}
    store.abort()
    store.close()
    source.close()
