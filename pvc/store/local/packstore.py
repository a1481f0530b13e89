"""The local store: pack and index files under `.pvc/packs/`, read with pread, written through `tmp/`.

A store may also read other stores' packs, read-only ("alternates": the `packs/` folders of the store a project was
restored from, pvc/store/links.py): their indexes are searched after its own, and new objects always go to its own
packs. Everything that lists or rewrites packs (verify's scan, gc's repack, the index rebuild, `iter_ids`,
`indexes`) sees only its own.

Besides the object protocol (pvc/store/backend.py) it answers what only a store that owns its files can: check
every pack front to back (`check_packs`, for verify), rebuild the index from the packs (`rebuild_index`), and
drop what no version needs (`plan_repack` / `repack`, for gc). Core code never opens a pack or an index itself.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from pvc.errors import CorruptObject, ObjectMissing, TooManyFiles
from pvc.store import openfiles
from pvc.store.atomic import fsync_dir
from pvc.store.local.packindex import PackIndex, write_index
from pvc.store.local.packs import Codec, Location
from pvc.store.packed import INCOMPRESSIBLE_SUFFIXES, PackedStore, Published, held_in, located_in

if TYPE_CHECKING:  # the maintenance modules are imported where they are used: reading needs none of them
    import random

    from pvc.store.local.check import PackScan
    from pvc.store.local.repack import RepackPlan

__all__ = ["PackStore", "INCOMPRESSIBLE_SUFFIXES", "IndexRebuild"]

_MAX_INDEX_FILES = 8


def _room(soft_limit: int | None) -> int:
    """How many pack files a store keeps open at once under a soft limit of `soft_limit` open files: half of them
    (the rest for what else the process opens: the files a restore writes, indexes, sockets)."""
    return 4096 if soft_limit is None else max(16, soft_limit // 2)


class IndexRebuild:
    """What `rebuild_index` did."""

    def __init__(self, packs: int, objects: int, damaged: int, replaced: int) -> None:
        self.packs, self.objects, self.damaged, self.replaced = packs, objects, damaged, replaced


class PackStore(PackedStore):
    """Packs and their indexes under one directory; writes are staged until `flush`."""

    span = 1 << 20

    def __init__(self, root: Path, *, chunk_threshold: int = 8 << 20, pack_size: int = 16 << 20,
                 strict_indexes: bool = True, alternates: tuple[Path, ...] = ()) -> None:
        """With `strict_indexes` False a damaged index file is left out (and listed in `damaged_indexes`)
        instead of stopping everything: `verify` and the index rebuild need to open a damaged store.
        `alternates`: other stores' `packs/` folders to read from when an object is not here."""
        super().__init__(root / "tmp", chunk_threshold=chunk_threshold, pack_size=pack_size)
        self.root = root
        self.packs_dir = root / "packs"
        self.alternates = tuple(alternates)
        self._fds: dict[bytes, int] = {}  # pack -> its open file, the least recently read first
        self._pinned: set[bytes] = set()  # packs whose file stays open until unpinned (pin_packs)
        self._busy: dict[int, int] = {}  # an open file -> the reads in progress on it
        self._doomed: set[int] = set()  # files let go for room while a read was on them: closed when it ends
        self._room = _room(openfiles.limit())
        self._raised = False
        self._strict = strict_indexes
        self.damaged_indexes: list[tuple[Path, str]] = []
        self._indexes = self._open_indexes()
        self._alt_indexes = self._open_alternate_indexes()

    # -- the medium ---------------------------------------------------------------------------------

    def _read_at(self, pack: bytes, offset: int, length: int) -> bytes:
        fd = self._take(pack)
        try:
            return os.pread(fd, length, offset)
        finally:
            self._give(fd)

    def _pack_gone(self) -> bool:
        """`gc` deletes a pack once a new index names the new home of its live objects, under a reader that
        does not hold the lock: read the indexes again, once (an alternate's gc does the same under us)."""
        with self._lock:
            self._indexes = self._open_indexes()  # the old ones stay open for threads still searching them
            self._alt_indexes = self._open_alternate_indexes()
        return True

    # -- reading: own indexes first, then the alternates' ----------------------------------------------

    def has(self, oid: bytes) -> bool:
        if super().has(oid):
            return True
        for idx in self._alt_indexes:
            if oid in idx:
                return True
        return False

    def locate(self, oid: bytes) -> Location | None:
        loc = super().locate(oid)
        if loc is None:
            for idx in self._alt_indexes:
                loc = idx.lookup(oid)
                if loc is not None:
                    break
        return loc

    def held(self, oids: Iterable[bytes]) -> set[bytes]:
        rest = set(oids)
        found = super().held(rest)
        return found | held_in(self._alt_indexes, rest - found)

    def locate_many(self, oids: Iterable[bytes]) -> dict[bytes, Location]:
        rest = set(oids)
        found = super().locate_many(rest)
        found.update(located_in(self._alt_indexes, rest - found.keys()))
        return found

    def _require(self, oid: bytes) -> Location:
        loc = self.locate(oid)
        if loc is None:
            gone = [str(d) for d in self.alternates if not d.is_dir()]
            where = f" (the store it shares objects with is gone: {', '.join(gone)})" if gone else ""
            raise ObjectMissing(f"object {oid.hex()} is missing from the store{where}")
        return loc

    def dictionary_ids(self, *, alternates: bool = True) -> list[bytes]:
        """The zstd dictionaries this store holds, and (with `alternates`) those of the stores it reads from."""
        own = super().dictionary_ids()
        if not alternates:
            return own
        return sorted({*own, *(did for idx in self._alt_indexes for did in idx.ids_with_codec(Codec.DICT))})

    def _publish(self, sealed: Published) -> None:
        renamed = []
        try:
            for tmp, pack_id, _ in sealed:
                os.replace(tmp, self.pack_path(pack_id))
                renamed.append(pack_id)
            fsync_dir(self.packs_dir)
            write_index(self.packs_dir, ((oid, pack_id, off, slen, rlen, codec)
                                         for _, pack_id, records in sealed for oid, off, slen, rlen, codec in records))
        except BaseException:  # e.g. ENOSPC: the packs just renamed are named by nothing; take them back
            for pack_id in renamed:
                self.pack_path(pack_id).unlink(missing_ok=True)
            raise
        self._reload_indexes()
        if len(self._indexes) > _MAX_INDEX_FILES:
            self._consolidate()

    # -- pack files: one open file per pack read, as many as the open-files limit allows ----------------

    def _take(self, pack: bytes) -> int:
        """The open file of `pack` for one read, which `_give` ends: a file is not closed while a read is on it."""
        with self._lock:
            fd = self._fds.pop(pack, None)
            if fd is None:
                fd = self._open_pack(pack)
            self._fds[pack] = fd  # (the most recently read last)
            self._busy[fd] = self._busy.get(fd, 0) + 1
            return fd

    def _give(self, fd: int) -> None:
        with self._lock:
            left = self._busy[fd] - 1
            if left:
                self._busy[fd] = left
                return
            del self._busy[fd]
            if fd in self._doomed:
                self._doomed.discard(fd)
                os.close(fd)

    def _fd(self, pack: bytes, *, pin: bool = False) -> int:
        """The open file of `pack`; with `pin`, kept open until unpinned or the store closes. Pins take at most the
        room this store keeps (`_room`: half the limit, the rest for the files the pinning command then opens);
        TooManyFiles past that."""
        with self._lock:
            fd = self._fds.get(pack)
            if fd is None:
                if pin and len(self._pinned) >= self._room:
                    self._make_room(True)  # (the limit raised, once)
                    if len(self._pinned) >= self._room:
                        raise self._too_many(True)
                fd = self._fds[pack] = self._open_pack(pack, pinning=pin)
            if pin:
                self._pinned.add(pack)
            return fd

    def _open_pack(self, pack: bytes, *, pinning: bool = False) -> int:
        """Open `pack` (the caller holds the lock), first making room (`_make_room`) where this store has as many
        open as it keeps (`_room`), or where the process has reached its limit."""
        if len(self._fds) >= self._room:
            self._make_room(pinning)
        name = f"{pack.hex()}.pack"
        for attempt in (0, 1):
            try:
                for folder in (self.packs_dir, *self.alternates):
                    try:
                        return os.open(folder / name, os.O_RDONLY)
                    except FileNotFoundError:
                        continue
                raise ObjectMissing(f"pack {pack.hex()} is missing from the store")
            except OSError as exc:  # the process's other files took the room: make some, then try once more
                if exc.errno not in (errno.EMFILE, errno.ENFILE):
                    raise
                if attempt:
                    raise self._too_many(pinning, system=exc.errno == errno.ENFILE) from None
                self._make_room(pinning, force=True)
        raise AssertionError("unreachable")

    def _make_room(self, pinning: bool, force: bool = False) -> None:
        """The soft limit raised once; then a quarter of the files no one pinned closed, the least recently read
        first (pinned ones are only ever closed with the store: opening one more may then still fail, and says so)."""
        if not self._raised:
            self._raised = True
            self._room = _room(openfiles.raise_limit())
            if len(self._fds) < self._room and not force:
                return
        loose = [pack for pack in self._fds if pack not in self._pinned]
        for fd in self._let_go(loose[: max(1, len(self._fds) // 4)]):
            os.close(fd)

    def _let_go(self, packs: list[bytes]) -> list[int]:
        """Take the files of `packs` out of the open ones (the caller holds the lock); return those to close now. A
        file a read is on is closed when that read ends (`_give`)."""
        idle = []
        for pack in packs:
            fd = self._fds.pop(pack)
            if self._busy.get(fd):
                self._doomed.add(fd)
            else:
                idle.append(fd)
        return idle

    def _idle(self) -> list[bytes]:
        """The packs whose file no read is on (the caller holds the lock)."""
        return [pack for pack, fd in self._fds.items() if not self._busy.get(fd)]

    def _too_many(self, pinning: bool, *, system: bool = False) -> Exception:
        if system:
            return TooManyFiles(f"{self.packs_dir}: the system's table of open files is full (ENFILE)")
        kept = f", {len(self._pinned)} of them kept open while they are read" if pinning or self._pinned else ""
        return TooManyFiles(
            f"{self.packs_dir}: too many open files to open one more pack ({len(self._fds)} of this store's packs "
            f"open{kept}; the process may open {openfiles.limit()} files): raise the limit (`ulimit -n`)")

    def pack_path(self, pack: bytes) -> Path:
        return self.packs_dir / f"{pack.hex()}.pack"

    def pack_size_of(self, pack: bytes) -> int:
        """The size of a pack file (its records and its magic), through the descriptor reads use."""
        with self.pack_file(pack) as fd:
            return os.fstat(fd).st_size

    def read_pack(self, pack: bytes) -> bytes:
        """The whole pack file, through the descriptor `pin_packs` (or an earlier read) opened; ObjectMissing if it
        is gone."""
        with self.pack_file(pack) as fd:
            size = os.fstat(fd).st_size
            data = os.pread(fd, size, 0)
        if len(data) != size:
            raise CorruptObject(f"pack {pack.hex()}: shorter than its size while being read")
        return data

    # -- indexes ------------------------------------------------------------------------------------

    def _open_indexes(self) -> list[PackIndex]:
        """The index files, the largest first: a lookup of an object of an earlier version (what a commit asks of
        every file it scans) then finds it in the first index it tries, not after a miss in each newer one."""
        for _ in range(5):  # a concurrent consolidation may delete a file between listing and opening
            try:
                found = self._open_index_files()
                break
            except FileNotFoundError:
                continue
        else:
            found = self._open_index_files()
        return sorted(found, key=lambda idx: -idx.count)

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

    def _open_alternate_indexes(self) -> list[PackIndex]:
        """The alternates' index files, in the order the alternates are listed; a folder that is gone gives
        none (its objects then read as missing, and the message says which folder is gone)."""
        opened: list[PackIndex] = []
        for folder in self.alternates:
            for _ in range(5):  # the other store's gc may replace an index between listing and opening
                try:
                    found = [PackIndex(p) for p in sorted(folder.glob("*.idx"))]
                    break
                except FileNotFoundError:
                    continue
            else:
                found = []
            opened += found
        return opened

    def _reload_indexes(self) -> None:
        for idx in self._indexes:
            idx.close()
        self._indexes = self._open_indexes()

    def _consolidate(self) -> None:
        """Merge all index files into one (the caller holds the repository lock)."""
        old = list(self._indexes)
        entries = [(oid, loc.pack, loc.offset, loc.stored_len, loc.raw_len, loc.codec) for idx in old for oid, loc in idx]
        merged = write_index(self.packs_dir, entries)
        for idx in old:
            idx.close()
            if idx.path != merged:
                idx.path.unlink(missing_ok=True)
        self._reload_indexes()

    def reload(self) -> None:
        """See the index files on disk now (after gc or an index rebuild by this process)."""
        with self._lock:
            self._reload_indexes()
            for idx in self._alt_indexes:
                idx.close()
            self._alt_indexes = self._open_alternate_indexes()

    # -- maintenance (the caller holds the repository lock) -----------------------------------------

    def pin_packs(self) -> list[bytes]:
        """Open every pack on disk now and keep it open, so a later gc cannot take it away; return their ids.
        TooManyFiles (and none of them kept) where there are more than this process may keep open."""
        pinned = []
        try:
            for pack in self.pack_ids():
                try:
                    self._fd(pack, pin=True)
                except ObjectMissing:
                    continue  # gone since the listing
                pinned.append(pack)
        except BaseException:  # (TooManyFiles, or a pack that cannot be read): no pin is left behind
            self.unpin_packs()
            raise
        return pinned

    def unpin_packs(self) -> None:
        """Let go of the pins: the files are closed (reads open them again)."""
        with self._lock:
            idle = self._let_go(self._idle())
            self._pinned.clear()
        for fd in idle:
            os.close(fd)

    def check_packs(self, packs: list[bytes], *, sample: float = 1.0, rng: random.Random | None = None) -> PackScan:
        """Read each of `packs` (pinned) once: records re-hashed (or a `sample` of them), names checked,
        every index entry matched with its record; also the damaged and misnamed index files."""
        import random

        from pvc.store.local.check import check_packs

        return check_packs(self, packs, sample, rng or random.Random())

    def rebuild_index(self) -> IndexRebuild:
        """Replace every index file by one rebuilt from the packs: every record names its object. Records whose
        content is damaged are left out; the new index is written before the old ones are removed."""
        from pvc.store.local.packcheck import check_pack

        paths = sorted(self.packs_dir.glob("*.pack"))
        dictionaries = _dictionaries_in(paths)
        entries, damaged, packs = [], 0, 0
        for path in paths:
            check = check_pack(path, dictionary=dictionaries)
            if check.pack_id is None:
                continue
            packs += 1
            damaged += len(check.bad)
            entries += [(r.oid, check.pack_id, r.offset, r.stored_len, r.raw_len, r.codec)
                        for r in check.records if r.offset not in check.bad]
        old = sorted(self.packs_dir.glob("*.idx"))
        new = write_index(self.packs_dir, entries)
        for path in old:
            if path != new:
                path.unlink(missing_ok=True)
        fsync_dir(self.packs_dir)
        self.reload()
        return IndexRebuild(packs, len(set(entries)), damaged, sum(1 for p in old if p != new))

    def plan_repack(self, live: set[bytes], *, keep_newer_than: float) -> RepackPlan:
        """Which packs hold nothing live (deleted), which are mostly dead (rewritten), which are too young."""
        from pvc.store.local.repack import plan_repack

        return plan_repack(self, live, keep_newer_than=keep_newer_than)

    def repack(self, plan: RepackPlan) -> int:
        """Carry out `plan`; return how many new packs were written."""
        from pvc.store.local.repack import repack

        return repack(self, plan)

    def close_pack(self, pack: bytes) -> None:
        """Close this store's file of `pack` (before it is deleted)."""
        with self._lock:
            idle = self._let_go([pack] if pack in self._fds else [])
            self._pinned.discard(pack)
        for fd in idle:
            os.close(fd)

    @contextmanager
    def pack_file(self, pack: bytes) -> Iterator[int]:
        """This store's open file of `pack` (opened now if need be; ObjectMissing if it is gone), not closed for room
        while the block runs."""
        fd = self._take(pack)
        try:
            yield fd
        finally:
            self._give(fd)

    def pack_ids(self) -> list[bytes]:
        """The packs on disk now (their files named like packs), without opening them."""
        found = []
        for path in sorted(self.packs_dir.glob("*.pack")):
            try:
                found.append(bytes.fromhex(path.stem))
            except ValueError:
                continue
        return found

    def close_files(self) -> None:
        """Close the index maps and pack files, leaving what is staged alone."""
        for idx in self._indexes:
            idx.close()
        self._close_packs()

    def close(self) -> None:
        self.abort()
        for idx in self._indexes + self._alt_indexes:
            idx.close()
        self._close_packs()

    def _close_packs(self) -> None:
        """Close every pack file; one a read is on (another thread's) when that read ends."""
        with self._lock:
            idle = self._let_go(list(self._fds))
            self._pinned.clear()
        for fd in idle:
            os.close(fd)

    def keep_open_at_most(self, packs: int) -> None:
        """From now on keep at most `packs` pack files open (at least 4), and close those no read is on and no pin
        holds: for a caller about to keep many files of its own open (a restore's large files)."""
        with self._lock:
            self._room, self._raised = max(4, packs), True
            idle = self._let_go([pack for pack in self._idle() if pack not in self._pinned])
        for fd in idle:
            os.close(fd)


def _dictionaries_in(paths: list[Path]):
    """For an index rebuild: the zstd dictionaries (DICT records whose content matches their id) of the packs at
    `paths`, as the `dictionary` lookup `check_pack` takes."""
    import mmap

    import zstandard

    from pvc.store.local.packs import parse_records
    from pvc.store.objects import hash_bytes

    found: dict[bytes, bytes] = {}
    for path in paths:
        try:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if not size:
                    continue
                with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                    for rec in parse_records(mm, size)[0]:
                        if rec.codec == Codec.DICT:
                            data = bytes(mm[rec.offset : rec.end])
                            if hash_bytes(data) == rec.oid:
                                found[rec.oid] = data
        except OSError:
            continue

    def dictionary(ref: bytes) -> zstandard.ZstdCompressionDict:
        matching = [did for did in found if did[: len(ref)] == ref]
        if len(matching) != 1:
            raise (ObjectMissing if not matching else CorruptObject)(f"{len(matching)} zstd dictionaries {ref.hex()}… in the packs")
        return zstandard.ZstdCompressionDict(found[matching[0]])

    return dictionary
