"""Paged maps: pages are cut where the keys alone say (`page_runs`), so an edit changes only the pages near it, and
every page is found again by id in the next version."""

from __future__ import annotations

import zlib

from hypothesis import given, settings
from hypothesis import strategies as st

from pvc.store import pages
from pvc.store.model import FileValue, Page
from pvc.store.objects import hash_bytes
from pvc.store.pages import PAGE_MAX, PAGE_MIN, build_pages, iter_entries, lookup, page_runs


class Pages:
    def __init__(self) -> None:
        self.pages: dict[bytes, Page] = {}

    def put(self, page: Page) -> bytes:
        oid = hash_bytes(page.encode())
        self.pages[oid] = page
        return oid

    def get(self, oid: bytes) -> Page:
        return self.pages[oid]


def _value(n: int) -> FileValue:
    return FileValue(hash_bytes(str(n).encode()), n, 0o644)


keys = st.integers(0, 20000).map(lambda n: f"img/{n:06d}.jpg")


@settings(max_examples=100, deadline=None)
@given(st.sets(keys, max_size=4000))
def test_runs_cover_the_table_and_end_where_the_rule_says(table):
    names = sorted(table)
    runs = page_runs(names)
    assert [i for lo, hi in runs for i in range(lo, hi)] == list(range(len(names)))
    for n, (lo, hi) in enumerate(runs):
        size, last = hi - lo, names[hi - 1]
        assert size <= PAGE_MAX
        boundary = zlib.crc32(last.encode()) % pages.PAGE_AVG == 0
        if n + 1 < len(runs):  # every page but the last closed at a boundary key or at the maximum
            assert size == PAGE_MAX or (size >= PAGE_MIN and boundary)
        # and no earlier key of the page could have closed it
        assert not any(zlib.crc32(k.encode()) % pages.PAGE_AVG == 0 for k in names[lo + PAGE_MIN - 1 : hi - 1])


@settings(max_examples=100, deadline=None)
@given(st.sets(keys, min_size=1, max_size=3000))
def test_build_pages_holds_the_table(table):
    store = Pages()
    entries = [(k, _value(i)) for i, k in enumerate(sorted(table))]
    root = build_pages("files", entries, store.put)
    assert list(iter_entries(root, store.get, "files")) == entries
    k, v = entries[len(entries) // 2]
    assert lookup(root, k, store.get, "files") == v
    assert lookup(root, k + "x", store.get, "files") is None


def test_a_small_change_changes_few_pages_of_many():
    store = Pages()
    table = [(f"img/{n:06d}.jpg", _value(n)) for n in range(50000)]
    root = build_pages("files", table, store.put)
    assert len(root) > 100
    edited = dict(table)
    edited["img/025000.jpg"] = _value(-1)
    edited["img/040000.jpgz"] = _value(-2)
    del edited["img/010000.jpg"]
    got = build_pages("files", sorted(edited.items()), store.put)
    old = {r.oid for r in root}
    assert sum(r.oid not in old for r in got) <= 6
    assert abs(len(got) - len(root)) <= 1


def test_without_boundary_keys_the_maximum_cuts():
    names = [k for k in (f"k{n:07d}" for n in range(3 * PAGE_MAX)) if zlib.crc32(k.encode()) % pages.PAGE_AVG != 0]
    runs = page_runs(names)
    assert [hi - lo for lo, hi in runs[:-1]] == [PAGE_MAX] * (len(runs) - 1)
