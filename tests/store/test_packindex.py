"""The pack index search: in C (`_pages.row_find`) where it is built, the same answers as the Python search."""

from __future__ import annotations

import os
import random

import pytest

from pvc.store.local import packindex
from pvc.store.local.packindex import PackIndex, write_index

_pages = pytest.importorskip("pvc._pages")


@pytest.mark.parametrize("count", [0, 1, 2, 300, 5000])
def test_the_c_search_finds_what_the_python_search_finds(tmp_path, count, monkeypatch):
    assert packindex._row_find is not None  # the build has it: the first answers below are C's
    rng = random.Random(count)
    ids = [rng.randbytes(32) for _ in range(count)]
    packs = [os.urandom(32) for _ in range(3)]
    entries = [(oid, packs[i % 3], 40 * i, 10 + i, 20 + i, i % 4) for i, oid in enumerate(ids)]
    if count == 0:
        entries = [(b"\x00" * 32, packs[0], 0, 1, 1, 0)]
        ids = [b"\x00" * 32]
    index = PackIndex(write_index(tmp_path, entries))
    absent = [rng.randbytes(32) for _ in range(200)] + [oid[:31] + bytes([(oid[31] + 1) % 256]) for oid in ids[:200]]
    absent += [b"\x00" * 32, b"\xff" * 32]
    absent = [oid for oid in absent if oid not in set(ids)]
    with_c = [index._find(oid) for oid in ids + absent]
    monkeypatch.setattr(packindex, "_row_find", None)
    in_python = [index._find(oid) for oid in ids + absent]
    assert with_c == in_python
    assert all(at is not None for at in with_c[: len(ids)]) and all(at is None for at in with_c[len(ids):])
    for oid, p, off, slen, rlen, codec in entries[:50]:
        loc = index.lookup(oid)
        assert (loc.pack, loc.offset, loc.stored_len, loc.raw_len, loc.codec) == (p, off, slen, rlen, codec)


def test_rows_outside_the_data_are_refused_not_read():
    data = bytes(64 * 4)
    assert _pages.row_find(data, 0, 0, 4, 64, bytes(32)) in (0, 64, 128, 192)
    for base, lo, hi in ((0, 0, 5), (64, 0, 4), (-1, 0, 1), (0, 3, 2), (257, 0, 0)):
        with pytest.raises(ValueError):
            _pages.row_find(data, base, lo, hi, 64, bytes(32))
    with pytest.raises(ValueError):
        _pages.row_find(data, 0, 0, 1, 16, bytes(32))  # a key longer than a row
