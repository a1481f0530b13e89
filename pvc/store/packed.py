"""What every pack-based store shares: objects as records in pack files, found through index files.

The local store (`store/local/packstore.py`) and a remote on object storage (`store/remote/store.py`) are the same
store on two media: the same pack and index bytes (docs/format.md), the same codecs and chunking. A subclass
says how to read a byte range of a pack and how to publish the packs a writer sealed; everything else (finding
an object, checking its record header, decompressing, chunk lists, compression policy, staging) is here.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import blake3
import msgpack
import zstandard

from pvc.errors import BadInput, CorruptObject, ObjectMissing
from pvc.record import record
from pvc.store import objects
from pvc.store.backend import ObjectAccess, ObjectInfo
from pvc.store.local.packindex import PackIndex
from pvc.store.local.packs import (
    DICT_REF,
    RECORD,
    Codec,
    Location,
    PackWriter,
    check_record_header,
    decode_chunk_list,
)

if TYPE_CHECKING:  # imported where they are used: reading one object at a time needs neither
    from concurrent.futures import Future, ThreadPoolExecutor

__all__ = ["PackedStore", "INCOMPRESSIBLE_SUFFIXES", "Published"]

# Formats that are already compressed: trying zstd on them only costs time.
INCOMPRESSIBLE_SUFFIXES = frozenset(
    ".jpg .jpeg .jfif .mpo .png .webp .gif .mp4 .mkv .webm .avi .mov .3gp .flv .wmv .zip .gz .zst .bz2 .xz .7z .nii.gz".split()
)
_SAMPLE = 128 << 10
STRUCTURE_LEVEL = 9  # zstd level of pages, trees and manifests
FILE_LEVEL = 3  # of files, and of the pages a commit from the change rebuilds (put(quick=True)): on pages ~6x faster
# than level 9 and ~6% larger; such a commit rebuilds a few hundred, where level 9 cost a 1% commit of 20k items ~0.13 s

# Dictionary compression (docs/format.md, "Dictionaries"). Small JSON files (annotations, companions) compress 3-5x
# one by one but repeat each other's keys and structure; JPEG files do not compress at all, but each starts with
# the same few hundred bytes of tables. A dictionary trained on the store's own files of that kind captures what
# they share. A commit trains one per kind when the store has none of it and the commit stores at least
# DICT_MIN_FILES files of the kind; the dictionary is an object of the store (a DICT record whose zstd dictionary
# id says the kind), named by every record compressed with it.


@record(frozen=True)
class DictKind:
    name: str
    dict_id: int  # the zstd dictionary id written in the dictionary (>= 32768: a private one), naming the kind
    suffixes: frozenset[str]
    min_file: int  # files of min_file <= size < max_file (and under chunk_threshold) are compressed with it
    max_file: int
    level: int
    sample_bytes: int  # trained on the first bytes of each sample
    samples: int  # at most this many samples, evenly spaced in path order
    size: int  # dictionary size


DICT_KINDS = (
    DictKind("json", 0x70766301, frozenset({".json"}), 64, 256 << 10, 11, 256 << 10, 2000, 110 << 10),
    DictKind("jpeg", 0x70766302, frozenset({".jpg", ".jpeg", ".jfif"}), 1024, 1 << 62, 1, 4 << 10, 1000, 110 << 10),
)
DICT_MIN_FILES = 1000  # new files of a kind a commit must store to train its dictionary
def _dict_params(kind: DictKind) -> zstandard.ZstdCompressionParameters:
    """A ZSTD_DICT frame: the kind's level, and nothing the record already says (magic, content size, dictionary
    id) nor a checksum (the content is checked against its id)."""
    return zstandard.ZstdCompressionParameters.from_level(kind.level, format=zstandard.FORMAT_ZSTD1_MAGICLESS,
                                                          write_content_size=0, write_dict_id=0, write_checksum=0)


_KIND_OF_SUFFIX = {suffix: kind for kind in DICT_KINDS for suffix in kind.suffixes}
_KIND_OF_ID = {kind.dict_id: kind for kind in DICT_KINDS}

Published = list[tuple[Path, bytes, list[tuple[bytes, int, int, int, int]]]]  # (sealed file, pack id, records)


class PackedStore(ObjectAccess):
    """Objects in packs, found through indexes; writes staged in temp packs until `flush`."""

    # the most bytes one ranged read covers (neighbouring records read together): a remote pays per request, so
    # it reads much at once; a local store gains little past 1 MiB and holds `workers` such buffers at a time
    span = 8 << 20

    def __init__(self, tmp_dir: Path, *, chunk_threshold: int, pack_size: int) -> None:
        self.tmp_dir = tmp_dir
        self.chunk_threshold = chunk_threshold
        self.pack_size = pack_size
        self._writer = PackWriter(tmp_dir, pack_size)
        self._pending: set[bytes] = set()  # the ids staged
        self._lock = threading.Lock()
        self._local = threading.local()
        self._indexes: list[PackIndex] = []
        self.dictionary_records = False  # a DICT or ZSTD_DICT record was staged (the store must be format 2)
        self._zdicts: dict[bytes, zstandard.ZstdCompressionDict] = {}  # dictionaries read, by id
        # per kind name: (id, dictionary) new files of that kind are compressed with; None: not looked for yet
        self._writing: dict[str, tuple[bytes, zstandard.ZstdCompressionDict]] | None = None
        self._syncs: deque[Future] = deque()  # the fsyncs of packs `stage_pack` wrote, oldest first (`_sync_later`)
        self._syncer: ThreadPoolExecutor | None = None
        self._sync_lock = threading.Lock()

    # -- what a medium provides ---------------------------------------------------------------------

    def _read_at(self, pack: bytes, offset: int, length: int) -> bytes:
        """`length` bytes of pack `pack` from `offset` (ObjectMissing if the pack is gone)."""
        raise NotImplementedError

    def _publish(self, sealed: Published) -> None:
        """Make the sealed packs and an index naming their records durable and visible, in that order."""
        raise NotImplementedError

    # -- reading ------------------------------------------------------------------------------------

    def has(self, oid: bytes) -> bool:
        if oid in self._pending:
            return True
        for idx in self._indexes:  # a loop, not any(): asked once for every file a commit or status scans
            if oid in idx:
                return True
        return False

    def locate(self, oid: bytes) -> Location | None:
        for idx in self._indexes:
            loc = idx.lookup(oid)
            if loc is not None:
                return loc
        return None

    def held(self, oids: Iterable[bytes]) -> set[bytes]:
        """The ids of `oids` this store has: `has` of each, asked at once (an index most of whose rows are asked is
        read whole instead of searched once per id)."""
        rest = set(oids)
        found = rest & self._pending
        rest -= found
        return found | held_in(self._indexes, rest)

    def locate_many(self, oids: Iterable[bytes]) -> dict[bytes, Location]:
        """`locate` of each of `oids`, asked at once: {id: location} of those found (as `held`)."""
        return located_in(self._indexes, set(oids))

    def info(self, oid: bytes) -> ObjectInfo | None:
        loc = self.locate(oid)
        return None if loc is None else self.info_at(loc)

    @staticmethod
    def info_at(loc: Location) -> ObjectInfo:
        """What `info` says of the object at `loc` (a caller that located it already saves the second lookup)."""
        return ObjectInfo(loc.raw_len, loc.codec == Codec.CHUNKED, loc.stored_len)

    def get(self, oid: bytes, *, verify: bool = True) -> bytes:
        """The object's content; with `verify`, checked against its id."""
        loc, stored = self._read_stored(oid)
        if loc.codec == Codec.CHUNKED:
            data = b"".join(self.get(cid, verify=verify) for cid, _ in decode_chunk_list(stored, oid))
        else:
            data = self._decoded(oid, loc, stored)
        if verify and objects.hash_bytes(data) != oid:
            raise CorruptObject(f"object {oid.hex()}: content does not match its id")
        return data

    def read_range(self, oid: bytes, start: int, length: int) -> bytes:
        """`length` bytes of the content from `start` (fewer at its end), not checked against the id: a part
        cannot be. A chunked object reads only the chunks the range covers, each checked against its id."""
        loc = self._require(oid)
        if loc.codec != Codec.CHUNKED:
            if loc.codec == Codec.RAW:
                length = max(0, min(length, loc.raw_len - start))
                return self._read_at(loc.pack, loc.offset + start, length) if length else b""
            return self.get(oid, verify=False)[start : start + length]
        parts, at = [], 0
        for cid, size in self.chunk_list(oid):
            if at + size > start and at < start + length:
                chunk = self.get(cid)
                parts.append(chunk[max(0, start - at) : start + length - at])
            at += size
        return b"".join(parts)

    def write_to(self, oid: bytes, out: BinaryIO) -> int:
        """Stream the object into `out`, hashing as it goes; CorruptObject on a mismatch."""
        hasher = blake3.blake3()
        loc, stored = self._read_stored(oid)
        if loc.codec == Codec.CHUNKED:
            total = 0
            for cid, _ in decode_chunk_list(stored, oid):
                data = self.get(cid)
                hasher.update(data)
                out.write(data)
                total += len(data)
        else:
            data = self._decoded(oid, loc, stored)
            hasher.update(data)
            out.write(data)
            total = len(data)
            del data, stored
        if hasher.digest() != oid:
            raise CorruptObject(f"object {oid.hex()}: content does not match its id")
        return total

    def chunk_list(self, oid: bytes) -> list[tuple[bytes, int]] | None:
        loc, stored = self._read_stored(oid)
        return decode_chunk_list(stored, oid) if loc.codec == Codec.CHUNKED else None

    def read_record(self, oid: bytes) -> tuple[Location, bytes]:
        """The object's location and its stored bytes exactly as in its pack (to copy a record unchanged)."""
        return self._read_stored(oid)

    def read_records(self, oids: list[bytes], *, workers: int = 8) -> Iterator[tuple[bytes, Location, bytes | None]]:
        """(id, location, stored bytes) of each object of `oids` present in the store, in pack order, the bytes
        None where the pack could not be read (gone, or truncated). Records close together in one pack are read
        with one request (a remote pays per request), several requests in flight at once."""
        groups = _coalesce([(oid, loc) for oid in dict.fromkeys(oids) if (loc := self.locate(oid)) is not None],
                           self.span)
        if not groups:
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=workers) as pool:  # memory: at most `workers` spans read ahead
            yield from _bounded(pool, self._read_group, groups, ahead=workers)

    def visit_records(self, oids: list[bytes], visit: Callable[[list[tuple[bytes, Location, bytes | None]]], None],
                      *, workers: int = 8) -> set[bytes]:
        """Call `visit(records)` with the records of `oids` the store has, as `[(id, location, stored bytes or
        None)]`, one call per run of neighbours read at once, in worker threads (so that what `visit` does with the
        bytes, e.g. writing files, runs in parallel too); return the ids visited."""
        groups = _coalesce([(oid, loc) for oid in dict.fromkeys(oids) if (loc := self.locate(oid)) is not None],
                           self.span)

        def run(group) -> list[bytes]:
            records = self._read_group(group)
            visit(records)
            return [oid for oid, _, _ in records]

        seen: set[bytes] = set()
        if groups:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=workers) as pool:
                for done in _bounded(pool, lambda g: [run(g)], groups, ahead=2 * workers):
                    seen.update(done)
        return seen

    def _read_group(self, group: tuple[bytes, list[tuple[bytes, Location]]]) -> list[tuple[bytes, Location, bytes | None]]:
        pack, members = group
        start = members[0][1].offset - RECORD.size
        end = max(loc.offset + loc.stored_len for _, loc in members)
        try:
            [raw] = self.read_ranges(pack, [(start, end - start)])
        except ObjectMissing:
            if not self._pack_gone():
                return [(oid, loc, None) for oid, loc in members]
            return [self._read_one(oid, loc) for oid, loc in members]  # moved (gc): where the indexes say now
        out, view = [], memoryview(raw)  # slices of the one buffer read, not copies of it
        for oid, loc in members:
            at = loc.offset - RECORD.size - start
            record = view[at : at + RECORD.size + loc.stored_len]
            try:
                check_record_header(record, loc, oid)
                out.append((oid, loc, record[RECORD.size :]))
            except CorruptObject:
                out.append((oid, loc, None))
        return out

    def _read_one(self, oid: bytes, loc: Location) -> tuple[bytes, Location, bytes | None]:
        try:
            return (oid, *self._read_stored(oid))
        except (ObjectMissing, CorruptObject):
            return oid, loc, None

    def read_ranges(self, pack: bytes, ranges: list[tuple[int, int]]) -> list[bytes]:
        """Several byte ranges (start, length) of one pack."""
        return [self._read_at(pack, start, length) for start, length in ranges]

    def decoded(self, oid: bytes, loc: Location, stored: bytes) -> bytes:
        """The content of a RAW, ZSTD, ZSTD_DICT or DICT record read by `read_records` (not checked against its id)."""
        return self._decoded(oid, loc, stored)

    def iter_ids(self) -> Iterator[bytes]:
        seen: set[bytes] = set()
        for idx in self._indexes:
            for oid, _ in idx:
                if oid not in seen:
                    seen.add(oid)
                    yield oid

    @property
    def indexes(self) -> list[PackIndex]:
        """The index files in use, in search order (the first hit wins)."""
        return list(self._indexes)

    def _require(self, oid: bytes) -> Location:
        loc = self.locate(oid)
        if loc is None:
            raise ObjectMissing(f"object {oid.hex()} is missing from the store")
        return loc

    def _read_stored(self, oid: bytes) -> tuple[Location, bytes]:
        """The record's stored bytes, its header checked against the index entry."""
        loc = self._require(oid)
        try:
            raw = self._read_at(loc.pack, loc.offset - RECORD.size, RECORD.size + loc.stored_len)
        except ObjectMissing:
            if not self._pack_gone():
                raise
            loc = self._require(oid)
            raw = self._read_at(loc.pack, loc.offset - RECORD.size, RECORD.size + loc.stored_len)
        check_record_header(raw, loc, oid)
        return loc, raw[RECORD.size :]

    def _pack_gone(self) -> bool:
        """A pack an index named is gone: True if the indexes were read again (worth one more try)."""
        return False

    def _decoded(self, oid: bytes, loc: Location, stored: bytes) -> bytes:
        if loc.codec == Codec.ZSTD_DICT:
            return self._decoded_with_dictionary(oid, loc, stored)
        if loc.codec != Codec.ZSTD:
            return stored
        try:
            return self._dctx().decompress(stored, max_output_size=loc.raw_len)
        except zstandard.ZstdError as exc:
            raise CorruptObject(f"object {oid.hex()}: zstd frame is damaged ({exc})") from None
        except MemoryError:  # a crafted length: the frame claims more than can be held
            raise CorruptObject(f"object {oid.hex()}: implausible length {loc.raw_len}") from None

    def _decoded_with_dictionary(self, oid: bytes, loc: Location, stored: bytes) -> bytes:
        if len(stored) < DICT_REF:
            raise CorruptObject(f"object {oid.hex()}: record too short to name its dictionary")
        ref = bytes(stored[:DICT_REF])
        try:
            zdict = self.dictionary_by_ref(ref)
        except ObjectMissing:
            raise ObjectMissing(f"object {oid.hex()}: its zstd dictionary {ref.hex()}… is missing from the store") from None
        except CorruptObject as exc:
            raise CorruptObject(f"object {oid.hex()}: its zstd dictionary cannot be read ({exc})") from None
        dctxs = getattr(self._local, "dict_dctx", None)
        if dctxs is None:
            dctxs = self._local.dict_dctx = {}
        dctx = dctxs.get(ref)
        if dctx is None:
            dctx = dctxs[ref] = zstandard.ZstdDecompressor(dict_data=zdict, format=zstandard.FORMAT_ZSTD1_MAGICLESS)
        try:
            return dctx.decompress(stored[DICT_REF:], max_output_size=loc.raw_len)
        except zstandard.ZstdError as exc:
            raise CorruptObject(f"object {oid.hex()}: zstd frame is damaged ({exc})") from None
        except MemoryError:
            raise CorruptObject(f"object {oid.hex()}: implausible length {loc.raw_len}") from None

    # -- dictionaries ---------------------------------------------------------------------------------

    def dictionary_ids(self) -> list[bytes]:
        """The zstd dictionaries this store holds (DICT records), sorted."""
        return sorted({did for idx in self._indexes for did in idx.ids_with_codec(Codec.DICT)})

    def dictionary_by_ref(self, ref: bytes) -> zstandard.ZstdCompressionDict:
        """The dictionary a ZSTD_DICT record names by `ref`, the first DICT_REF bytes of its id: one of the store's
        dictionaries. ObjectMissing when none has that prefix, CorruptObject when several have (or it is damaged)."""
        # (over a copy: another thread may add a dictionary meanwhile, and a dict that grows while it is iterated
        # raises; a clone or `restore --remote` of JPEG-only files decodes from four threads at once)
        found = [did for did in tuple(self._zdicts) if did[:DICT_REF] == ref]
        if not found:
            found = [did for did in self.dictionary_ids() if did[:DICT_REF] == ref]
        if not found:
            raise ObjectMissing(f"no zstd dictionary {ref.hex()}… in the store")
        if len(found) > 1:
            raise CorruptObject(f"zstd dictionary reference {ref.hex()}… is ambiguous ({len(found)} dictionaries)")
        return self.dictionary(found[0])

    def dictionary(self, did: bytes) -> zstandard.ZstdCompressionDict:
        """The zstd dictionary whose object id is `did` (read once, checked against its id); ObjectMissing or
        CorruptObject when it cannot be had."""
        zdict = self._zdicts.get(did)
        if zdict is None:
            try:
                zdict = zstandard.ZstdCompressionDict(self.get(did))
            except zstandard.ZstdError as exc:
                raise CorruptObject(f"object {did.hex()}: not a zstd dictionary ({exc})") from None
            self._zdicts[did] = zdict
        return zdict

    def use_dictionary(self, did: bytes, data: bytes | None = None) -> None:
        """Compress new files of its kind with dictionary `did` (its bytes `data` when it is not readable yet:
        staged in this commit, or in the parent process of a worker)."""
        if data is not None:
            if objects.hash_bytes(data) != did:
                raise CorruptObject(f"object {did.hex()}: content does not match its id")
            self._zdicts[did] = zstandard.ZstdCompressionDict(data)
        zdict = self.dictionary(did)
        kind = _KIND_OF_ID.get(zdict.dict_id())
        if kind is None:
            raise CorruptObject(f"object {did.hex()}: a zstd dictionary of no kind pvc writes with")
        zdict.precompute_compress(compression_params=_dict_params(kind))
        self._writing_dictionaries()[kind.name] = (did, zdict)

    def writing_dictionaries(self) -> list[tuple[bytes, bytes]]:
        """(id, bytes) of each dictionary new files are compressed with (for worker processes)."""
        return [(did, zdict.as_bytes()) for did, zdict in self._writing_dictionaries().values()]

    def _writing_dictionaries(self) -> dict[str, tuple[bytes, zstandard.ZstdCompressionDict]]:
        """Per kind, the dictionary to write with: the one set by `use_dictionary`, else the store's first (by id)
        of that kind."""
        if self._writing is None:
            self._writing = {}
            for did in self.dictionary_ids():
                try:
                    zdict = self.dictionary(did)
                except (ObjectMissing, CorruptObject):  # a damaged one is verify's business: write without it
                    continue
                kind = _KIND_OF_ID.get(zdict.dict_id())
                if kind is not None and kind.name not in self._writing:
                    zdict.precompute_compress(compression_params=_dict_params(kind))
                    self._writing[kind.name] = (did, zdict)
        return self._writing

    def train_dictionaries(self, files: list[tuple[Path, int]]) -> list[bytes]:
        """For each kind the store has no dictionary of, if `files` (path, size) hold at least DICT_MIN_FILES files
        of it: train one on samples of them (evenly spaced in the given order), stage it as a DICT record and write
        with it from now on. Return the ids of the dictionaries trained."""
        writing = self._writing_dictionaries()
        trained = []
        for kind in DICT_KINDS:
            if kind.name in writing:
                continue
            candidates = [(p, n) for p, n in files if kind.min_file <= n < min(kind.max_file, self.chunk_threshold)
                          and _KIND_OF_SUFFIX.get(_suffix(p)) is kind]
            if len(candidates) < DICT_MIN_FILES:
                continue
            step = len(candidates) / kind.samples
            picked = candidates if step <= 1 else [candidates[int(i * step)] for i in range(kind.samples)]
            samples = []
            for path, _ in picked:
                try:
                    with open(path, "rb") as f:
                        samples.append(f.read(kind.sample_bytes))
                except OSError:  # gone or unreadable: the hashing that follows says so, if it matters
                    continue
            try:  # fixed parameters: no search (~0.1-0.3 s), one thread
                data = zstandard.train_dictionary(kind.size, samples, k=2048, d=8, steps=1, threads=1,
                                                  dict_id=kind.dict_id).as_bytes()
            except zstandard.ZstdError:  # too few or too uniform samples: compress without one
                continue
            did = objects.hash_bytes(data)
            if any(other[:DICT_REF] == did[:DICT_REF] and other != did for other in self.dictionary_ids()):
                continue  # records name it by a prefix, which must stay unique in the store (~n²/2^33 for n dictionaries)
            if not self.has(did):
                self.put_record(did, Codec.DICT, len(data), data)
            self.use_dictionary(did, data)
            trained.append(did)
        return trained

    def _dict_compress(self, data: bytes, kind: DictKind) -> tuple[int, bytes] | None:
        """(ZSTD_DICT, stored bytes) of a file of `kind` when a dictionary of it is in use and it pays; else None."""
        chosen = self._writing_dictionaries().get(kind.name)
        if chosen is None:
            return None
        did, zdict = chosen
        cctxs = getattr(self._local, "dict_cctx", None)
        if cctxs is None:
            cctxs = self._local.dict_cctx = {}
        cctx = cctxs.get(did)
        if cctx is None:
            cctx = cctxs[did] = zstandard.ZstdCompressor(dict_data=zdict, compression_params=_dict_params(kind))
        stored = did[:DICT_REF] + cctx.compress(data)
        return (Codec.ZSTD_DICT, stored) if len(stored) < len(data) else None

    def _dctx(self) -> zstandard.ZstdDecompressor:
        dctx = getattr(self._local, "dctx", None)
        if dctx is None:
            dctx = self._local.dctx = zstandard.ZstdDecompressor()
        return dctx

    # -- writing ------------------------------------------------------------------------------------

    def put(self, data: bytes, *, compress: bool | None = None, kind: DictKind | None = None,
            quick: bool = False) -> bytes:
        """Store `data` (if new) and return its id. `compress=None` tries zstd on a sample; `kind`: a file of that
        dictionary kind, compressed with the store's dictionary of it when there is one and it pays; `quick` (with
        `compress=True`): at FILE_LEVEL instead of STRUCTURE_LEVEL (the id is the same: it names the bytes)."""
        oid = objects.hash_bytes(data)
        if not self.has(oid):
            if kind is not None and (coded := self._dict_compress(data, kind)) is not None:
                self.put_record(oid, coded[0], len(data), coded[1])
                return oid
            codec, stored = Codec.RAW, data
            if compress is not False and len(data) >= 64 and (compress or self._pays(data)):
                packed = (self._structure_cctx() if compress and not quick else self._cctx()).compress(data)
                if len(packed) < len(data):
                    codec, stored = Codec.ZSTD, packed
            self.put_record(oid, codec, len(data), stored)
        return oid

    def put_file(self, path: Path, size: int, on_data: Callable[[bytes], None] | None = None) -> bytes:
        """Store a file's bytes and return their id; files of `chunk_threshold` bytes or more are chunked.

        `on_data` receives the whole content of small files (so callers can parse them without a second read).
        """
        suffix = _suffix(path)
        compress = None if suffix not in INCOMPRESSIBLE_SUFFIXES else False
        try:
            with open(path, "rb") as f:
                if size < self.chunk_threshold:
                    data = f.read()
                    _check_size(path, size, len(data))
                    if on_data is not None:
                        on_data(data)
                    kind = _KIND_OF_SUFFIX.get(suffix)
                    if kind is not None and not kind.min_file <= len(data) < kind.max_file:
                        kind = None
                    return self.put(data, compress=compress, kind=kind)
                return self._put_chunked(path, f, size, compress)
        except PermissionError:
            raise BadInput(path, "permission denied") from None
        except IsADirectoryError:
            raise BadInput(path, "is a directory") from None

    def _put_chunked(self, path: Path, f: BinaryIO, size: int, compress: bool | None) -> bytes:
        from pvc.store.chunking import iter_chunks

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
            self.put_record(oid, Codec.CHUNKED, total, msgpack.packb(chunks, use_bin_type=True))
        return oid

    def put_record(self, oid: bytes, codec: int, raw_len: int, stored: bytes) -> None:
        """Stage one record as it is (a transfer copies records between stores without re-encoding them)."""
        with self._lock:
            if oid in self._pending:
                return
            self._writer.append(oid, codec, raw_len, stored)
            self._pending.add(oid)
            if codec in (Codec.ZSTD_DICT, Codec.DICT):
                self.dictionary_records = True

    def _pays(self, data: bytes) -> bool:
        sample = data[:_SAMPLE]
        return len(self._cctx().compress(sample)) < 0.9 * len(sample)

    def _structure_cctx(self) -> zstandard.ZstdCompressor:
        """For structured objects (`compress=True`): few, built once, read often; a higher level pays."""
        cctx = getattr(self._local, "structure_cctx", None)
        if cctx is None:
            cctx = self._local.structure_cctx = zstandard.ZstdCompressor(level=STRUCTURE_LEVEL)
        return cctx

    def _cctx(self) -> zstandard.ZstdCompressor:
        cctx = getattr(self._local, "cctx", None)
        if cctx is None:
            cctx = self._local.cctx = zstandard.ZstdCompressor(level=FILE_LEVEL)
        return cctx

    def seal_staged(self) -> Published:
        """Seal what is staged and hand it over without publishing it (a worker process of a commit gives its
        packs to the commit's store this way); from here the caller owns the files."""
        with self._lock:
            sealed = self._writer.seal_all()
            self._pending.clear()
            return sealed

    def stage_sealed(self, sealed: Published) -> None:
        """Take packs sealed elsewhere (by `seal_staged`) as staged here: `flush` publishes them with the rest,
        `abort` deletes them."""
        with self._lock:
            self._writer.adopt(sealed)
            for _, _, records in sealed:
                for oid, _, _, _, codec in records:
                    self._pending.add(oid)
                    if codec in (Codec.ZSTD_DICT, Codec.DICT):
                        self.dictionary_records = True

    def stage_pack(self, pack_id: bytes, data: bytes | memoryview, records: list[tuple[bytes, int, int, int, int]]) -> None:
        """Stage a whole pack (its bytes as another store holds them, checked by the caller against `pack_id`)
        with an index of `records` (id, offset, stored length, raw length, codec): written to a temp file here and
        fsynced in the store's syncing thread (`_sync_later`); `flush` waits for that fsync, then publishes it;
        `abort` deletes it."""
        import tempfile

        from pvc.store.uncached import write_uncached

        fd, name = tempfile.mkstemp(dir=self.tmp_dir, prefix="pack-", suffix=".tmp")
        try:
            os.fchmod(fd, 0o644)  # like the packs PackWriter writes
            write_uncached(fd, data)  # a copy kept cold: around the page cache where the file system allows
        except BaseException:
            os.close(fd)
            os.unlink(name)
            raise
        behind = self._sync_later(fd)  # (before it is staged: a flush that publishes it has its fsync to wait for)
        self.stage_sealed([(Path(name), pack_id, records)])  # (from here `abort` deletes it)
        if behind is not None:
            behind.exception()  # the backlog is full: wait for its oldest (its failure is raised by `_synced`)

    def _sync_later(self, fd: int) -> Future | None:
        """fsync and close `fd` in the store's one syncing thread, so that the thread that wrote it goes on with its
        next pack while the disk takes this one; at most _SYNC_BACKLOG wait (each holds a descriptor only: the
        bytes are written): returns the fsync to wait for before going on, if there are more. `flush` and `abort`
        wait for them all (`_synced`). Where no thread can be started, fsynced here.

        Why not here: each fsync waits for a journal commit and the device's flush. Four downloading threads each
        waiting for their own (20k pvc.sample clone, 55 packs) took the clone 3.88 s against 3.74 s with them left
        to one thread (4 runs each, alternated), and 4.34 s against 4.16 s with another process writing to the
        same disk (3 runs each). Why not all at the end: a clone that left them to its end waited ~0.4 s more
        there (20k, JPEG-only) than when the disk works alongside the downloads."""
        from concurrent.futures import ThreadPoolExecutor

        with self._sync_lock:
            try:
                if self._syncer is None:
                    self._syncer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pvc-fsync")
                self._syncs.append(self._syncer.submit(_fsync_and_close, fd))
            except RuntimeError:  # no new thread (the interpreter is shutting down)
                _fsync_and_close(fd)
                return None
            return self._syncs[-_SYNC_BACKLOG - 1] if len(self._syncs) > _SYNC_BACKLOG else None

    def _synced(self) -> None:
        """Wait for every fsync `_sync_later` was given, and stop its thread; the first failure raises."""
        with self._sync_lock:
            syncs, self._syncs = list(self._syncs), deque()
            syncer, self._syncer = self._syncer, None
        if syncer is not None:
            syncer.shutdown(wait=True)
        for failed in [f.exception() for f in syncs]:
            if failed is not None:
                raise failed

    @property
    def staged(self) -> int:
        """Objects staged since the last flush."""
        return len(self._pending)

    def flush(self) -> None:
        """Make every staged object durable and visible: packs first, then the index that names them."""
        with self._lock:
            try:
                self._synced()  # the packs stage_pack wrote are on disk before anything names them
                sealed = self._writer.seal_all()
                if sealed:
                    self._publish(sealed)
            finally:
                self._writer.abort()  # whatever was not published (a failure) goes
                self._pending.clear()

    def abort(self) -> None:
        """Forget every staged object; the visible store is as it was."""
        with self._lock:
            try:
                self._synced()  # (their files are deleted below all the same)
            except OSError:
                pass
            finally:
                self._writer.abort()
                self._pending.clear()


_GAP = 64 << 10  # read through gaps up to this size rather than paying for another request
_SYNC_BACKLOG = 8  # packs written by stage_pack whose fsync may wait at once (each holds a descriptor open)


def _fsync_and_close(fd: int) -> None:
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def held_in(indexes: list[PackIndex], rest: set[bytes]) -> set[bytes]:
    """The ids of `rest` that `indexes` have (`rest` is emptied of them)."""
    found: set[bytes] = set()
    for idx in indexes:
        if not rest:
            break
        hits = idx.ids_among(rest)
        found |= hits
        rest -= hits
    return found


def located_in(indexes: list[PackIndex], rest: set[bytes]) -> dict[bytes, Location]:
    """{id: location} of the ids of `rest` that `indexes` have, the first index that has one naming it (as `locate`
    searches them); `rest` is emptied of them."""
    found: dict[bytes, Location] = {}
    for idx in indexes:
        if not rest:
            break
        hits = idx.locate_among(rest)
        found.update(hits)
        rest.difference_update(hits)
    return found


def _coalesce(found: list[tuple[bytes, Location]], span: int) -> list[tuple[bytes, list[tuple[bytes, Location]]]]:
    """Group records by pack into runs that one ranged read of at most `span` bytes can cover."""
    groups: list[tuple[bytes, list[tuple[bytes, Location]]]] = []
    found.sort(key=lambda item: (item[1].pack, item[1].offset))
    for oid, loc in found:
        if groups and groups[-1][0] == loc.pack:
            members = groups[-1][1]
            first, last = members[0][1], members[-1][1]
            end = last.offset + last.stored_len
            if loc.offset - RECORD.size - end <= _GAP and loc.offset + loc.stored_len - first.offset <= span:
                members.append((oid, loc))
                continue
        groups.append((loc.pack, [(oid, loc)]))
    return groups


def _bounded(pool: ThreadPoolExecutor, fn, items: list, ahead: int) -> Iterator:
    """The results of `fn` over `items`, in their order, with at most `ahead` tasks pending (bounded memory)."""
    pending: deque = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= ahead:
            yield from pending.popleft().result()
    while pending:
        yield from pending.popleft().result()


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else os.path.splitext(name)[1]


def _check_size(path: Path, expected: int, got: int) -> None:
    if expected != got:
        raise BadInput(path, f"changed while being read ({expected} bytes expected, {got} read)")
