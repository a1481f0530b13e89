"""Paged maps compared from their bytes (pvc/store/pagediff.py, pvc/_pages.c) give what pvc/store/pages.py gives.

Every answer is checked against pages.py on the same maps: well-formed maps with edits, inserts and deletes;
values that are equal with different bytes, or unequal with equal bytes (NaN); and crafted pages, which the C
walk must either refuse (None: pages.py then decides) or read exactly as `Page.decode` reads them.
"""

from __future__ import annotations

import math

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pvc.errors import CorruptObject
from pvc.store import pagediff, pages
from pvc.store.model import FileValue, ItemEntry, Page, PageRef
from pvc.store.objects import hash_bytes
from pvc.store.pagediff import PageSource, changed_entries, lookup, lookup_pair

pytestmark = pytest.mark.skipif(not pagediff.NATIVE_PAGES, reason="pvc/_pages.c is not built")
_pages = pagediff._pages


class Store:
    """Objects by id, as a store's `get` gives their bytes."""

    chunk_threshold = 1 << 20

    def __init__(self) -> None:
        self.objects: dict[bytes, bytes] = {}

    def put(self, page: Page) -> bytes:
        return self.put_bytes(page.encode())

    def put_bytes(self, data: bytes) -> bytes:
        oid = hash_bytes(data)
        self.objects[oid] = data
        return oid

    def get(self, oid: bytes) -> bytes:
        return self.objects[oid]

    def page(self, oid: bytes) -> Page:
        return Page.decode(self.get(oid), oid)

    def source(self) -> PageSource:
        return PageSource(self, self.page)


def _file(n: int) -> FileValue:
    return FileValue(hash_bytes(str(n).encode()), n, 0o644 if n % 3 else 0o755)


_meta = st.dictionaries(st.sampled_from(["width", "height", "fps", "format", "tags"]),
                        st.one_of(st.integers(-5, 10**12), st.floats(allow_nan=True), st.text(max_size=4),
                                  st.lists(st.integers(0, 9), max_size=3), st.none()), max_size=4)


def _item(name: str, n: int, meta: dict) -> ItemEntry:
    return ItemEntry("image", f"img/{name}", f"ann/{name}.json" if n % 4 else None,
                     (f"masks/{name}.png",) if n % 5 == 0 else (), meta,
                     {"objects": {"car": n % 7}} if n % 2 else None, ("a", "b") if n % 11 == 0 else None,
                     ("bad",) if n % 13 == 0 else None)


names = st.integers(0, 5000).map(lambda n: f"{n:05d}_é.jpg")


def _maps(store: Store, kind: str, before: dict, after: dict):
    return (pages.build_pages(kind, sorted(before.items()), store.put),
            pages.build_pages(kind, sorted(after.items()), store.put))


def _same(got, expected) -> bool:
    """Equal, a NaN counting as equal to a NaN (the values are decoded apart: NaN != NaN)."""
    return repr(got) == repr(expected)


def _same_answers(store: Store, kind: str, root_a, root_b, probes) -> None:
    expected = pages.changed_entries(root_a, root_b, store.page, store.page, kind)
    a, b = store.source(), store.source()
    assert _same(changed_entries(root_a, root_b, a, b, kind), expected)
    for key in probes:  # after changed_entries (what it learnt) and from a fresh source (the page's table)
        for root, source in ((root_a, a), (root_b, b), (root_a, store.source())):
            assert _same(lookup(root, key, source, kind), pages.lookup(root, key, store.page, kind))
        pair = (pages.lookup(root_a, key, store.page, kind), pages.lookup(root_b, key, store.page, kind))
        assert _same(lookup_pair(root_a, root_b, key, a, b, kind), pair)  # (a page both maps share: decoded once)
        assert _same(lookup_pair(root_a, root_b, key, store.source(), store.source(), kind), pair)


@settings(max_examples=60, deadline=None)
@given(st.sets(names, max_size=1500), st.lists(st.tuples(names, st.integers(0, 10**6)), max_size=80),
       st.lists(names, max_size=40))
def test_file_maps_give_what_pages_gives(initial, changes, deleted):
    store = Store()
    before = {f"img/{k}": _file(i) for i, k in enumerate(sorted(initial))}
    after = dict(before) | {f"img/{k}": _file(v) for k, v in changes}
    for k in deleted:
        after.pop(f"img/{k}", None)
    root_a, root_b = _maps(store, "files", before, after)
    probes = [f"img/{k}" for k, _ in changes[:20]] + [f"img/{k}" for k in deleted[:10]] + ["img/", "zzz"]
    _same_answers(store, "files", root_a, root_b, probes)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sets(names, max_size=800), st.lists(st.tuples(names, st.integers(0, 50), _meta), max_size=40),
       st.lists(names, max_size=20), _meta)
def test_item_maps_give_what_pages_gives(initial, changes, deleted, meta):
    store = Store()
    before = {k: _item(k, i, meta) for i, k in enumerate(sorted(initial))}
    after = dict(before) | {k: _item(k, n, m) for k, n, m in changes}
    for k in deleted:
        after.pop(k, None)
    root_a, root_b = _maps(store, "items", before, after)
    _same_answers(store, "items", root_a, root_b, [k for k, _, _ in changes[:20]] + deleted[:10] + [""])


def test_an_entry_in_a_page_both_maps_share_is_one_answer_with_or_without_the_c_module():
    """lookup_pair gives the entry of a page both maps name once, as both answers, whether the pages are read through
    PageSources (pvc/_pages.c) or by pages.py's getter: an item holding a NaN is equal to itself either way."""
    store = Store()
    entries = sorted((f"{i:04d}.jpg", ItemEntry("image", f"img/{i:04d}.jpg", None, (), {"fps": float("nan")}, None))
                     for i in range(40))
    root = pages.build_pages("items", entries, store.put)
    for get_a, get_b in ((store.source(), store.source()), (store.page, store.page)):
        old, new = lookup_pair(root, root, "0003.jpg", get_a, get_b, "items")
        assert old is new and old == new and old.meta["fps"] != old.meta["fps"]


def test_a_nan_is_compared_as_pages_compares_it():
    """NaN is not equal to itself: an entry holding one is reported changed by pages.py, even with equal bytes."""
    store = Store()
    shared = {f"{n:03d}": _item(f"{n:03d}", n, {"fps": 25}) for n in range(300)}
    before = shared | {"nan": _item("nan", 1, {"fps": math.nan})}
    after = shared | {"nan": _item("nan", 1, {"fps": math.nan}), "new": _item("new", 2, {})}
    root_a, root_b = _maps(store, "items", before, after)
    found = changed_entries(root_a, root_b, store.source(), store.source(), "items")
    assert set(found) == {"nan", "new"}
    assert _same(found, pages.changed_entries(root_a, root_b, store.page, store.page, "items"))


def _page_bytes(kind: str, entries: list[tuple[str, bytes]], *, extra: bytes = b"") -> bytes:
    """A page's msgpack with each entry's value given as bytes (to write encodings pvc never writes)."""
    body = b"".join(b"\x92" + msgpack.packb(k) + v for k, v in entries)
    count = len(entries)
    header = bytes([0x90 | count]) if count < 16 else b"\xdc" + count.to_bytes(2, "big")
    return (b"\x83" + msgpack.packb("entries") + header + body + msgpack.packb("kind") + msgpack.packb(kind)
            + msgpack.packb("type") + msgpack.packb("page") + extra)


def _ref(store: Store, data: bytes, first: str, count: int):
    return (PageRef(first, store.put_bytes(data), count),)


def test_equal_values_in_other_bytes_are_not_changes():
    """A size written as uint16 instead of a fixint: other bytes, the same FileValue, so no change (as pages.py)."""
    store, oid = Store(), hash_bytes(b"x")
    plain = b"\x93\xc4\x20" + oid + b"\x05" + b"\xcd\x01\xa4"
    wide = b"\x93\xc4\x20" + oid + b"\xcd\x00\x05" + b"\xcd\x01\xa4"
    other = b"\x93\xc4\x20" + oid + b"\x06" + b"\xcd\x01\xa4"
    root_a = _ref(store, _page_bytes("files", [("a", plain), ("b", plain)]), "a", 2)
    root_b = _ref(store, _page_bytes("files", [("a", wide), ("b", other)]), "a", 2)
    found = changed_entries(root_a, root_b, store.source(), store.source(), "files")
    assert found == pages.changed_entries(root_a, root_b, store.page, store.page, "files")
    assert list(found) == ["b"]


@pytest.mark.parametrize("entries, extra, first, count", [
    ([("b", b"\xc0"), ("a", b"\xc0")], b"", "b", 2),  # out of order: Page.decode refuses it
    ([("a", b"\x90")], b"", "a", 1),  # not a file value
    ([("../x", None)], b"", "../x", 1),  # an unsafe path
    ([("a", None)], b"\xc0", "a", 1),  # bytes after the page
    ([("a", None)], b"", "b", 1),  # not the first key its reference names
    ([("a", None)], b"", "a", 2),  # not the count its reference names
])
def test_pages_pvc_never_writes_are_left_to_pages_py(entries, extra, first, count):
    store = Store()
    value = b"\x93\xc4\x20" + hash_bytes(b"v") + b"\x01\x01"
    data = _page_bytes("files", [(k, value if v is None else v) for k, v in entries], extra=extra)
    assert _pages.table("files", data, first, count, None) is None
    assert _pages.changed("files", [(data, first, count)], []) is None
    root_a, root_b = _ref(store, data, first, count), ()
    with pytest.raises(CorruptObject) as old:
        pages.changed_entries(root_a, root_b, store.page, store.page, "files")
    with pytest.raises(CorruptObject) as new:
        changed_entries(root_a, root_b, store.source(), store.source(), "files")
    assert str(new.value) == str(old.value)


junk = st.recursive(st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=True)
                    | st.text(max_size=4) | st.binary(max_size=4) | st.sampled_from(["..", "/x", "a\x00", "", "img/a"])
                    | st.binary(min_size=32, max_size=32),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3),
                    max_leaves=6)


def _mutated(data, value):
    """`value` with one place replaced, dropped or added (as tests/test_fuzz_commands.py mutates objects)."""
    if isinstance(value, (dict, list)) and value and data.draw(st.booleans()):
        keys = sorted(value) if isinstance(value, dict) else list(range(len(value)))
        key = data.draw(st.sampled_from(keys))
        copy = dict(value) if isinstance(value, dict) else list(value)
        copy[key] = _mutated(data, value[key])
        return copy
    how = data.draw(st.sampled_from(["replace", "drop", "add"] if isinstance(value, (dict, list)) and value else ["replace"]))
    if how == "replace":
        return data.draw(junk)
    copy = dict(value) if isinstance(value, dict) else list(value)
    if how == "drop":
        del copy[data.draw(st.sampled_from(sorted(copy) if isinstance(copy, dict) else list(range(len(copy)))))]
    elif isinstance(copy, dict):
        copy[data.draw(st.text(max_size=4))] = data.draw(junk)
    else:
        copy.append(data.draw(junk))
    return copy


def _decoded_or_error(data: bytes, oid: bytes, kind: str, first: str, count: int):
    try:
        page = Page.decode(data, oid)
        pages._page(lambda _: page, PageRef(first, oid, count), kind)
        return page
    except Exception as exc:  # noqa: BLE001 - whatever it is, the C walk must have refused the page
        return exc


@settings(max_examples=300, deadline=None)
@given(st.data(), st.sampled_from(["files", "items"]))
def test_a_crafted_page_is_refused_or_read_as_page_decode_reads_it(data, kind):
    value = _file(7) if kind == "files" else _item("x.jpg", 4, {"width": 3})
    entries = [(f"img/{n}.jpg", value) for n in range(3)]
    doc = msgpack.unpackb(Page(kind, tuple(entries)).encode(), raw=False)
    if data.draw(st.booleans()):
        raw = msgpack.packb(_mutated(data, doc), use_bin_type=True)
    else:  # damage below the structure: a byte changed, dropped or added
        raw = bytearray(Page(kind, tuple(entries)).encode())
        at = data.draw(st.integers(0, len(raw) - 1))
        how = data.draw(st.sampled_from(["set", "drop", "insert"]))
        if how == "set":
            raw[at] = data.draw(st.integers(0, 255))
        elif how == "drop":
            del raw[at]
        else:
            raw.insert(at, data.draw(st.integers(0, 255)))
        raw = bytes(raw)
    first, count = data.draw(st.sampled_from([("img/0.jpg", 3), ("img/1.jpg", 3), ("img/0.jpg", 2)]))
    expected = _decoded_or_error(raw, hash_bytes(raw), kind, first, count)
    spans = _pages.table(kind, raw, first, count, None)  # where each entry lies, every entry checked
    if spans is not None:
        assert isinstance(expected, Page), expected
        cls = FileValue if kind == "files" else ItemEntry
        assert [(k, cls.decode(msgpack.unpackb(v, raw=False, strict_map_key=False), k)) for k, v in _spans(raw, spans)] \
            == list(expected.entries)
    rows = _pages.changed(kind, [(raw, first, count)], [(Page(kind, tuple(entries)).encode(), "img/0.jpg", 3)])
    if rows is not None:
        assert isinstance(expected, Page), expected


def test_working_tree_snapshots_are_read_from_their_bytes_too():
    """An overlay keeps its new pages as the bytes a commit would store: diff against the working tree reads them
    as it reads a version's (PageSources), and holds no decoded copy of them."""
    from pvc.store.overlay import OverlayStore

    class Snap:
        def __init__(self, store) -> None:
            self.store = store

        def page(self, oid):
            raise AssertionError

    store = Store()
    both = pagediff.page_sources(Snap(store), Snap(store))
    assert all(isinstance(s, PageSource) for s in both)
    overlay = OverlayStore(store)
    mixed = pagediff.page_sources(Snap(store), Snap(overlay))
    assert all(isinstance(s, PageSource) for s in mixed)
    page = Page("files", (("a.txt", FileValue(b"\1" * 32, 3, 0o644)),))
    oid = overlay.put_object(page)
    assert oid not in overlay._typed and mixed[1].raw(oid) == page.encode()
    assert overlay.get_object(oid, Page) == page


def _spans(data: bytes, table: bytes) -> list[tuple[str, bytes]]:
    """The (key, value bytes) a page's table (`_pages.table`) says lie where in `data`."""
    at = memoryview(table).cast("Q")
    return [(data[at[i]:at[i] + at[i + 1]].decode(), data[at[i + 2]:at[i + 2] + at[i + 3]]) for i in range(0, len(at), 4)]


@pytest.mark.parametrize("kind", ["files", "items"])
def test_a_page_table_finds_what_the_page_holds(kind):
    """`_pages.table` and the lookups on it (`find`, `key_at`, `prefixed`) answer as the page's entries do."""
    keys = [f"img/{i:04d}.jpg" for i in range(0, 600, 3)] + [f"img/{i:04d}.png" for i in range(1, 90, 7)] + ["z/é"]
    keys.sort()
    if kind == "files":
        values = [FileValue(hash_bytes(k.encode()), i, 0o644) for i, k in enumerate(keys)]
    else:
        values = [ItemEntry("image", k, None, (), {"width": i}, None, sorted_values=True) for i, k in enumerate(keys)]
    data = Page(kind, tuple(zip(keys, values))).encode()
    entries = {k: msgpack.packb(v.encode(), use_bin_type=True) for k, v in zip(keys, values)}  # as a page holds them
    table = _pages.table(kind, data, keys[0], len(keys), None)
    assert _spans(data, table) == list(entries.items())
    for probe in [*keys, "", "img/", "img/0001.jpg", "img/0599.jpg~", "zz", "a"]:
        place = sum(1 for k in keys if k < probe)
        assert _pages.find(data, table, probe) == (place, entries.get(probe))
        assert _pages.key_at(data, table, place) == (keys[place] if place < len(keys) else None)
    for prefix in ["img/", "img/00", "img/0003", "img/0088.", "z", "q", ""]:
        found, ended = _pages.prefixed(data, table, prefix)
        assert found == [k for k in keys if k.startswith(prefix)]
        assert ended == any(k > prefix and not k.startswith(prefix) for k in keys)
    # the next page's first key must come after this page's last
    assert _pages.table(kind, data, keys[0], len(keys), "zz") == table
    assert _pages.table(kind, data, keys[0], len(keys), keys[-1]) is None
    assert _pages.table(kind, data, keys[0], len(keys) + 1, None) is None


def test_a_table_that_is_not_the_page_s_is_refused_not_read_past():
    data = Page("files", (("a", FileValue(hash_bytes(b"a"), 1, 0o644)),)).encode()
    table = _pages.table("files", data, "a", 1, None)
    wild = memoryview(bytearray(table)).cast("Q")
    wild[2] = len(data) + 10**6  # a value past the page's end
    with pytest.raises(ValueError):
        _pages.find(data, bytes(wild), "a")
    with pytest.raises(ValueError):
        _pages.runs("files", [(data, bytes(wild), 0, 1)], 32, 256, 2048)
    with pytest.raises(ValueError):
        _pages.runs("files", [(data, table, 0, 2)], 32, 256, 2048)  # more entries than the table holds
    with pytest.raises(TypeError):
        _pages.find(data, table[:-1], "a")
