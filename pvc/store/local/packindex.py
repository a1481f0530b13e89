"""Pack index files: a sorted, on-disk table from object id to its place in a pack.

Layout of `packs/<index id>.idx` (the index id is the blake3 of the whole file):

    b"PVCIDX\\x00\\x01" | pack count (u32) | entry count (u64)
    pack ids         pack count x 32 bytes
    fanout           256 x u32: number of entries whose first id byte is <= i
    entries          entry count x 64 bytes, sorted by id:
                     id (32) | pack number (u32) | codec (u8) | 3 zero bytes | offset (u64) | stored len (u64) | raw len (u64)
    checksum         blake3 of everything above (32)

Files are memory-mapped and searched in place, so the index costs no Python memory per object.
"""

from __future__ import annotations

import mmap
import struct
from collections import Counter
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import blake3

from pvc.errors import CorruptObject
from pvc.store.atomic import atomic_write
from pvc.store.local.packs import Location

try:  # pvc/_pages.c; without it (or an older build of it) the index is searched in Python (slower, same results)
    from pvc import _pages
except ImportError:  # pragma: no cover - depends on the install
    _pages = None
_row_find = getattr(_pages, "row_find", None)

__all__ = ["IDX_MAGIC", "PackIndex", "merge_indexes", "write_index"]

IDX_MAGIC = b"PVCIDX\x00\x01"
_HEAD = struct.Struct("<8sIQ")
_ENTRY = struct.Struct("<32sIB3xQQQ")
_FANOUT = struct.Struct("<256I")
_SORT = struct.Struct(">32sIQQQB")  # an entry as write_index sorts it: id, pack number, offset, lengths, codec
# ids asked of an index at once from which its entry table is read whole rather than searched once per id: 1 in 2
# of its rows (measured on 50,000 rows: ~1.8 µs a search with its location, ~0.8 µs a row read, ~0.5 more a hit)
_SCAN_SHARE = 2


def write_index(packs_dir: Path, entries) -> Path:
    """Write an index for `entries` = (id, pack id, offset, stored len, raw len, codec), any iterable (a commit
    passes a generator over its packs' packed records); return its path."""
    packs: list[bytes] = []
    pack_no: dict[bytes, int] = {}
    keys = []  # each entry as bytes that sort as its tuple would (big-endian): ~100 bytes, not a tuple of six objects
    for oid, p, off, slen, rlen, codec in entries:
        n = pack_no.get(p)
        if n is None:
            n = pack_no[p] = len(packs)
            packs.append(p)
        keys.append(_SORT.pack(oid, n, off, slen, rlen, codec))
    order = sorted(range(len(packs)), key=packs.__getitem__)  # the file numbers packs in pack id order
    if order != list(range(len(packs))):
        renumber = {old: new for new, old in enumerate(order)}
        for i, k in enumerate(keys):
            oid, n, *rest = _SORT.unpack(k)
            keys[i] = _SORT.pack(oid, renumber[n], *rest)
        packs = [packs[old] for old in order]
    keys.sort()
    fanout = [0] * 256
    rows = bytearray()
    last = None
    for k in keys:
        if k == last:  # the same entry twice
            continue
        last = k
        oid, n, off, slen, rlen, codec = _SORT.unpack(k)
        fanout[oid[0]] += 1
        rows += _ENTRY.pack(oid, n, codec, off, slen, rlen)
    del keys
    return _write_rows(packs_dir, packs, rows, fanout)


def merge_indexes(packs_dir: Path, paths: list[Path]) -> Path:
    """Write one index holding the entries of the index files at `paths` (a remote's many small index files, merged
    in its local cache); return its path. The same entries as `write_index` over their locations would give,
    moved as 64-byte rows (only each row's pack number is rewritten) instead of decoded and encoded one by one.
    Each file is open only while its rows are read (an index holds an open file while it is mapped: hundreds at
    once would pass the open-files limit)."""
    tables = []
    for path in paths:
        idx = PackIndex(path)
        try:
            tables.append((path.name, idx.packs, idx.raw_entries()))
        finally:
            idx.close()
    packs = sorted({pack for _, listed, _ in tables for pack in listed})
    number = {pack: struct.pack("<I", i) for i, pack in enumerate(packs)}
    rows: list[bytes] = []
    for name, listed, raw in tables:
        renumber = {struct.pack("<I", i): number[pack] for i, pack in enumerate(listed)}
        for at in range(0, len(raw), _ENTRY.size):
            new = renumber.get(raw[at + 32 : at + 36])
            if new is None:
                raise CorruptObject(f"index {name}: an entry names a pack the file does not list")
            rows.append(raw[at : at + 32] + new + raw[at + 36 : at + _ENTRY.size])
    rows.sort()
    body = b"".join(row for row, last in zip(rows, [None, *rows]) if row != last)  # the same entry twice: once
    fanout = [0] * 256
    for first, n in Counter(body[:: _ENTRY.size]).items():
        fanout[first] = n
    return _write_rows(packs_dir, packs, body, fanout)


def _write_rows(packs_dir: Path, packs: list[bytes], rows: bytes | bytearray, fanout: list[int]) -> Path:
    """Write an index file of `packs` and the sorted entry `rows`, `fanout` the count per first id byte."""
    count = sum(fanout)
    for i in range(1, 256):
        fanout[i] += fanout[i - 1]
    head = _HEAD.pack(IDX_MAGIC, len(packs), count) + b"".join(packs) + _FANOUT.pack(*fanout)
    hasher = blake3.blake3(head)
    hasher.update(rows)
    digest = hasher.digest()
    hasher.update(digest)
    path = packs_dir / f"{hasher.hexdigest()}.idx"
    atomic_write(path, [head, rows, digest])
    return path


class PackIndex:
    """One memory-mapped `.idx` file, checked against its checksum when opened."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with open(path, "rb") as f:
            self._mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if path.stat().st_size else b""
        self._check()
        magic, n_packs, self.count = _HEAD.unpack_from(self._mm, 0)
        base = _HEAD.size
        self.packs = [bytes(self._mm[base + 32 * i : base + 32 * (i + 1)]) for i in range(n_packs)]
        self._fanout = _FANOUT.unpack_from(self._mm, base + 32 * n_packs)
        self._entries = base + 32 * n_packs + _FANOUT.size

    def _check(self) -> None:
        name = self.path.name
        size = len(self._mm)
        if size < _HEAD.size + _FANOUT.size + 32 or self._mm[:8] != IDX_MAGIC:
            raise CorruptObject(f"index {name}: not a pvc index file (run `pvc verify`; `pvc repair index` rebuilds it from the packs)")
        _, n_packs, count = _HEAD.unpack_from(self._mm, 0)
        expected = _HEAD.size + 32 * n_packs + _FANOUT.size + _ENTRY.size * count + 32
        if size == expected:
            with memoryview(self._mm) as view:  # hashed where it lies: no copy of the file (2.5 MB at 40,000 files)
                digest = blake3.blake3(view[: size - 32]).digest()
        if size != expected or digest != self._mm[size - 32 :]:
            raise CorruptObject(f"index {name}: checksum mismatch (run `pvc verify`; `pvc repair index` rebuilds it from the packs)")
        fanout = _FANOUT.unpack_from(self._mm, _HEAD.size + 32 * n_packs)
        if fanout[-1] != count or any(a > b for a, b in pairwise(fanout)):
            raise CorruptObject(f"index {name}: fanout table is inconsistent (`pvc repair index` rebuilds it from the packs)")

    def lookup(self, oid: bytes) -> Location | None:
        at = self._find(oid)
        return None if at is None else self._location(at)

    def __contains__(self, oid: bytes) -> bool:
        return self._find(oid) is not None

    def _find(self, oid: bytes) -> int | None:
        """Where `oid`'s entry starts: binary search inside the fanout bucket of its first byte (in C where it is
        built: ~8 µs a search in Python, which a clone makes for each of its 50,000 objects)."""
        first = oid[0]
        lo = self._fanout[first - 1] if first else 0
        hi = self._fanout[first]
        if _row_find is not None and type(oid) is bytes and len(oid) == 32:
            return _row_find(self._mm, self._entries, lo, hi, _ENTRY.size, oid)
        mm, base, size = self._mm, self._entries, _ENTRY.size
        while lo < hi:
            mid = (lo + hi) // 2
            at = base + mid * size
            key = mm[at : at + 32]
            if key < oid:
                lo = mid + 1
            elif key > oid:
                hi = mid
            else:
                return at
        return None

    def _location(self, at: int) -> Location:
        _, pack_no, codec, offset, stored_len, raw_len = _ENTRY.unpack_from(self._mm, at)
        if pack_no >= len(self.packs):
            raise CorruptObject(f"index {self.path.name}: entry names pack #{pack_no} of {len(self.packs)}")
        return Location(self.packs[pack_no], offset, stored_len, raw_len, codec)

    def locate_among(self, wanted: set[bytes]) -> dict[bytes, Location]:
        """{id: location} of the entries whose ids are in `wanted`. Searched one by one when `wanted` is small next
        to the index; else read in one pass over the entry table (a clone asks for every object of a version at once:
        50,000 located in 0.07 s that way, 0.09 s searched, on top of what each search asks of its caller)."""
        if len(wanted) * _SCAN_SHARE < self.count:
            return {oid: loc for oid in wanted if (loc := self.lookup(oid)) is not None}
        found, packs = {}, self.packs
        # (read from a copy of the table, ~1 ms for 50,000 rows: no view of the map is held while the rows are read,
        # so another thread may close it meanwhile, as it may during a search)
        for oid, pack_no, codec, offset, stored_len, raw_len in _ENTRY.iter_unpack(
                self._mm[self._entries : self._entries + self.count * _ENTRY.size]):
            if oid in wanted:
                if pack_no >= len(packs):
                    raise CorruptObject(f"index {self.path.name}: entry names pack #{pack_no} of {len(packs)}")
                found[oid] = Location(packs[pack_no], offset, stored_len, raw_len, codec)
        return found

    def ids_among(self, wanted: set[bytes]) -> set[bytes]:
        """The ids of `wanted` this index has (as `locate_among`, without their locations)."""
        if len(wanted) * _SCAN_SHARE < self.count:
            return {oid for oid in wanted if self._find(oid) is not None}
        mm, base, size = self._mm, self._entries, _ENTRY.size
        return wanted.intersection([mm[at : at + 32] for at in range(base, base + self.count * size, size)])

    def __iter__(self) -> Iterator[tuple[bytes, Location]]:
        for i in range(self.count):
            at = self._entries + i * _ENTRY.size
            yield bytes(self._mm[at : at + 32]), self._location(at)

    def raw_entries(self) -> bytes:
        """The entry table as it is in the file: `count` rows of 64 bytes, sorted by id."""
        return bytes(self._mm[self._entries : self._entries + self.count * _ENTRY.size])

    def ids_with_codec(self, codec: int) -> list[bytes]:
        """The ids of the entries of one codec (e.g. the dictionaries), found without decoding every entry."""
        base, mm = self._entries, self._mm
        codecs = mm[base + 36 : base + _ENTRY.size * self.count : _ENTRY.size]  # the codec byte of every entry
        found, at, mark = [], codecs.find(bytes([codec])), bytes([codec])
        while at >= 0:
            start = base + at * _ENTRY.size
            found.append(bytes(mm[start : start + 32]))
            at = codecs.find(mark, at + 1)
        return found

    def name_matches(self) -> bool:
        """Whether the file's name is the blake3 of its bytes (read from the open mapping, not the path)."""
        return blake3.blake3(self._mm).hexdigest() == self.path.stem

    def close(self) -> None:
        if isinstance(self._mm, mmap.mmap):
            self._mm.close()
