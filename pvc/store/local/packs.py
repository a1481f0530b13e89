"""Pack files: objects appended one after another, each behind a small self-describing header.

Layout of `packs/<pack id>.pack` (the pack id is the blake3 of the whole file):

    b"PVCPACK\\x01"
    record*      record = b"PVCO" | id (32) | codec (u8) | raw length (u64) | stored length (u64) | stored bytes
                 (codec: 0 RAW, 1 ZSTD, 2 CHUNKED, 3 ZSTD_DICT, 4 DICT; see `Codec` and docs/format.md)

Because every record names its object, the index can be rebuilt from the packs alone.
A pack is written under `tmp/`, fsynced, and renamed into `packs/` only when the commit that wrote it
succeeds, so a failed or killed commit leaves the visible store unchanged.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import blake3
import msgpack

from pvc.errors import CorruptObject
from pvc.record import record
from pvc.store.atomic import synced_later

__all__ = ["PACK_MAGIC", "RECORD", "DICT_REF", "Codec", "Location", "PackWriter", "PackRecords", "Record", "decode_chunk_list", "parse_records",
           "check_record_header"]

PACK_MAGIC = b"PVCPACK\x01"
RECORD = struct.Struct("<4s32sBQQ")
RECORD_MAGIC = b"PVCO"


class Codec:
    """How an object's bytes are stored in its pack record."""

    RAW = 0  # the bytes as they are (JPEG, PNG, MP4: compression would not pay)
    ZSTD = 1  # one zstd frame
    CHUNKED = 2  # msgpack list of [chunk id, length]: the object is the concatenation of those objects
    ZSTD_DICT = 3  # the first DICT_REF bytes of a dictionary's id, then one zstd frame compressed with that dictionary
    DICT = 4  # a zstd dictionary, as is: stored like RAW, marked so that the indexes list a store's dictionaries

    LAST = DICT


DICT_REF = 4  # a ZSTD_DICT record's stored bytes start with this many bytes of its dictionary's id


@record(frozen=True, slots=True)
class Location:
    """Where an object's stored bytes are: pack id, offset of the bytes (after the header), lengths."""

    pack: bytes
    offset: int
    stored_len: int
    raw_len: int
    codec: int

    @property
    def chunked(self) -> bool:
        """The record holds a chunk list: the object's content is the concatenation of other objects."""
        return self.codec == Codec.CHUNKED


_ROW = struct.Struct("<32sQQQB")


class PackRecords:
    """The records of one written pack, (id, offset, stored length, raw length, codec) each, packed in one buffer
    (57 bytes a record instead of a tuple of five objects, ~250 bytes): a commit keeps those of every pack it
    writes until it indexes them, and worker processes hand theirs over pickled. Iterating gives the tuples."""

    __slots__ = ("_buf",)

    def __init__(self, rows=()) -> None:
        self._buf = bytearray()
        for row in rows:
            self.append(*row)

    def append(self, oid: bytes, offset: int, stored_len: int, raw_len: int, codec: int) -> None:
        self._buf += _ROW.pack(oid, offset, stored_len, raw_len, codec)

    def __len__(self) -> int:
        return len(self._buf) // _ROW.size

    def __iter__(self) -> Iterator[tuple[bytes, int, int, int, int]]:
        return _ROW.iter_unpack(self._buf)

    def __eq__(self, other: object) -> bool:
        return list(self) == list(other) if isinstance(other, (PackRecords, list, tuple)) else NotImplemented

    def __getstate__(self) -> bytes:
        return bytes(self._buf)

    def __setstate__(self, state: bytes) -> None:
        self._buf = bytearray(state)


class PackWriter:
    """Appends records to temp pack files under `tmp_dir`, cutting a new pack past `target_size` bytes.

    Nothing it writes is visible: `seal_all` closes and fsyncs the packs and hands them over (the store then
    moves them into place, or uploads them); `abort` deletes whatever temp files are still there."""

    def __init__(self, tmp_dir: Path, target_size: int = 16 << 20) -> None:
        self._tmp_dir = tmp_dir
        self._target = target_size
        self._sealed: list[tuple[Path, bytes, PackRecords]] = []
        self._file = None
        self._tmp_name = ""
        self._hasher = None
        self._offset = 0
        self._records = PackRecords()

    def append(self, oid: bytes, codec: int, raw_len: int, stored: bytes | memoryview) -> None:
        """Write one record; the object becomes visible only once its sealed pack is published."""
        if self._file is None:
            self._open()
        header = RECORD.pack(RECORD_MAGIC, oid, codec, raw_len, len(stored))
        with self._naming_errors():
            for part in (header, stored):
                self._file.write(part)
                self._hasher.update(part)
        self._records.append(oid, self._offset + RECORD.size, len(stored), raw_len, codec)
        self._offset += RECORD.size + len(stored)
        if self._offset >= self._target:
            self._seal()

    @property
    def size(self) -> int:
        """Bytes written to the pack still open."""
        return self._offset if self._file is not None else 0

    def adopt(self, sealed: list[tuple[Path, bytes, list[tuple[bytes, int, int, int, int]]]]) -> None:
        """Own packs another writer sealed (in this folder), as if this one had."""
        self._sealed.extend(sealed)

    def take_sealed(self) -> list[tuple[Path, bytes, list[tuple[bytes, int, int, int, int]]]]:
        """The packs sealed so far (the open one stays open); from here the caller owns their files."""
        sealed, self._sealed = self._sealed, []
        return sealed

    def seal_all(self) -> list[tuple[Path, bytes, list[tuple[bytes, int, int, int, int]]]]:
        """Close the open pack; return every sealed pack as (temp file, pack id, records) and forget them:
        from here the caller owns the files."""
        self._seal()
        sealed, self._sealed = self._sealed, []
        return sealed

    def abort(self) -> None:
        """Delete every temp pack this writer still owns: nothing of it was ever visible."""
        if self._file is not None:
            try:
                self._file.close()
            except OSError:  # e.g. ENOSPC again while flushing the buffer: the file is dropped anyway
                pass
            self._sealed.append((Path(self._tmp_name), b"", []))
            self._file = None
        for tmp_name, _, _ in self._sealed:
            Path(tmp_name).unlink(missing_ok=True)
        self._sealed = []

    @contextmanager
    def _naming_errors(self) -> Iterator[None]:
        """An OSError while writing (ENOSPC, EIO) names the pack file, so the one-line error says where."""
        try:
            yield
        except OSError as exc:
            if exc.filename:
                raise
            raise OSError(exc.errno, exc.strerror or str(exc), self._tmp_name) from None

    def _open(self) -> None:
        import tempfile  # only writers open packs

        fd, self._tmp_name = tempfile.mkstemp(dir=self._tmp_dir, prefix="pack-", suffix=".tmp")
        os.fchmod(fd, 0o644)  # like every other store file (mkstemp makes 0600)
        self._file = os.fdopen(fd, "wb", buffering=1 << 20)
        self._hasher = blake3.blake3()
        self._file.write(PACK_MAGIC)
        self._hasher.update(PACK_MAGIC)
        self._offset = len(PACK_MAGIC)
        self._records = PackRecords()

    def _seal(self) -> None:
        if self._file is None:
            return
        with self._naming_errors():
            self._file.flush()
            if not synced_later(self._tmp_name):
                os.fsync(self._file.fileno())
            self._file.close()
        self._sealed.append((Path(self._tmp_name), self._hasher.digest(), self._records))
        self._file = None


def check_record_header(raw: bytes, loc: Location, oid: bytes) -> None:
    """Check that `raw` (read from `loc.offset - RECORD.size`) starts with the record of object `oid`
    that the index entry `loc` describes (catches a damaged index or pack), and is complete."""
    where = loc.pack.hex()
    if len(raw) < RECORD.size:
        raise CorruptObject(f"pack {where}: truncated at offset {loc.offset - RECORD.size}")
    if RECORD.unpack_from(raw) != (RECORD_MAGIC, oid, loc.codec, loc.raw_len, loc.stored_len):
        raise CorruptObject(f"pack {where}: record at offset {loc.offset - RECORD.size} does not match the index for {oid.hex()}")
    if len(raw) != RECORD.size + loc.stored_len:
        raise CorruptObject(f"pack {where}: truncated inside object {oid.hex()}")


# -- reading a pack front to back (verify, index rebuild, gc) ----------------------------------------


@record(frozen=True, slots=True)
class Record:
    """One record found by walking a pack: its header fields and where its stored bytes start."""

    oid: bytes
    codec: int
    raw_len: int
    stored_len: int
    offset: int  # of the stored bytes, as an index entry records it

    @property
    def start(self) -> int:
        return self.offset - RECORD.size

    @property
    def end(self) -> int:
        return self.offset + self.stored_len


def parse_records(buf, size: int) -> tuple[list[Record], list[tuple[int, str]]]:
    """Every record of a pack held in `buf` (bytes or mmap), and the damage met as (offset, what).

    Records are not self-synchronising, so after a damaged header the walk resumes at the next place that
    looks like a plausible record header: the records after a damaged one are still found and checked.
    """
    damage: list[tuple[int, str]] = []
    if bytes(buf[: len(PACK_MAGIC)]) != PACK_MAGIC:
        damage.append((0, "not a pack file (bad magic)"))
    records: list[Record] = []
    pos = len(PACK_MAGIC)
    while pos < size:
        record = _record_at(buf, pos, size)
        if record is None:
            resume = _next_plausible(buf, pos + 1, size)
            damage.append((pos, f"damaged record header ({resume - pos} bytes cannot be read as records)"))
            pos = resume
            continue
        records.append(record)
        pos = record.end
    return records, damage


def _record_at(buf, pos: int, size: int) -> Record | None:
    if pos + RECORD.size > size:
        return None
    magic, oid, codec, raw_len, stored_len = RECORD.unpack_from(buf, pos)
    end = pos + RECORD.size + stored_len
    if magic != RECORD_MAGIC or codec > Codec.LAST or end > size:
        return None
    if codec in (Codec.RAW, Codec.DICT) and raw_len != stored_len:
        return None
    return Record(oid, codec, raw_len, stored_len, pos + RECORD.size)


def _next_plausible(buf, start: int, size: int) -> int:
    while True:
        at = buf.find(RECORD_MAGIC, start)
        if at < 0:
            return size
        if _record_at(buf, at, size) is not None:
            return at
        start = at + 1


def decode_chunk_list(data: bytes, oid: bytes) -> list[tuple[bytes, int]]:
    """The [chunk id, length] pairs stored in a CHUNKED record, each checked for shape."""
    try:
        chunks = msgpack.unpackb(data, raw=False)
        pairs = [(bytes(c), n) for c, n in chunks if isinstance(c, bytes) and len(c) == 32 and _is_length(n)]
        if len(pairs) != len(chunks):
            raise ValueError("malformed pair")
        return pairs
    except Exception:  # msgpack raises several unrelated types on garbage
        raise CorruptObject(f"object {oid.hex()}: chunk list is damaged") from None


def _is_length(n) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and n >= 0
