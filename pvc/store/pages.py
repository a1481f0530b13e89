"""Paged maps: a large sorted table cut into pages at content-defined boundaries.

A page ends after a key whose crc32 meets a condition (with minimum and maximum page sizes), so where a
page ends depends only on the keys near it: inserting or editing one entry rewrites one page, and every
other page keeps its id and is shared with earlier versions. The root of a map is a tuple of PageRef
(first key, page id, entry count), kept inline in the tree that owns the map.

`update_pages` applies changes to an existing map and gives exactly the root `build_pages` gives for the
changed table, reading and writing only the pages the changes touch (plus, rarely, the next one while the
boundaries resynchronise): every page starts empty, so a page that starts where an old page started and holds
none of the changes is that old page, and is reused by id without being read.
"""

from __future__ import annotations

import zlib
from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pvc.errors import CorruptObject
from pvc.store.model import Page, PageRef

__all__ = ["build_pages", "update_pages", "iter_entries", "lookup", "changed_entries", "PAGE_AVG", "PAGE_MIN",
           "PAGE_MAX", "DELETE"]

PAGE_AVG = 256
PAGE_MIN = 32
PAGE_MAX = 2048

DELETE = None  # the value that removes a key in `update_pages`

Put = Callable[[Page], bytes]
GetPage = Callable[[bytes], Page]


def _is_boundary(key: str) -> bool:
    return zlib.crc32(key.encode()) % PAGE_AVG == 0


class _Builder:
    """Appends entries, closing a page after a boundary key (or at PAGE_MAX) and storing it via `put`."""

    def __init__(self, kind: str, put: Put) -> None:
        self.kind, self.put = kind, put
        self.root: list[PageRef] = []
        self.page: list[tuple[str, Any]] = []

    def add(self, key: str, value: Any) -> None:
        self.page.append((key, value))
        if len(self.page) >= PAGE_MAX or (len(self.page) >= PAGE_MIN and _is_boundary(key)):
            self.close()

    def close(self) -> None:
        if self.page:
            page = Page(self.kind, tuple(self.page))
            self.root.append(PageRef(self.page[0][0], self.put(page), len(self.page)))
            self.page = []


def build_pages(kind: str, entries: list[tuple[str, Any]], put: Put) -> tuple[PageRef, ...]:
    """Store `entries` (sorted by key, unique) as pages via `put`; return the map's root."""
    builder = _Builder(kind, put)
    for key, value in entries:
        builder.add(key, value)
    builder.close()
    return tuple(builder.root)


def update_pages(kind: str, root: tuple[PageRef, ...], changes: Mapping[str, Any], get: GetPage,
                 put: Put) -> tuple[PageRef, ...]:
    """The root of the map `root` after `changes` (key -> new value, or DELETE): the same root `build_pages`
    gives for the changed table, reading only the old pages that hold a changed key or follow one until the
    page boundaries fall where they fell before."""
    if not changes:
        return root
    keys = sorted(changes)
    builder = _Builder(kind, put)
    at = 0  # next change to apply
    firsts = [ref.first for ref in root]
    for i, ref in enumerate(root):
        end = firsts[i + 1] if i + 1 < len(root) else None  # keys of page i are < end
        pending = at < len(keys) and (end is None or keys[at] < end)
        if not builder.page and not pending:
            builder.root.append(ref)  # starts empty, as it did, with the same entries: the same page
            continue
        for key, value in iter_entries((ref,), get, kind):
            while at < len(keys) and keys[at] < key:
                _apply(builder, keys[at], changes[keys[at]])
                at += 1
            if at < len(keys) and keys[at] == key:
                _apply(builder, key, changes[key])
                at += 1
            else:
                builder.add(key, value)
        while at < len(keys) and (end is None or keys[at] < end):
            _apply(builder, keys[at], changes[keys[at]])
            at += 1
    while at < len(keys):
        _apply(builder, keys[at], changes[keys[at]])
        at += 1
    builder.close()
    return tuple(builder.root)


def _apply(builder: _Builder, key: str, value: Any) -> None:
    if value is not DELETE:
        builder.add(key, value)


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
