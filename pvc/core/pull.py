"""pull: the remote's versions this project lacks, and their objects, into the store. The working tree is never
touched (as `git fetch`).

Versions are matched by id. The remote's versions come first, numbered as on the remote; a local version that was
never pushed is renumbered after them, in its order: its record, manifest and objects do not change, only its
number (and the numbers its `parent` and the tags that name it refer to). So after a pull the first versions of
this project are exactly the remote's, and a push sends only the local ones.

What moves: every new version's manifest, trees and pages (small), then the blobs of the versions asked for (all
of them by default; `versions`: only those; `metadata_only`: none). Versions whose blobs stay on the remote are
listed in `.pvc/partial` (see pvc/store/partial.py). Objects are staged and flushed before the refs are written,
all under the lock, so a failed pull leaves the project as it was.
"""

from __future__ import annotations

from collections.abc import Callable

from pvc.core.remote import RemoteInfo, find_remote, open_remote
from pvc.core.transfer import in_datasets, receive_objects, walk_version
from pvc.errors import CorruptObject, UsageError
from pvc.record import field, record, replace
from pvc.store.local.packcheck import check_record
from pvc.store.local.packs import Record
from pvc.store.packed import PackedStore
from pvc.store.partial import Partial
from pvc.store.refs import VersionRecord
from pvc.store.remote.store import RemoteStore
from pvc.store.repository import Repository

__all__ = ["PullResult", "pull", "fetch_version", "merge_versions"]


@record(frozen=True)
class PullResult:
    remote: RemoteInfo
    fetched: list[int] = field(default_factory=list)  # remote version numbers added to this project
    renumbered: dict[int, int] = field(default_factory=dict)  # local version: old number -> new number
    complete: list[int] = field(default_factory=list)  # versions whose objects are all here now
    partial: list[int] = field(default_factory=list)  # versions whose blobs are on the remote only
    objects: int = 0
    bytes_received: int = 0
    requests: int = 0

    def to_json(self) -> dict:
        return {"remote": self.remote.name, "url": self.remote.url, "fetched": self.fetched,
                "renumbered": {str(k): v for k, v in self.renumbered.items()}, "complete": self.complete,
                "partial": self.partial, "objects": self.objects, "bytes_received": self.bytes_received,
                "requests": self.requests}


def pull(repo: Repository, name: str | None = None, *, versions: list[int] | None = None, metadata_only: bool = False,
         lock_timeout: float = 60.0, progress=None) -> PullResult:
    """Fetch what the remote has and this project lacks (see the module docstring)."""
    info = find_remote(repo, name)
    remote = open_remote(repo, info)
    try:
        remote.require_remote()
        theirs = remote.versions()
        if versions is not None:
            unknown = sorted(set(versions) - {r.number for r in theirs})
            if unknown:
                raise UsageError(f"{info.url} has no version {unknown[0]} (it has 1..{len(theirs)})")
        with repo.lock(lock_timeout):
            return _pull_locked(repo, info, remote, theirs, versions, metadata_only, progress)
    finally:
        remote.close()


def _pull_locked(repo, info, remote, theirs, wanted, metadata_only, progress) -> PullResult:
    local = repo.reopen_store()
    refs = repo.refs.read()
    mine = list(refs.versions)
    known = {r.id for r in mine}
    partial = repo.partial.read()
    objects, complete, still_partial = 0, [], []
    try:
        for record in theirs:
            if record.deleted or (record.id in known and record.id not in partial):
                continue  # nothing to fetch: a deleted version is its record alone, a whole one is here already
            whole = not metadata_only and (wanted is None or record.number in wanted)
            if not whole and record.id in partial:
                continue  # its structure is here already
            objects += fetch_version(local, remote, record, blobs_of=None if whole else [], progress=progress)
            if whole:
                partial.pop(record.id, None)
                complete.append(record.number)
            else:
                partial[record.id] = Partial(info.name, "structure", ())
                still_partial.append(record.number)
        repo.prepare_publish(local)
        local.flush()
    except BaseException:
        local.abort()
        raise
    merged, renumbered = merge_versions(mine, theirs)
    tags = {tag: renumbered.get(n, n) for tag, n in refs.tags.items()}
    repo.refs.write(replace(refs, versions=tuple(merged), tags=tags))
    repo.partial.write(partial)
    s = remote.stats
    return PullResult(info, [r.number for r in theirs if r.id not in known], renumbered, complete, still_partial,
                      objects, s.bytes_received, s.requests)


def merge_versions(mine: list[VersionRecord], theirs: list[VersionRecord]) -> tuple[list[VersionRecord], dict[int, int]]:
    """The remote's versions, then the local ones it lacks renumbered after them, parents following; and the
    local numbers that changed (old -> new). A version known here keeps its local state (edits, deletion)."""
    on_remote = {r.id: r.number for r in theirs}
    local_only = [r for r in mine if r.id not in on_remote]
    new_number = {r.number: on_remote[r.id] for r in mine if r.id in on_remote}
    new_number |= {r.number: n for n, r in enumerate(local_only, len(theirs) + 1)}
    renumbered = {old: new for old, new in new_number.items() if old != new}
    local_by_id = {r.id: r for r in mine}
    merged = [replace(local_by_id.get(r.id, r), number=r.number, parent=r.parent) for r in theirs]
    merged += [replace(r, number=new_number[r.number], parent=new_number.get(r.parent, r.parent)) for r in local_only]
    return merged, renumbered


def fetch_version(local: PackedStore, remote: RemoteStore, record: VersionRecord, *, blobs_of: list[str] | None,
                  progress=None, before_blobs: Callable[[dict], Callable] | None = None,
                  publish: Callable[[], None] | None = None) -> int:
    """Stage into `local` the structure of `record` (manifest, trees, pages) and the blobs of the project's own
    files and of the datasets `blobs_of` (None: every dataset); return how many objects were copied.

    With `before_blobs`, the structure is flushed first (readable in `local`), then `before_blobs(decoded)` is called
    (in a thread of its own, while the first blobs download; `decoded`: the structured objects the walk decoded, by
    id) and what it returns is `receive_objects`' `on_pack` for the blobs: clone writes the files of the version from
    the packs it downloads while they are in memory.
    `publish()`, if given, is called before that flush (clone: the store becomes format 2 if it is about to hold
    zstd dictionaries, which always come with the structure)."""
    reader = _LocalFirst(local, remote)
    found = walk_version(reader.get_object, bytes.fromhex(record.manifest), prefetch=reader.prefetch)
    blobs = [oid for oid, datasets in found.blobs.items() if any(in_datasets(d, blobs_of) for d in datasets)]
    phase = f"fetching v{record.number}"
    if before_blobs is None:  # the items pages the walk did not need to read, then the blobs
        copied = receive_objects(remote, local, [*found.structure, *blobs], progress=progress, phase=phase)
        return reader.copied + copied.objects
    structure = receive_objects(remote, local, found.structure, progress=progress, phase=phase)
    if publish is not None:
        publish()
    local.flush()
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as one:  # the blobs start moving while `before_blobs` runs
        ready = one.submit(before_blobs, reader.decoded)
        copied = receive_objects(remote, local, blobs, progress=progress, phase=phase,
                                 on_pack=lambda src, records: ready.result()(src, records))
        ready.result()  # its failure is the fetch's, even where no pack came whole
    return reader.copied + structure.objects + copied.objects


class _LocalFirst:
    """Structured objects from the local store if it has them, else from the remote: checked, staged into the local
    store as they are stored on the remote, and kept in memory (a staged object is not readable until the flush)."""

    def __init__(self, local: PackedStore, remote: RemoteStore) -> None:
        self.local, self.remote = local, remote
        self.fetched: dict[bytes, bytes] = {}
        self.decoded: dict[bytes, object] = {}  # what get_object returned, by id: decoded once
        self.copied = 0

    def get_object(self, oid: bytes, cls):
        found = self.decoded.get(oid)
        if found is not None and type(found) is cls:
            return found
        if oid in self.fetched:
            found = cls.decode(self.fetched[oid], oid)
        elif self._local_has(oid):
            found = self.local.get_object(oid, cls)
        else:
            loc, stored = self.remote.read_record(oid)
            self._take(oid, loc, stored)
            found = cls.decode(self.fetched[oid], oid)
        self.decoded[oid] = found
        return found

    def prefetch(self, oids: list[bytes]) -> None:
        """Have the remote read ahead, with coalesced ranged reads, the objects of `oids` this reader would fetch
        from it one by one (a tree's pages are neighbours in one pack: one request instead of one each);
        `get_object` then takes each from what was read (RemoteStore.prefetch)."""
        self.remote.prefetch([oid for oid in oids if oid not in self.fetched and not self._local_has(oid)])

    def _local_has(self, oid: bytes) -> bool:
        return self.local.has(oid) and self.local.info(oid) is not None

    def _take(self, oid: bytes, loc, stored: bytes) -> None:
        problem = check_record(stored, Record(oid, loc.codec, loc.raw_len, loc.stored_len, loc.offset),
                               self.remote.dictionary_by_ref)
        if problem:
            raise CorruptObject(f"object {oid.hex()} from {self.remote.url}: {problem}; nothing of it was stored")
        self.local.put_record(oid, loc.codec, loc.raw_len, stored)
        self.copied += 1
        self.fetched[oid] = self.remote.decoded(oid, loc, stored)
