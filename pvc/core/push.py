"""push: every local version the remote lacks, with the objects they need, published safely.

1. Compare the version records: the remote's versions must be the first of this project's (matched by id). If the
   remote has versions this project lacks, nothing is sent: `RemoteConflict` (exit 4) says to pull first.
2. Walk each version to push, and send every object the remote's indexes do not name: a local pack whose records
   are (nearly) all wanted goes as it is, its bytes checked against its name; the other records are copied as they
   are stored into new packs; every pack is uploaded create-only, followed by an index that names its records.
3. Only then publish the version records, in order, each create-only under its number. A number taken meanwhile by
   another machine's push stops here with `RemoteConflict`: its objects are on the remote (harmless orphans until
   the next push uses them), its record is not, so the remote never names a version whose objects it lacks.

An interrupted push leaves the remote as readable as before; run again, it sends only what no index names yet.
"""

from __future__ import annotations

from contextlib import ExitStack

from pvc.core.remote import RemoteInfo, find_remote, open_remote
from pvc.core.transfer import send_objects, walk_version
from pvc.errors import ObjectMissing, RemoteConflict, TooManyFiles
from pvc.record import field, record
from pvc.store.refs import VersionRecord
from pvc.store.repository import Repository

__all__ = ["PushResult", "push", "diverged"]


@record(frozen=True)
class PushResult:
    remote: RemoteInfo
    pushed: list[int] = field(default_factory=list)  # version numbers now on the remote thanks to this push
    remote_versions: int = 0  # versions on the remote after the push
    objects: int = 0
    bytes_sent: int = 0
    packs_sent: int = 0
    packs_present: int = 0  # packs an interrupted push had sent already
    requests: int = 0
    behind: int = 0  # versions on the remote this project does not have (pull them)

    def to_json(self) -> dict:
        return {"remote": self.remote.name, "url": self.remote.url, "pushed": self.pushed,
                "remote_versions": self.remote_versions, "objects": self.objects, "bytes_sent": self.bytes_sent,
                "packs_sent": self.packs_sent, "packs_present": self.packs_present, "requests": self.requests,
                "behind": self.behind}


def diverged(local: list[VersionRecord], remote: list[VersionRecord]) -> int | None:
    """The first number at which the two lists name different versions, or None if one starts the other."""
    for mine, theirs in zip(local, remote):
        if mine.id != theirs.id:
            return mine.number
    return None


def push(repo: Repository, name: str | None = None, *, lock_timeout: float = 60.0, progress=None) -> PushResult:
    """Push every version the remote lacks (see the module docstring)."""
    info = find_remote(repo, name)
    with ExitStack() as held:
        held.enter_context(repo.lock(lock_timeout))  # a consistent view: the refs, and packs gc cannot take away
        versions = repo.versions()
        store = repo.reopen_store()
        partial = repo.partial.read()
        try:
            store.pin_packs()
            held.close()  # the packs stay open: commits may go on while the push runs
        except TooManyFiles:  # more packs than this process may keep open: the lock keeps gc out instead, held to the
            pass  # end of the push (other writers wait)
        try:
            return _push(repo, info, store, versions, partial, progress)
        finally:
            store.unpin_packs()


def _push(repo: Repository, info: RemoteInfo, store, versions: list[VersionRecord], partial: dict,
          progress) -> PushResult:
    remote = open_remote(repo, info)
    try:
        theirs = remote.versions()
        at = diverged(versions, theirs)
        if at is not None:
            raise RemoteConflict(f"{info.url} has another version {at} than this project: run `pvc pull {info.name}` "
                                 "(your unpushed versions are renumbered after the remote's), then push again")
        todo = versions[len(theirs):]
        if not todo:
            return _result(info, remote, [], len(theirs), 0, behind=len(theirs) - len(versions))
        copied = 0
        for record in todo:
            if record.deleted:
                continue  # a deleted version goes as its record alone: its number stays taken, it names no objects
            if record.id in partial:
                raise ObjectMissing(f"version {record.number} has objects on remote {partial[record.id].remote} only: "
                                    "pull it whole before pushing it elsewhere")
            found = walk_version(store.get_object, bytes.fromhex(record.manifest))
            oids = [*found.blobs, *found.structure]
            del found  # the decoded pages: only the ids are needed from here
            copied += send_objects(store, remote, oids, progress=progress, phase=f"sending v{record.number}").objects
        remote.mark()
        remote.flush()  # every pack uploaded and indexed before any record names its objects
        for record in todo:
            if not remote.publish_version(record):
                raise RemoteConflict(f"version {record.number} was pushed to {info.url} by someone else meanwhile: "
                                     f"run `pvc pull {info.name}`, then push again (the objects sent stay there, "
                                     "for the next push)")
        return _result(info, remote, [r.number for r in todo], len(versions), copied)
    finally:
        remote.close()


def _result(info: RemoteInfo, remote, pushed: list[int], total: int, objects: int, behind: int = 0) -> PushResult:
    s = remote.stats
    return PushResult(info, pushed, total, objects, s.bytes_sent, s.packs_sent, s.packs_present, s.requests, behind)
