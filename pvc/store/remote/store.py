"""A remote store: the same packs and index files as `.pvc/packs/`, on a medium (S3 or a folder), plus one
create-only record per version.

Layout under the remote's prefix (docs/format.md, "Remotes"):

    pvc-remote.json              {"format": 1}: marks the prefix as a pvc remote (written by the first push)
    packs/<id>.pack              packs, byte for byte as a local store writes them
    packs/<id>.idx               index files, each naming up to _PACKS_PER_INDEX (16) packs a push uploaded
    versions/<number>.json       one version record each, {"format": 1, "checksum", "record"}; number zero-padded

Nothing is ever overwritten: packs, indexes and records are created with `If-None-Match: *` (create-only). A
push publishes packs, an index naming them once 16 of them are up (and one for the rest at the end), and only when
every object of a version is indexed, that version's record: so a reader never meets a version whose objects are
not there, and an interrupted push leaves at worst packs no index names (invisible), which the next push does not
send again when it builds the same pack.

What the remote holds is known from its index files: one listing, and a GET for each index file this machine
has not seen before (they are immutable, so they are cached locally by name, checked against their name).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import blake3

from pvc.errors import CorruptObject, ObjectMissing, RemoteError
from pvc.store.atomic import atomic_write
from pvc.store.local.packindex import PackIndex, merge_indexes, write_index
from pvc.store.packed import PackedStore, Published
from pvc.store.refs import VersionRecord
from pvc.store.remote.medium import Medium

__all__ = ["RemoteStore", "REMOTE_FORMAT", "TransferStats"]

REMOTE_FORMAT = 1
MARKER = "pvc-remote.json"
_MERGE_AFTER = 8  # cached index files beyond a merged one before they are merged into a new one
_UPLOADS = 4  # packs in flight at once
# packs an uploaded index file names (the last one of a push fewer): a reader fetches every index file of the remote
# before it reads anything, and a 20k clone took 0.22 s over 93 of them, one a pack (moto on loopback)
_PACKS_PER_INDEX = 16
_AHEAD_BYTES = 64 << 20  # prefetched records held at most (a dataset's pages: ~10 MB per 10,000 items)


def _large_buffers_to_the_system() -> None:
    """Have glibc's malloc hand every buffer of 1 MiB or more back to the system when it is freed, and keep up to
    4 MiB of freed smaller ones at the top of each heap for reuse. By default its mmap threshold grows to the
    largest buffer freed so far, after which the 16 MiB packs a transfer holds come from the heap and stay counted
    in the process's memory after use (peak RSS of a push varied by ~50 MB from run to run). Fixing it leaves the
    trim threshold at 128 KiB, and the heaps the downloading threads' chunk buffers come from were given back and
    faulted in again: a 20k clone took ~145,000 page faults that way, ~94,000 with 4 MiB kept (a push's peak RSS
    the same, 122-123 MiB). No effect, and no error, where the C library is not glibc."""
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        libc.mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD (fixing it also stops the dynamic adjustment)
        libc.mallopt(-1, 4 << 20)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


class TransferStats:
    """Bytes and requests a store moved, for the reports of push, pull, clone and restore."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.bytes_sent = self.bytes_received = 0
        self.packs_sent = self.packs_present = 0
        self.requests = 0

    def add(self, *, sent: int = 0, received: int = 0, requests: int = 1) -> None:
        with self._lock:
            self.bytes_sent += sent
            self.bytes_received += received
            self.requests += requests


class RemoteStore(PackedStore):
    """Objects on a remote, read with ranged GETs; writes staged in local temp packs and uploaded as they fill."""

    def __init__(self, medium: Medium, cache_dir: Path, *, chunk_threshold: int = 8 << 20,
                 pack_size: int = 16 << 20) -> None:
        self.cache_dir = cache_dir
        self.idx_dir = cache_dir / "idx"
        for folder in (self.idx_dir, cache_dir / "tmp", cache_dir / "versions"):
            folder.mkdir(parents=True, exist_ok=True)
        super().__init__(cache_dir / "tmp", chunk_threshold=chunk_threshold, pack_size=pack_size)
        _large_buffers_to_the_system()
        self.medium = medium
        self.url = medium.url
        self.stats = TransferStats()
        self._uploads: list[Future] = []
        self._pool: ThreadPoolExecutor | None = None
        self._gate = threading.BoundedSemaphore(_UPLOADS)
        self._unindexed: list[tuple[bytes, list]] = []  # packs uploaded that no index uploaded names yet
        self._index_lock = threading.Lock()
        self.packs: dict[str, int] = {}
        self._ahead: dict[bytes, tuple] = {}  # prefetched records not read yet: id -> (location, stored bytes)
        self._ahead_bytes = 0
        self._ahead_lock = threading.Lock()
        self.refresh()

    # -- what the remote holds ----------------------------------------------------------------------

    def refresh(self) -> None:
        """List the remote's packs and index files; fetch (and check) the index files not seen before."""
        listing = self.medium.list("packs")
        self.stats.add()
        self.packs = {name: size for name, size in listing.items() if name.endswith(".pack")}
        names = sorted(name for name in listing if name.endswith(".idx"))
        missing = [n for n in names if not (self.idx_dir / n).exists() and not self._merged_covers(n)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(self._fetch_index, missing))
        self._open(names)

    def pack_size_of(self, pack: bytes) -> int:
        """The size of a pack on the remote, as listed (0 if it is not listed)."""
        return self.packs.get(f"{pack.hex()}.pack", 0)

    def read_pack(self, pack: bytes) -> memoryview:
        """A whole pack, checked against its name (its blake3): CorruptObject if it does not match. A view of this
        thread's download buffer (`medium.whole_buffer`): valid until the thread reads its next pack."""
        name = f"packs/{pack.hex()}.pack"
        data = self.medium.get_whole(name, self.pack_size_of(pack))
        self.stats.add(received=len(data))
        if blake3.blake3(data, max_threads=blake3.blake3.AUTO).digest() != pack:
            raise CorruptObject(f"{self.url}/{name}: does not hash to its name (damaged on the remote); nothing of "
                                "it was stored")
        return data

    def _fetch_index(self, name: str) -> None:
        data = self.medium.get(f"packs/{name}")
        self.stats.add(received=len(data))
        if blake3.blake3(data).hexdigest() != name[: -len(".idx")]:
            raise CorruptObject(f"{self.url}/packs/{name}: index file does not match its name (damaged on the remote)")
        atomic_write(self.idx_dir / name, data)

    def _merged_covers(self, name: str) -> bool:
        return name in self._merged_names()

    def _merged_names(self) -> set[str]:
        path = self.idx_dir / "merged.json"
        try:
            doc = json.loads(path.read_text())
            return set(doc["covers"]) if (self.idx_dir / doc["index"]).exists() else set()
        except (OSError, ValueError, KeyError, TypeError):
            return set()

    def _open(self, names: list[str]) -> None:
        """Open the cached indexes of `names` (the remote's index files), merging them into one local index file
        once there are many, so that a lookup searches a few files whatever the number of pushes."""
        for idx in self._indexes:
            idx.close()
        merged = self._merged_names()
        if merged - set(names):  # an index it covers is gone from the remote: it names objects no longer there
            (self.idx_dir / "merged.json").unlink()
            for name in names:
                if not (self.idx_dir / name).exists():
                    self._fetch_index(name)
            merged = set()
        covered = merged & set(names)
        rest = [n for n in names if n not in covered]
        if len(rest) > _MERGE_AFTER:
            self._merge(sorted(covered | set(rest)))
            covered, rest = set(names), []
        opened = []
        if covered:
            opened.append(PackIndex(self.idx_dir / json.loads((self.idx_dir / "merged.json").read_text())["index"]))
        for name in rest:
            try:
                opened.append(PackIndex(self.idx_dir / name))
            except CorruptObject:
                (self.idx_dir / name).unlink(missing_ok=True)  # the cached copy went bad: fetch it again
                self._fetch_index(name)
                opened.append(PackIndex(self.idx_dir / name))
        self._indexes = opened

    def _merge(self, names: list[str]) -> None:
        old = self._merged_names()
        previous = json.loads((self.idx_dir / "merged.json").read_text())["index"] if old else None
        sources = [previous] if previous else []
        sources += [n for n in names if n not in old]
        merged = merge_indexes(self.idx_dir, [self.idx_dir / source for source in sources])
        atomic_write(self.idx_dir / "merged.json", json.dumps({"index": merged.name, "covers": names}).encode())
        for source in sources:
            if source != merged.name:
                (self.idx_dir / source).unlink(missing_ok=True)

    def prefetch(self, oids: list[bytes]) -> None:
        """Read the records of `oids` now with coalesced ranged reads (headers checked as any read checks them) and
        keep each until it is read once, up to _AHEAD_BYTES held: a restore from a remote reads a dataset's pages
        in a few requests instead of one each."""
        wanted = [oid for oid in dict.fromkeys(oids) if oid not in self._ahead]
        if not wanted or self._ahead_bytes >= _AHEAD_BYTES:
            return
        for oid, loc, stored in self.read_records(wanted):
            with self._ahead_lock:
                if stored is not None and self._ahead_bytes < _AHEAD_BYTES:
                    self._ahead[oid] = (loc, bytes(stored))
                    self._ahead_bytes += len(stored)

    def _read_stored(self, oid: bytes):
        with self._ahead_lock:
            ahead = self._ahead.pop(oid, None)
            if ahead is not None:
                self._ahead_bytes -= len(ahead[1])
        return super()._read_stored(oid) if ahead is None else ahead

    def _read_at(self, pack: bytes, offset: int, length: int) -> bytes:
        data = self.medium.get_range(f"packs/{pack.hex()}.pack", offset, length)
        self.stats.add(received=len(data))
        return data

    def read_ranges(self, pack: bytes, ranges: list[tuple[int, int]]) -> list[bytes]:
        parts = self.medium.get_ranges(f"packs/{pack.hex()}.pack", ranges)
        self.stats.add(received=sum(len(p) for p in parts))
        return parts

    # -- writing: each pack uploaded as soon as it is sealed; an index every _PACKS_PER_INDEX packs ---

    def put_record(self, oid: bytes, codec: int, raw_len: int, stored: bytes) -> None:
        super().put_record(oid, codec, raw_len, stored)
        with self._lock:
            sealed = self._writer.take_sealed()
        self._submit(sealed)

    def _submit(self, sealed: Published) -> None:
        for pack in sealed:
            self._start_upload(pack)

    def _start_upload(self, sealed: tuple, read: Callable[[], bytes] | None = None) -> None:
        self._gate.acquire()  # bounded: a push holds at most a few packs in memory
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=_UPLOADS)
        self._uploads.append(self._pool.submit(self._upload_one, sealed, read))

    def send_pack(self, read: Callable[[], bytes], pack_id: bytes, records: list[tuple[bytes, int, int, int, int]]) -> None:
        """Upload a sealed pack of another store as it is — `read()` gives its bytes, which must hash to `pack_id`
        (the pack's name: a damaged local pack is refused, never sent) — and name its `records` (id, offset, stored
        length, raw length, codec) in the next index uploaded. Like the packs `put_record` fills, it is in flight
        until `flush`, and a pack the remote has already is not sent again."""
        self._start_upload((None, pack_id, records), read)

    def _upload_one(self, sealed: tuple, read: Callable[[], bytes] | None = None) -> None:
        tmp, pack_id, records = sealed
        try:
            name = f"{pack_id.hex()}.pack"
            if name in self.packs:
                self.stats.packs_present += 1  # an earlier, interrupted push sent these very bytes
            else:
                if read is None:
                    size = tmp.stat().st_size
                    created = self.medium.create_from(f"packs/{name}", tmp)
                else:
                    data = read()
                    if blake3.blake3(data, max_threads=blake3.blake3.AUTO).digest() != pack_id:
                        raise CorruptObject(f"local pack {name} does not hash to its name: it is damaged and was not "
                                            "sent (run `pvc verify`)")
                    size = len(data)
                    created = self.medium.create(f"packs/{name}", data)
                    del data
                self.stats.add(sent=size if created else 0)
                if created:
                    self.stats.packs_sent += 1
                else:
                    self.stats.packs_present += 1
            with self._index_lock:
                self._unindexed.append((pack_id, records))
                group = self._take_unindexed() if len(self._unindexed) >= _PACKS_PER_INDEX else []
            self._send_index(group)
        finally:
            if tmp is not None:
                tmp.unlink(missing_ok=True)
            self._gate.release()

    def _take_unindexed(self) -> list[tuple[bytes, list]]:
        group, self._unindexed = self._unindexed, []
        return group

    def _send_index(self, group: list[tuple[bytes, list]]) -> None:
        """Upload one index file naming the records of every pack of `group` (packs already on the remote)."""
        if not group:
            return
        idx = write_index(self.idx_dir, [(oid, pack_id, off, slen, rlen, codec) for pack_id, records in group
                                         for oid, off, slen, rlen, codec in records])
        data = idx.read_bytes()
        self.stats.add(sent=len(data) if self.medium.create(f"packs/{idx.name}", data) else 0)

    def _publish(self, sealed: Published) -> None:
        self._submit(sealed)
        self.wait()

    def flush(self) -> None:
        """Seal and upload what is staged, then wait for every upload in flight (the packs `send_pack` sent too):
        only after this returns may a version record name their objects."""
        super().flush()
        self.wait()

    def wait(self) -> None:
        """Wait for every upload in flight, then upload the index of the packs no index names yet; the first
        failure is raised (the others still finish; the packs that went stay without an index until a push names
        them)."""
        uploads, self._uploads = self._uploads, []
        if not uploads:
            return
        errors = [f.exception() for f in uploads if f.exception() is not None]
        if errors:
            raise errors[0]
        with self._index_lock:
            group = self._take_unindexed()
        self._send_index(group)
        self.refresh()

    def abort(self) -> None:
        super().abort()
        for f in self._uploads:
            f.cancel()
        self._uploads = []
        with self._index_lock:
            self._unindexed = []

    def close(self) -> None:
        self.abort()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        for idx in self._indexes:
            idx.close()

    # -- the marker and the version records ---------------------------------------------------------

    def is_remote(self) -> bool:
        """Whether the prefix is a pvc remote (something was pushed to it)."""
        try:
            doc = json.loads(self.medium.get(MARKER))
        except ObjectMissing:
            return False
        except ValueError:
            raise CorruptObject(f"{self.url}/{MARKER}: damaged") from None
        if not isinstance(doc, dict) or doc.get("format") != REMOTE_FORMAT:
            raise RemoteError(f"{self.url}: remote format {doc.get('format') if isinstance(doc, dict) else '?'} is not "
                              f"{REMOTE_FORMAT} (written by a newer pvc?)")
        return True

    def require_remote(self) -> None:
        if not self.is_remote():
            raise RemoteError(f"{self.url}: not a pvc remote (nothing was pushed there: no {MARKER})")

    def mark(self) -> None:
        """Make the prefix a pvc remote, and check once (remembered in the cache) that the server refuses to
        overwrite: without conditional writes, two pushes racing for a number could replace each other's record."""
        marker = json.dumps({"format": REMOTE_FORMAT}).encode() + b"\n"
        if not self.is_remote():
            self.medium.create(MARKER, marker)
        checked = self.cache_dir / "create-only-checked"
        if not checked.exists():
            if self.medium.create(MARKER, marker):
                raise RemoteError(f"{self.url}: the server overwrote an existing file although told not to "
                                  "(If-None-Match: *): it does not support conditional writes, which pvc needs")
            atomic_write(checked, b"")

    def versions(self) -> list[VersionRecord]:
        """Every version record on the remote, oldest first (checked: gapless 1..n, checksums right)."""
        listing = self.medium.list("versions")
        self.stats.add()
        numbered = {}
        for name, size in listing.items():
            stem = name[: -len(".json")] if name.endswith(".json") else ""
            if stem.isdigit():
                numbered[int(stem)] = (name, size)
        if sorted(numbered) != list(range(1, len(numbered) + 1)):
            raise CorruptObject(f"{self.url}/versions/: version records are not 1..{len(numbered)} "
                                f"(found {sorted(numbered)[:10]})")
        with ThreadPoolExecutor(max_workers=8) as pool:
            return list(pool.map(lambda n: self._record(n, *numbered[n]), range(1, len(numbered) + 1)))

    def _record(self, number: int, name: str, size: int) -> VersionRecord:
        cached = self.cache_dir / "versions" / name
        data = cached.read_bytes() if cached.exists() and cached.stat().st_size == size else None
        if data is None:
            data = self.medium.get(f"versions/{name}")
            self.stats.add(received=len(data))
        record = _parse_record(data, f"{self.url}/versions/{name}")
        if record.number != number:
            raise CorruptObject(f"{self.url}/versions/{name}: holds version {record.number}")
        if not cached.exists():
            atomic_write(cached, data)
        return record

    def publish_version(self, record: VersionRecord) -> bool:
        """Create the record of version `record.number`; False if that number is taken by another version."""
        name = f"versions/{record.number:010d}.json"
        data = _encode_record(record)
        if self.medium.create(name, data):
            self.stats.add(sent=len(data))
            return True
        try:  # taken: by this very record (a retried request), or by another version
            return _parse_record(self.medium.get(name), name).id == record.id
        except CorruptObject:
            return False


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _encode_record(record: VersionRecord) -> bytes:
    doc = record.to_json()
    return json.dumps({"format": 1, "checksum": blake3.blake3(_canonical(doc).encode()).hexdigest(), "record": doc},
                      ensure_ascii=False, indent=1).encode() + b"\n"


def _parse_record(data: bytes, where: str) -> VersionRecord:
    try:
        doc = json.loads(data)
        record = doc["record"]
        if doc.get("format") != 1 or doc.get("checksum") != blake3.blake3(_canonical(record).encode()).hexdigest():
            raise ValueError("checksum")
        return VersionRecord.from_json(record)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise CorruptObject(f"{where}: damaged version record") from None
