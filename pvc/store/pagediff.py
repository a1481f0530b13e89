"""Paged maps compared from their bytes: `changed_entries` and `lookup` of pvc/store/pages.py, decoding only what differs.

After a change spread over a project (1% of 20,000 items) nearly every page of a dataset differs between two
versions, and `pages.changed_entries` decodes each of them whole into model objects: ~0.8 s for the 14 MB of pages of
such a diff, while the entries that differ are a few hundred. Decoding is a function of the bytes, so an entry whose
value has the same msgpack bytes in both maps has the same value and cannot be in the diff; pvc/_pages.c walks the
pages' bytes and hands back only the entries whose bytes differ (or that one side lacks), and only those are
decoded, by the same `FileValue.decode` / `ItemEntry.decode`. It also checks every page the way `Page.decode` and
`pages._page` do (a page it accepts is one they accept, with the same entries), so a page that is not what pvc
writes is never taken for an unchanged one.

Whenever anything is unusual (the C module is not built, a page cannot be read, pvc/_pages.c is unsure of a page)
the maps are compared by pvc/store/pages.py itself, so every answer and every error is the one it gives. A NaN in a
value is not equal to itself, so such an entry is always decoded and compared as pages.py compares it.

The reading is through a `PageSource` on each side (`page_sources`): a callable that gives the decoded page, as the
getter pages.py takes, and also its bytes. A snapshot of the working tree (pvc/store/overlay.py) is read the same way:
its new pages are kept as the bytes a commit would store (not as objects), so it compares exactly as that version
would, and `status` neither holds every working item as objects nor decodes every page of the version whole.
"""

from __future__ import annotations

import functools
from bisect import bisect_right
from typing import Any

import msgpack

from pvc.store import pages
from pvc.store.model import FileValue, ItemEntry, Page, PageRef

try:  # built from pvc/_pages.c at install; without it pages.py compares the maps (slower, same results)
    from pvc import _pages
except ImportError:  # pragma: no cover - depends on the install
    _pages = None

__all__ = ["NATIVE_PAGES", "PageSource", "page_sources", "changed_entries", "known_changes", "lookup", "lookup_pair",
           "page_table", "page_table_key"]

NATIVE_PAGES = _pages is not None


def page_table_key(refs: tuple[PageRef, ...], j: int, kind: str) -> tuple:
    """What `_pages.table` of page `j` of a map depends on besides its bytes: (page id, kind, first key, count, the
    next page's first key or None); the bytes are the id's."""
    ref = refs[j]
    return ref.oid, kind, ref.first, ref.count, refs[j + 1].first if j + 1 < len(refs) else None


def page_table(refs: tuple[PageRef, ...], j: int, kind: str, data: bytes) -> tuple[tuple, bytes | None]:
    """(`page_table_key`, the table of page `j`, whose bytes are `data`; None where pvc/_pages.c declines it)."""
    key = page_table_key(refs, j, kind)
    return key, _pages.table(kind, data, *key[2:]) if _pages is not None else None


class PageSource:
    """The pages of one snapshot's store: `source(oid)` is the decoded Page (cached, as `pvc diff` always cached
    them), `raw(oid)` its bytes (checked against its id by the store), `table(root, at, kind)` a page's bytes
    and the table of where its entries lie, or None when pvc/_pages.c is unsure of it."""

    def __init__(self, store: Any, page: pages.GetPage) -> None:
        self._store = store
        self._page = functools.lru_cache(maxsize=256)(page)
        self._raw: dict[bytes, bytes] = {}
        self._tables: dict[tuple, dict[str, bytes] | None] = {}
        self.known: dict[tuple, Any] = {}  # (page, kind, key) -> the value, None for absent: what changed_entries learnt
        self._firsts: dict[int, tuple[tuple[PageRef, ...], list[str]]] = {}

    def __call__(self, oid: bytes) -> Page:
        return self._page(oid)

    def raw(self, oid: bytes) -> bytes:
        data = self._raw.get(oid)
        if data is None:
            data = self._raw[oid] = self._store.get(oid)
        return data

    def firsts(self, root: tuple[PageRef, ...]) -> list[str]:
        """The first keys of a map's pages (kept: a dataset's items are looked up hundreds of times)."""
        found = self._firsts.get(id(root))
        if found is None or found[0] is not root:
            found = self._firsts[id(root)] = (root, [ref.first for ref in root])
        return found[1]

    def table(self, root: tuple[PageRef, ...], at: int, kind: str) -> tuple[bytes, bytes] | None:
        """Page `root[at]`'s bytes and its table (`_pages.table`: where each entry lies, no object made of one)."""
        key = page_table_key(root, at, kind)
        if key not in self._tables:
            try:
                data = self.raw(key[0])
                table = _pages.table(kind, data, *key[2:])
                self._tables[key] = None if table is None else (data, table)
            except Exception:  # unreadable, or anything else: pages.py reads it again and says what it says
                self._tables[key] = None
        return self._tables[key]


def page_sources(a: Any, b: Any) -> tuple[pages.GetPage, pages.GetPage]:
    """The page getters of two snapshots for `changed_entries` and `lookup`: PageSources where pvc/_pages.c is
    built, else the snapshots' own getters, cached."""
    if _pages is None:
        return functools.lru_cache(maxsize=256)(a.page), functools.lru_cache(maxsize=256)(b.page)
    return PageSource(a.store, a.page), PageSource(b.store, b.page)


def changed_entries(root_a: tuple[PageRef, ...], root_b: tuple[PageRef, ...], get_a: pages.GetPage,
                    get_b: pages.GetPage, kind: str) -> dict[str, tuple[Any, Any]]:
    """What `pages.changed_entries` returns, decoding only the entries whose bytes differ."""
    found = _changed(root_a, root_b, get_a, get_b, kind) \
        if isinstance(get_a, PageSource) and isinstance(get_b, PageSource) else None
    return pages.changed_entries(root_a, root_b, get_a, get_b, kind) if found is None else found


def known_changes(root_a: tuple[PageRef, ...], root_b: tuple[PageRef, ...], get_a: pages.GetPage,
                  get_b: pages.GetPage, kind: str, changes: dict[str, tuple[bytes | None, bytes | None]]
                  ) -> dict[str, tuple[Any, Any]]:
    """What `changed_entries` returns, when the map `root_b` is known to be `root_a` with `changes` (key -> (its value
    in `root_a`, its value in `root_b`), each as the msgpack bytes a page holds, None where absent) and nothing else
    different: a map built from the change (pvc/core/capture/delta.py) says so. Only those values are decoded, and
    remembered for `lookup` as `changed_entries` remembers what it decodes; no page is read."""
    if not (isinstance(get_a, PageSource) and isinstance(get_b, PageSource)):
        return changed_entries(root_a, root_b, get_a, get_b, kind)
    try:
        learn_a, learn_b = _knower(root_a, get_a, kind), _knower(root_b, get_b, kind)
        out = {}
        for key in sorted(changes):
            data_a, data_b = changes[key]
            old, new = learn_a(key, data_a), learn_b(key, data_b)
            if old != new:
                out[key] = (old, new)
        return out
    except Exception:  # not expected of values a page held; changed_entries reads the pages and says what it says
        return changed_entries(root_a, root_b, get_a, get_b, kind)


def _knower(root: tuple[PageRef, ...], source: PageSource, kind: str):
    """`learn(key, value bytes)`: the value decoded (None for no bytes), remembered in `source.known` under the page
    that can hold the key (as `_learner` remembers: `lookup` then answers it without reading the page)."""
    firsts = [ref.first for ref in root]

    def learn(key: str, data: bytes | None) -> Any:
        value = None if data is None else _decode(kind, data)
        at = bisect_right(firsts, key)
        if at:
            source.known[_slot(root[at - 1], kind, key)] = value
        elif value is not None:
            raise ValueError("a key before the map's first page")
        return value

    return learn


def _changed(root_a: tuple[PageRef, ...], root_b: tuple[PageRef, ...], get_a: PageSource, get_b: PageSource,
             kind: str) -> dict[str, tuple[Any, Any]] | None:
    ids_a, ids_b = {r.oid for r in root_a}, {r.oid for r in root_b}
    only_a = [r for r in root_a if r.oid not in ids_b]  # the pages both maps share hold the same entries
    only_b = [r for r in root_b if r.oid not in ids_a]
    try:
        rows = _pages.changed(kind, [(get_a.raw(r.oid), r.first, r.count) for r in only_a],
                              [(get_b.raw(r.oid), r.first, r.count) for r in only_b])
        if rows is None:
            return None
        out = {}
        learn_a, learn_b = _learner(root_a, ids_b, get_a, kind), _learner(root_b, ids_a, get_b, kind)
        for key, at_a, value_a, at_b, value_b in rows:
            old = learn_a(key, None if value_a is None else only_a[at_a], value_a)
            new = learn_b(key, None if value_b is None else only_b[at_b], value_b)
            if old != new:  # different bytes may still decode to equal values
                out[key] = (old, new)
        return out
    except Exception:  # a page unreadable, or anything unforeseen: pages.py does it all again and says what it says
        return None


def _learner(root: tuple[PageRef, ...], shared: set[bytes], source: PageSource, kind: str):
    """`learn(key, ref, value bytes)`: the value decoded (None for no bytes), remembered in `source.known` for
    `lookup`, which looks in the page that can hold the key: the page it was read from, and for a key one side
    lacks the page that would hold it, if `changed` read that page whole (its own, not `shared`)."""
    firsts = [ref.first for ref in root]

    def learn(key: str, ref: PageRef | None, data: bytes | None) -> Any:
        if data is None:
            at = bisect_right(firsts, key)
            if at and root[at - 1].oid not in shared:
                source.known[_slot(root[at - 1], kind, key)] = None
            return None
        value = source.known[_slot(ref, kind, key)] = _decode(kind, data)
        return value

    return learn


def _slot(ref: PageRef, kind: str, key: str) -> tuple:
    return ref.oid, ref.first, ref.count, kind, key


def lookup(root: tuple[PageRef, ...], key: str, get: pages.GetPage, kind: str) -> Any | None:
    """What `pages.lookup` returns, decoding only the entry looked up."""
    if not isinstance(get, PageSource):
        return pages.lookup(root, key, get, kind)
    at = bisect_right(get.firsts(root), key)  # the last page whose first key is <= key
    if at == 0:
        return None
    slot = _slot(root[at - 1], kind, key)
    if slot in get.known:
        return get.known[slot]
    found = get.table(root, at - 1, kind)
    if found is None:
        return pages.lookup(root, key, get, kind)
    data = _pages.find(*found, key)[1]
    if data is None:
        return None
    try:
        return _decode(kind, data)
    except Exception:  # not expected of a page pvc/_pages.c accepted; pages.py decides
        return pages.lookup(root, key, get, kind)


def lookup_pair(root_a: tuple[PageRef, ...], root_b: tuple[PageRef, ...], key: str, get_a: pages.GetPage,
                get_b: pages.GetPage, kind: str) -> tuple[Any | None, Any | None]:
    """(`lookup` in `root_a`, `lookup` in `root_b`). Where both maps would look in the same page (one id, the same
    first key and count: the same bytes, the same entries) the entry is decoded once and is both answers, with or
    without pvc/_pages.c (so an entry holding a NaN is not unequal to itself). Between two versions a change of
    annotations leaves the items' pages as they were: `diff` looks up each of the changed items on both sides, and
    on the 1,000-version bench history half its lookups were these second decodings."""
    old = lookup(root_a, key, get_a, kind)
    at_a, at_b = bisect_right(_firsts(root_a, get_a), key), bisect_right(_firsts(root_b, get_b), key)
    if at_a and at_b and root_a[at_a - 1] == root_b[at_b - 1]:
        return old, old
    return old, lookup(root_b, key, get_b, kind)


def _firsts(root: tuple[PageRef, ...], get: pages.GetPage) -> list[str]:
    return get.firsts(root) if isinstance(get, PageSource) else [ref.first for ref in root]


def _decode(kind: str, data: bytes) -> Any:
    """One entry's value, decoded as `Page.decode` decodes it in its page. pvc/_pages.c accepted the page, so
    this does not fail; if it did, the caller would give the map to pages.py, which names the page and the key:
    the error message here is never seen, and is not made for every entry."""
    value = _unpack(data, raw=False, strict_map_key=False)
    return FileValue.decode(value, _WHERE) if kind == "files" else ItemEntry.decode(value, _WHERE)


_unpack = msgpack.unpackb
_WHERE = "page entry"
