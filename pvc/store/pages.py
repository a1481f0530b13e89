"""Paged maps: a large sorted table cut into pages at content-defined boundaries.

A page ends after a key whose crc32 meets a condition (with minimum and maximum page sizes), so where a
page ends depends only on the keys near it: inserting or editing one entry rewrites one page, and every
other page keeps its id and is shared with earlier versions. The root of a map is a tuple of PageRef
(first key, page id, entry count), kept inline in the tree that owns the map.

Since where a page ends depends on the keys alone, `page_runs` tells the pages of a table from its keys before
any value exists: a commit takes by id every page whose entries it can prove unchanged, and builds only the others
(pvc/core/capture/build.py).
"""

from __future__ import annotations

import zlib
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from pvc.errors import CorruptObject
from pvc.store.model import Page, PageRef

__all__ = ["build_pages", "page_runs", "iter_entries", "lookup", "changed_entries", "PAGE_AVG", "PAGE_MIN",
           "PAGE_MAX"]

PAGE_AVG = 256
PAGE_MIN = 32
PAGE_MAX = 2048

Put = Callable[[Page], bytes]
GetPage = Callable[[bytes], Page]


def _is_boundary(key: str) -> bool:
    return zlib.crc32(key.encode()) % PAGE_AVG == 0


def build_pages(kind: str, entries: list[tuple[str, Any]], put: Put) -> tuple[PageRef, ...]:
    """Store `entries` (sorted by key, unique) as pages via `put`; return the map's root."""
    return tuple(PageRef(entries[lo][0], put(Page(kind, tuple(entries[lo:hi]))), hi - lo)
                 for lo, hi in page_runs([key for key, _ in entries]))


def page_runs(keys: Sequence[str]) -> list[tuple[int, int]]:
    """Where a table with these keys (sorted, unique) is cut into pages, as (start, end) index ranges: a page ends
    after a boundary key once it holds PAGE_MIN entries, or at PAGE_MAX. That depends on the keys alone, so the
    pages of a table can be told before any of its values exist."""
    runs, start = [], 0
    for i, key in enumerate(keys):
        n = i + 1 - start
        if n >= PAGE_MAX or (n >= PAGE_MIN and _is_boundary(key)):
            runs.append((start, i + 1))
            start = i + 1
    if start < len(keys):
        runs.append((start, len(keys)))
    return runs


def _page(get: GetPage, ref: PageRef, kind: str) -> Page:
    page = get(ref.oid)
    if page.kind != kind:
        raise CorruptObject(f"page {ref.oid.hex()}: not a {kind} page")
    if len(page.entries) != ref.count or (page.entries and page.entries[0][0] != ref.first):
        raise CorruptObject(f"page {ref.oid.hex()}: does not hold what its reference says ({ref.count} entries from {ref.first[:120]!r})")
    return page


def iter_entries(root: tuple[PageRef, ...], get: GetPage, kind: str) -> Iterator[tuple[str, Any]]:
    """Every (key, value) of a map, in key order."""
    for ref in root:
        yield from _page(get, ref, kind).entries


def lookup(root: tuple[PageRef, ...], key: str, get: GetPage, kind: str) -> Any | None:
    """The value of `key` in a map, reading only the one page that can hold it."""
    at = bisect_right([ref.first for ref in root], key)  # the last page whose first key is <= key
    if at == 0:
        return None
    for k, value in _page(get, root[at - 1], kind).entries:
        if k == key:
            return value
    return None


def changed_entries(root_a: tuple[PageRef, ...], root_b: tuple[PageRef, ...], get_a: GetPage, get_b: GetPage,
                    kind: str) -> dict[str, tuple[Any, Any]]:
    """key -> (value in a or None, value in b or None) for every key whose value differs.

    Pages present in both maps hold the same entries, and a key lives in exactly one page of each map,
    so only the pages unique to either side are read: the cost follows the change, not the map.
    """
    ids_a = {r.oid for r in root_a}
    ids_b = {r.oid for r in root_b}
    only_a = dict(iter_entries(tuple(r for r in root_a if r.oid not in ids_b), get_a, kind))
    only_b = dict(iter_entries(tuple(r for r in root_b if r.oid not in ids_a), get_b, kind))
    return {k: (only_a.get(k), only_b.get(k)) for k in sorted(set(only_a) | set(only_b)) if only_a.get(k) != only_b.get(k)}
