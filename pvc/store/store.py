"""The object store: `has`, `get`, `put`, `put_file`, `write_to`, `iter_ids`, `flush`, `abort`.

Callers see objects by id only; where the bytes live (which pack, which codec) stays in here, so a remote
backend can be added behind the same interface.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import blake3
import msgpack
import zstandard

from pvc.errors import BadInput, CorruptObject, ObjectMissing
from pvc.store import objects
from pvc.store.chunking import iter_chunks
from pvc.store.packindex import PackIndex, write_index
from pvc.store.packs import Codec, Location, PackWriter, decode_chunk_list, read_record_header

__all__ = ["ObjectStore", "INCOMPRESSIBLE_SUFFIXES"]

# Formats that are already compressed: trying zstd on them only costs time.
INCOMPRESSIBLE_SUFFIXES = frozenset(
    ".jpg .jpeg .jfif .mpo .png .webp .gif .mp4 .mkv .webm .avi .mov .3gp .flv .wmv .zip .gz .zst .bz2 .xz .7z .nii.gz".split()
)
_SAMPLE = 128 << 10
_READ_BLOCK = 4 << 20
_MAX_INDEX_FILES = 8


class ObjectStore:
    """Packs and their indexes under one directory; writes are staged until `flush`."""

    def __init__(self, root: Path, *, chunk_threshold: int = 8 << 20, pack_size: int = 16 << 20,
                 strict_indexes: bool = True) -> None:
        """With `strict_indexes` False a damaged index file is left out (and listed in `damaged_indexes`)
        instead of stopping everything: `verify` and the index rebuild need to open a damaged store."""
        self.root = root
        self.packs_dir = root / "packs"
        self.tmp_dir = root / "tmp"
        self.chunk_threshold = chunk_threshold
        self.pack_size = pack_size
        self._writer = PackWriter(self.tmp_dir, self.packs_dir, pack_size)
        self._pending: dict[bytes, tuple[int, int]] = {}
        self._lock = threading.Lock()
        self._local = threading.local()
        self._fds: dict[bytes, int] = {}
        self._strict = strict_indexes
        self.damaged_indexes: list[tuple[Path, str]] = []
        self._indexes = self._open_indexes()

    # -- reading ---------------------------------------------------------------------------------

    def has(self, oid: bytes) -> bool:
        return oid in self._pending or any(oid in idx for idx in self._indexes)

    def locate(self, oid: bytes) -> Location | None:
        for idx in self._indexes:
            loc = idx.lookup(oid)
            if loc is not None:
                return loc
        return None

    def stored_size(self, oid: bytes) -> int:
        """Bytes this object takes in its pack (chunk lists count only themselves)."""
        loc = self._require(oid)
        return loc.stored_len

    def get(self, oid: bytes, *, verify: bool = True) -> bytes:
        """The object's logical bytes; with `verify`, checked against its id."""
        loc, data = self._read_stored(oid)
        if loc.codec == Codec.CHUNKED:
            data = b"".join(self.get(cid, verify=verify) for cid, _ in self._chunk_list(oid, data))
        if verify and objects.hash_bytes(data) != oid:
            raise CorruptObject(f"object {oid.hex()}: content does not match its id")
        return data

    def get_object(self, oid: bytes, what: str = "object") -> dict:
        """A structured object (tree, page, manifest), checked and decoded."""
        return objects.decode(self.get(oid), f"{what} {oid.hex()}")

    def write_to(self, oid: bytes, out: BinaryIO) -> int:
        """Stream the object into `out`, hashing as it goes; raise CorruptObject on a mismatch."""
        hasher = blake3.blake3()
        written = self._write_parts(oid, out, hasher)
        if hasher.digest() != oid:
            raise CorruptObject(f"object {oid.hex()}: content does not match its id")
        return written

    def check(self, oid: bytes) -> None:
        """Re-hash one object (and every chunk of it) without keeping it in memory."""
        self.write_to(oid, _NullWriter())

    def missing_parts(self, oid: bytes) -> list[bytes]:
        """Ids this object needs that the store lacks: itself, or chunks of a chunked object."""
        loc = self.locate(oid)
        if loc is None:
            return [oid]
        if loc.codec != Codec.CHUNKED:
            return []
        return [cid for cid, _ in self.chunk_list(oid) if self.locate(cid) is None]

    def chunk_list(self, oid: bytes) -> list[tuple[bytes, int]] | None:
        """The (chunk id, length) pairs of a chunked object, None for an object stored whole."""
        loc, data = self._read_stored(oid, decompress=False)
        return self._chunk_list(oid, data) if loc.codec == Codec.CHUNKED else None

    def read_record(self, oid: bytes) -> tuple[Location, bytes]:
        """The object's location and its stored bytes exactly as in its pack (gc copies them unchanged)."""
        return self._read_stored(oid, decompress=False)

    def iter_ids(self) -> Iterator[bytes]:
        seen: set[bytes] = set()
        for idx in self._indexes:
            for oid, _ in idx:
                if oid not in seen:
                    seen.add(oid)
                    yield oid

    def _write_parts(self, oid: bytes, out: BinaryIO, hasher) -> int:
        loc, fd = self._open_record(oid)
        if loc.codec == Codec.CHUNKED:
            total = 0
            for cid, _ in self.chunk_list(oid):
                data = self.get(cid)
                hasher.update(data)
                out.write(data)
                total += len(data)
            return total
        if loc.codec == Codec.ZSTD:
            _, data = self._read_stored(oid)
            hasher.update(data)
            out.write(data)
            return len(data)
        done = 0
        while done < loc.stored_len:
            block = os.pread(fd, min(_READ_BLOCK, loc.stored_len - done), loc.offset + done)
            if not block:
                raise CorruptObject(f"pack {loc.pack.hex()}: truncated inside object {oid.hex()}")
            hasher.update(block)
            out.write(block)
            done += len(block)
        return done

    def _require(self, oid: bytes) -> Location:
        loc = self.locate(oid)
        if loc is None:
            raise ObjectMissing(f"object {oid.hex()} is missing from the store")
        return loc

    def _open_record(self, oid: bytes) -> tuple[Location, int]:
        """The object's location and an open fd of its pack, its record header checked.

        A pack can disappear under a reader that does not hold the lock: `gc` deletes a pack once a new index
        names the new home of its live objects. So when a pack is gone, the indexes are read again, once.
        """
        loc = self._require(oid)
        try:
            fd = self._fd(loc.pack)
        except ObjectMissing:
            self._refresh_indexes()
            loc = self._require(oid)
            fd = self._fd(loc.pack)
        read_record_header(fd, loc, oid, loc.pack.hex())
        return loc, fd

    def _read_stored(self, oid: bytes, decompress: bool = True) -> tuple[Location, bytes]:
        loc, fd = self._open_record(oid)
        stored = os.pread(fd, loc.stored_len, loc.offset)
        if len(stored) != loc.stored_len:
            raise CorruptObject(f"pack {loc.pack.hex()}: truncated inside object {oid.hex()}")
        if decompress and loc.codec == Codec.ZSTD:
            try:
                return loc, self._dctx().decompress(stored, max_output_size=loc.raw_len)
            except zstandard.ZstdError as exc:
                raise CorruptObject(f"object {oid.hex()}: zstd frame is damaged ({exc})") from None
            except MemoryError:  # a crafted length: the frame claims more than can be held
                raise CorruptObject(f"object {oid.hex()}: implausible length {loc.raw_len}") from None
        return loc, stored

    def _chunk_list(self, oid: bytes, data: bytes) -> list[tuple[bytes, int]]:
        return decode_chunk_list(data, oid)

    def _fd(self, pack: bytes) -> int:
        with self._lock:
            fd = self._fds.get(pack)
            if fd is None:
                path = self.packs_dir / f"{pack.hex()}.pack"
                try:
                    fd = os.open(path, os.O_RDONLY)
                except FileNotFoundError:
                    raise ObjectMissing(f"pack {pack.hex()} is missing from the store") from None
                self._fds[pack] = fd
            return fd

    def _dctx(self) -> zstandard.ZstdDecompressor:
        dctx = getattr(self._local, "dctx", None)
        if dctx is None:
            dctx = self._local.dctx = zstandard.ZstdDecompressor()
        return dctx

    def _open_indexes(self) -> list[PackIndex]:
        for _ in range(5):  # a concurrent consolidation may delete a file between listing and opening
            try:
                return self._open_index_files()
            except FileNotFoundError:
                continue
        return self._open_index_files()

    def _open_index_files(self) -> list[PackIndex]:
        if self._strict:
            return [PackIndex(p) for p in sorted(self.packs_dir.glob("*.idx"))]
        opened, self.damaged_indexes = [], []
        for path in sorted(self.packs_dir.glob("*.idx")):
            try:
                opened.append(PackIndex(path))
            except FileNotFoundError:
                raise  # deleted since the listing: `_open_indexes` lists again
            except (CorruptObject, ValueError, OSError) as exc:
                self.damaged_indexes.append((path, str(exc)))
        return opened

    def _refresh_indexes(self) -> None:
        """See the indexes on disk now; the old ones stay open for threads still searching them."""
        with self._lock:
            self._indexes = self._open_indexes()

    @property
    def indexes(self) -> list[PackIndex]:
        """The index files in use, in search order (the first hit wins)."""
        return list(self._indexes)

    def pack_path(self, pack: bytes) -> Path:
        return self.packs_dir / f"{pack.hex()}.pack"

    def pack_fd(self, pack: bytes) -> int:
        """This store's open file of `pack` (opened now if need be; ObjectMissing if it is gone)."""
        return self._fd(pack)

    def pin_packs(self) -> list[bytes]:
        """Open every pack on disk now and keep it open, so a later gc cannot take it away; return their ids."""
        pinned = []
        for path in sorted(self.packs_dir.glob("*.pack")):
            try:
                pack = bytes.fromhex(path.stem)
                self._fd(pack)
            except (ValueError, ObjectMissing):
                continue  # not named like a pack, or gone since the listing
            pinned.append(pack)
        return pinned

    # -- writing ---------------------------------------------------------------------------------

    def put(self, data: bytes, *, compress: bool | None = None) -> bytes:
        """Store `data` (if new) and return its id. `compress=None` tries zstd on a sample."""
        oid = objects.hash_bytes(data)
        self._put_with_id(oid, data, compress)
        return oid

    def put_object(self, obj: dict) -> bytes:
        """Store a structured object in its canonical encoding."""
        return self.put(objects.encode(obj), compress=True)

    def put_file(self, path: Path, size: int, on_data: Callable[[bytes], None] | None = None) -> bytes:
        """Store a file's bytes and return their id; files of `chunk_threshold` bytes or more are chunked.

        `on_data` receives the whole content of small files (so callers can parse them without a second read).
        """
        compress = None if _suffix(path) not in INCOMPRESSIBLE_SUFFIXES else False
        try:
            with open(path, "rb") as f:
                if size < self.chunk_threshold:
                    data = f.read()
                    _check_size(path, size, len(data))
                    if on_data is not None:
                        on_data(data)
                    return self.put(data, compress=compress)
                return self._put_chunked(path, f, size, compress)
        except PermissionError:
            raise BadInput(path, "permission denied") from None
        except IsADirectoryError:
            raise BadInput(path, "is a directory") from None

    def _put_chunked(self, path: Path, f: BinaryIO, size: int, compress: bool | None) -> bytes:
        hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
        chunks: list[list] = []
        total = 0
        for chunk in iter_chunks(f):
            hasher.update(chunk)
            total += len(chunk)
            chunks.append([self.put(chunk, compress=compress), len(chunk)])
        _check_size(path, size, total)
        oid = hasher.digest()
        if not self.has(oid):
            self._append(oid, Codec.CHUNKED, total, msgpack.packb(chunks, use_bin_type=True))
        return oid

    def _put_with_id(self, oid: bytes, data: bytes, compress: bool | None) -> None:
        if self.has(oid):
            return
        codec, stored = Codec.RAW, data
        if compress is not False and len(data) >= 64 and (compress or self._pays(data)):
            packed = self._cctx().compress(data)
            if len(packed) < len(data):
                codec, stored = Codec.ZSTD, packed
        self._append(oid, codec, len(data), stored)

    def _append(self, oid: bytes, codec: int, raw_len: int, stored: bytes) -> None:
        with self._lock:
            if oid in self._pending:
                return
            self._writer.append(oid, codec, raw_len, stored)
            self._pending[oid] = (codec, raw_len)

    def _pays(self, data: bytes) -> bool:
        sample = data[:_SAMPLE]
        return len(self._cctx().compress(sample)) < 0.9 * len(sample)

    def _cctx(self) -> zstandard.ZstdCompressor:
        cctx = getattr(self._local, "cctx", None)
        if cctx is None:
            cctx = self._local.cctx = zstandard.ZstdCompressor(level=3)
        return cctx

    def flush(self) -> None:
        """Make every staged object durable and visible: packs renamed into place, then their index."""
        with self._lock:
            published = self._writer.publish()
            entries = [
                (oid, pack_id, off, slen, rlen, codec)
                for pack_id, records in published
                for oid, off, slen, rlen, codec in records
            ]
            try:
                if entries:
                    write_index(self.packs_dir, entries)
            except BaseException:  # e.g. ENOSPC: the packs just renamed are named by nothing; take them back
                for pack_id, _ in published:
                    (self.packs_dir / f"{pack_id.hex()}.pack").unlink(missing_ok=True)
                raise
            finally:
                self._pending.clear()
        if entries:
            self._reload_indexes()
            if len(self._indexes) > _MAX_INDEX_FILES:
                self.consolidate_indexes()

    def consolidate_indexes(self) -> None:
        """Merge all index files into one (caller holds the repository lock)."""
        old = list(self._indexes)
        entries = [(oid, loc.pack, loc.offset, loc.stored_len, loc.raw_len, loc.codec) for idx in old for oid, loc in idx]
        merged = write_index(self.packs_dir, entries)
        for idx in old:
            idx.close()
            if idx.path != merged:
                idx.path.unlink(missing_ok=True)
        self._reload_indexes()

    def abort(self) -> None:
        """Forget every staged object; the visible store is as it was."""
        with self._lock:
            self._writer.abort()
            self._pending.clear()

    def _reload_indexes(self) -> None:
        for idx in self._indexes:
            idx.close()
        self._indexes = self._open_indexes()

    def reload(self) -> None:
        """See the index files on disk now (after gc or an index rebuild by this process)."""
        with self._lock:
            self._reload_indexes()

    def close_pack(self, pack: bytes) -> None:
        """Close this store's file of `pack` (before it is deleted)."""
        with self._lock:
            fd = self._fds.pop(pack, None)
        if fd is not None:
            os.close(fd)

    def close(self) -> None:
        self.abort()
        for idx in self._indexes:
            idx.close()
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


class _NullWriter:
    def write(self, data: bytes) -> int:
        return len(data)


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else os.path.splitext(name)[1]


def _check_size(path: Path, expected: int, got: int) -> None:
    if expected != got:
        raise BadInput(path, f"changed while being read ({expected} bytes expected, {got} read)")
