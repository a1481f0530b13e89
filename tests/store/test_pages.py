"""Paged maps: `update_pages` gives exactly the root `build_pages` gives for the changed table, and reads only
the pages the changes touch (plus the few after them until the boundaries fall where they fell)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pvc.store.model import FileValue, Page
from pvc.store.objects import hash_bytes
from pvc.store.pages import DELETE, PAGE_MAX, build_pages, iter_entries, update_pages


class Pages:
    def __init__(self) -> None:
        self.pages: dict[bytes, Page] = {}
        self.reads: list[bytes] = []

    def put(self, page: Page) -> bytes:
        oid = hash_bytes(page.encode())
        self.pages[oid] = page
        return oid

    def get(self, oid: bytes) -> Page:
        self.reads.append(oid)
        return self.pages[oid]


def _value(n: int) -> FileValue:
    return FileValue(hash_bytes(str(n).encode()), n, 0o644)


keys = st.integers(0, 20000).map(lambda n: f"img/{n:06d}.jpg")
edits = st.lists(st.tuples(keys, st.one_of(st.none(), st.integers(0, 10**6))), max_size=60)


@settings(max_examples=150, deadline=None)
@given(st.sets(keys, max_size=3000), edits, st.booleans())
def test_update_equals_full_build(initial, changes, runs):
    store = Pages()
    table = {k: _value(i) for i, k in enumerate(sorted(initial))}
    if runs:  # a dense run of inserts (page splits) or of deletes (merges)
        start = len(table) // 2
        for k in sorted(table)[start : start + 300]:
            changes.append((k, None))
        changes += [(f"img/{n:06d}.jpgx", n) for n in range(400)]
    root = build_pages("files", sorted(table.items()), store.put)
    delta = {k: (DELETE if v is None else _value(v)) for k, v in changes}
    new_table = dict(table)
    for k, v in delta.items():
        if v is DELETE:
            new_table.pop(k, None)
        else:
            new_table[k] = v
    expected = build_pages("files", sorted(new_table.items()), store.put)
    store.reads.clear()
    got = update_pages("files", root, delta, store.get, store.put)
    assert got == expected
    assert list(iter_entries(got, store.get, "files")) == sorted(new_table.items())


def test_a_small_change_reads_one_page_of_many():
    store = Pages()
    table = [(f"img/{n:06d}.jpg", _value(n)) for n in range(50000)]
    root = build_pages("files", table, store.put)
    assert len(root) > 100
    store.reads.clear()
    got = update_pages("files", root, {"img/025000.jpg": _value(-1), "img/040000.jpgz": _value(-2)}, store.get, store.put)
    assert len(store.reads) <= 4
    assert sum(a.oid != b.oid for a, b in zip(got, root)) <= 4 and len(got) == len(root)


def test_max_size_pages_stay_identical():
    store = Pages()
    keys_ = [f"k{n:07d}" for n in range(3 * PAGE_MAX)]
    # no boundary keys at all: only the maximum size cuts pages
    keys_ = [k for k in keys_ if not __import__("zlib").crc32(k.encode()) % 256 == 0]
    table = [(k, _value(i)) for i, k in enumerate(keys_)]
    root = build_pages("files", table, store.put)
    changed = dict(table[:10])
    delta = {k: DELETE for k in changed}
    assert update_pages("files", root, delta, store.get, store.put) == build_pages("files", table[10:], store.put)
