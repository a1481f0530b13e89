"""Checking a pack by reading it once, front to back: every record re-hashed, the pack's name checked.

Used by `verify` and by the index rebuild. A RAW, ZSTD or DICT record is checked on its own, by hashing its content
against the id in its header; a ZSTD_DICT record likewise, decoded with the dictionary it names (`dictionary`:
how the caller's store gives one; without it, or without the dictionary, the record is reported as unreadable); a CHUNKED record by decoding its chunk list (the chunks are records of their
own, and `verify` checks that the lengths add up). The whole file is hashed on the way, since a pack's name
is the blake3 of its bytes: that catches damage even where no object is (the pack magic).
"""

from __future__ import annotations

import mmap
import os
import random
from collections.abc import Callable
from pathlib import Path

import blake3
import zstandard

from pvc.errors import CorruptObject, ObjectMissing
from pvc.record import field, record
from pvc.store.local.packs import DICT_REF, Codec, Record, decode_chunk_list, parse_records

__all__ = ["PackCheck", "check_pack", "check_record"]

_BLOCK = 1 << 20


@record
class PackCheck:
    """What reading one pack found."""

    path: Path
    size: int
    records: list[Record] = field(default_factory=list)
    bad: dict[int, str] = field(default_factory=dict)  # record offset -> what is wrong with its content
    checked: int = 0  # records whose content was re-hashed
    damage: list[tuple[int, str]] = field(default_factory=list)  # (offset, what) outside any one record
    name_ok: bool | None = None  # whole-file blake3 equals the file name; None when not checked (sampling)

    @property
    def pack_id(self) -> bytes | None:
        try:
            return bytes.fromhex(self.path.stem) if len(self.path.stem) == 64 else None
        except ValueError:
            return None


def check_pack(path: Path, *, fd: int | None = None, sample: float = 1.0, rng: random.Random | None = None,
               dictionary: Dictionaries | None = None) -> PackCheck:
    """Read `path` once (through `fd` if given: a pack kept open survives its deletion by a gc meanwhile);
    re-hash every record, or a random `sample` fraction of them, skipping the rest. `dictionary(ref)` gives the
    zstd dictionary a ZSTD_DICT record names (by the first bytes of its id)."""
    rng = rng or random.Random()
    with open(path if fd is None else os.dup(fd), "rb") as f:
        size = os.fstat(f.fileno()).st_size
        result = PackCheck(path, size)
        if size == 0:
            result.damage.append((0, "empty file"))
            result.name_ok = sample >= 1.0 and path.stem == blake3.blake3(b"").hexdigest()
            return result
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            if hasattr(mm, "madvise"):
                mm.madvise(mmap.MADV_SEQUENTIAL)
            if sample >= 1.0:
                result.name_ok = blake3.blake3(mm, max_threads=blake3.blake3.AUTO).hexdigest() == path.stem
            result.records, result.damage = parse_records(mm, size)
            view = memoryview(mm)
            try:
                for rec in result.records:
                    if sample >= 1.0 or rng.random() < sample:
                        result.checked += 1
                        problem = check_record(view[rec.offset : rec.end], rec, dictionary)
                        if problem:
                            result.bad[rec.offset] = problem
            finally:
                view.release()
    return result


Dictionaries = Callable[[bytes], zstandard.ZstdCompressionDict]


def check_record(stored, rec: Record, dictionary: Dictionaries | None = None) -> str | None:
    """What is wrong with one record's stored bytes, or None if its content matches its id. A ZSTD_DICT record is
    decoded with `dictionary(ref)`, ref the first bytes of the dictionary's id (ObjectMissing or CorruptObject when
    that dictionary cannot be had)."""
    if rec.codec == Codec.CHUNKED:
        try:
            chunks = decode_chunk_list(bytes(stored), rec.oid)
        except CorruptObject:
            return "chunk list is damaged"
        if sum(n for _, n in chunks) != rec.raw_len:
            return "chunk lengths do not add up to the object's length"
        return None
    hasher = blake3.blake3()
    if rec.codec in (Codec.RAW, Codec.DICT):
        hasher.update(stored)
        length = len(stored)
    elif rec.codec == Codec.ZSTD_DICT:
        if len(stored) < DICT_REF:
            return "too short to name its dictionary"
        ref = bytes(stored[:DICT_REF])
        if dictionary is None:
            return f"its dictionary {ref.hex()}… is not available here"
        try:
            zdict = dictionary(ref)
        except (ObjectMissing, CorruptObject) as exc:
            return f"its dictionary {ref.hex()}… cannot be read ({exc})"
        try:
            length = _hash_zstd(stored[DICT_REF:], hasher, rec.raw_len, zdict)
        except zstandard.ZstdError:
            return "zstd frame is damaged"
    else:
        try:
            length = _hash_zstd(stored, hasher, rec.raw_len)
        except zstandard.ZstdError:
            return "zstd frame is damaged"
    if length != rec.raw_len:
        return f"content is {length} bytes, its header says {rec.raw_len}"
    if hasher.digest() != rec.oid:
        return "content does not match its id"
    return None


def _hash_zstd(stored, hasher, limit: int, zdict: zstandard.ZstdCompressionDict | None = None) -> int:
    dctx = zstandard.ZstdDecompressor() if zdict is None else \
        zstandard.ZstdDecompressor(dict_data=zdict, format=zstandard.FORMAT_ZSTD1_MAGICLESS)  # a ZSTD_DICT frame
    reader = dctx.stream_reader(stored)
    length = 0
    while length <= limit:
        block = reader.read(_BLOCK)
        if not block:
            break
        hasher.update(block)
        length += len(block)
    return length
