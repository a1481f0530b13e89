"""Paged maps: a large sorted table cut into pages at content-defined boundaries.

A page ends after a key whose crc32 meets a condition (with minimum and maximum page sizes), so where a
page ends depends only on the keys near it: inserting or editing one entry rewrites one page, and every
other page keeps its id and is shared with earlier versions. The root of a map is a list of
[first key, page id, entry count], kept inline in the tree that owns the map.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from typing import Any

from pvc.errors import CorruptObject

__all__ = ["build_pages", "iter_entries", "lookup", "changed_entries", "PAGE_AVG", "PAGE_MIN", "PAGE_MAX"]

PAGE_AVG = 256
PAGE_MIN = 32
PAGE_MAX = 2048


def _is_boundary(key: str) -> bool:
    return zlib.crc32(key.encode()) % PAGE_AVG == 0


def build_pages(kind: str, entries: list[tuple[str, Any]], put: Callable[[dict], bytes]) -> list[list]:
    """Store `entries` (sorted by key, unique) as pages via `put`; return the map's root."""
    root: list[list] = []
    page: list[list] = []
    for key, value in entries:
        page.append([key, value])
        if len(page) >= PAGE_MAX or (len(page) >= PAGE_MIN and _is_boundary(key)):
            root.append([page[0][0], put({"type": "page", "kind": kind, "entries": page}), len(page)])
            page = []
    if page:
        root.append([page[0][0], put({"type": "page", "kind": kind, "entries": page}), len(page)])
    return root


def iter_entries(root: list, get: Callable[[bytes], dict], kind: str) -> Iterator[tuple[str, Any]]:
    """Every (key, value) of a map, in key order, checking each page's shape."""
    for ref in root:
        if not (isinstance(ref, list) and len(ref) == 3 and isinstance(ref[0], str) and isinstance(ref[1], bytes)
                and len(ref[1]) == 32 and isinstance(ref[2], int)):
            raise CorruptObject(f"malformed reference to a {kind} page")
        page = get(ref[1])
        if page.get("type") != "page" or page.get("kind") != kind or not isinstance(page.get("entries"), list):
            raise CorruptObject(f"page {ref[1].hex()}: not a {kind} page")
        for entry in page["entries"]:
            if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)):
                raise CorruptObject(f"page {bytes(ref[1]).hex()}: malformed entry")
            yield entry[0], entry[1]


def lookup(root: list, key: str, get: Callable[[bytes], dict], kind: str) -> Any | None:
    """The value of `key` in a map, reading only the one page that can hold it."""
    lo, hi = 0, len(root)
    while lo < hi:  # the last page whose first key is <= key
        mid = (lo + hi) // 2
        if root[mid][0] <= key:
            lo = mid + 1
        else:
            hi = mid
    if lo == 0:
        return None
    for k, value in iter_entries([root[lo - 1]], get, kind):
        if k == key:
            return value
    return None


def changed_entries(root_a: list, root_b: list, get_a: Callable[[bytes], dict], get_b: Callable[[bytes], dict],
                    kind: str) -> dict[str, tuple[Any, Any]]:
    """key -> (value in a or None, value in b or None) for every key whose value differs.

    Pages present in both maps hold the same entries, and a key lives in exactly one page of each map,
    so only the pages unique to either side are read: the cost follows the change, not the map.
    """
    ids_a = {bytes(r[1]) for r in root_a}
    ids_b = {bytes(r[1]) for r in root_b}
    only_a = dict(iter_entries([r for r in root_a if bytes(r[1]) not in ids_b], get_a, kind))
    only_b = dict(iter_entries([r for r in root_b if bytes(r[1]) not in ids_a], get_b, kind))
    return {k: (only_a.get(k), only_b.get(k)) for k in sorted(set(only_a) | set(only_b)) if only_a.get(k) != only_b.get(k)}
