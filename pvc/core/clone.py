"""clone: a new project from a remote — its versions, `origin` configured, one version checked out.

Only what the chosen version (and `datasets`) needs moves: every version's record, the chosen version's manifest,
trees and pages, and the blobs of its project-level files and of the chosen datasets. The other versions are
listed in `.pvc/partial` (their objects are on `origin` only: `pvc pull` brings them). Everything is built in a
hidden sibling of the target and renamed into place at the end, so a failed clone leaves nothing behind. The store is
durable before that rename; the checked-out files are left to the kernel's write-back, under a stat cache that
vouches for them only once they are known to be on disk (atomic.StoreFirst; docs/format.md, "Atomic writes").
"""

from __future__ import annotations

import os
import shutil
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from pvc.core.capture.seed import plan_seed, write_seed
from pvc.core.pull import fetch_version
from pvc.core.remote import RemoteInfo, add_remote, open_remote
from pvc.core.resolve import resolve_version
from pvc.core.restore import EarlyFiles, materialize
from pvc.core.selection import Plan, Selection, plan_restore
from pvc.core.snapshot import Snapshot
from pvc.errors import UsageError, VersionNotFound
from pvc.record import field, record, replace
from pvc.store.atomic import StoreFirst, Writeback, fsync_dir, mount_token
from pvc.store.partial import Partial
from pvc.store.refs import RefsDoc
from pvc.store.remote import parse_remote
from pvc.store.repository import STORE_DIR, Repository

__all__ = ["CloneResult", "clone"]


@record(frozen=True)
class CloneResult:
    project: str
    remote: RemoteInfo
    version: int
    versions: int
    datasets: list[str] | None
    files: int
    bytes: int
    objects: int
    bytes_received: int
    requests: int
    partial: list[int] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"project": self.project, "remote": self.remote.to_json(), "version": self.version,
                "versions": self.versions, "datasets": self.datasets, "files": self.files, "bytes": self.bytes,
                "objects": self.objects, "bytes_received": self.bytes_received, "requests": self.requests,
                "partial": self.partial}


def clone(url: str, dest: Path, *, endpoint: str | None = None, region: str | None = None,
          version: str | int | None = None, datasets: list[str] | None = None, progress=None) -> CloneResult:
    """Clone the remote at `url` into the new directory `dest` (see the module docstring)."""
    spec = parse_remote(url, endpoint=endpoint, region=region)
    dest = Path(os.path.abspath(dest))
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UsageError(f"{dest}: exists and is not an empty directory")
    if not dest.parent.is_dir():
        raise UsageError(f"{dest.parent}: parent directory does not exist")
    staging = dest.parent / f".{dest.name}.pvc-clone-{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    token = mount_token(staging)
    try:
        # the store durable before the rename; the checkout too only where a reboot cannot be told (see StoreFirst)
        with StoreFirst(staging, staging / STORE_DIR) if token else Writeback(staging) as durable:
            result = _clone_into(staging, spec, version, datasets, progress, unsynced=token)
            durable.finish()
        if dest.exists():
            dest.rmdir()
        staging.rename(dest)
        fsync_dir(dest.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return CloneResult(str(dest), *result)


def _clone_into(folder: Path, spec, version, datasets, progress, unsynced: str | None) -> tuple:
    Repository.init(folder)
    repo = Repository(folder)
    try:
        info = add_remote(repo, "origin", spec.url, endpoint=spec.endpoint, region=spec.region, timeout=spec.timeout,
                          retries=spec.retries)
        remote = open_remote(repo, info)
        try:
            remote.require_remote()
            theirs = remote.versions()
            live = [r for r in theirs if not r.deleted]
            if not live:
                raise VersionNotFound(f"{spec.url} has no versions to clone")
            record = resolve_version(theirs, version if version is not None else live[-1].number)
            with repo.lock():
                local = repo.reopen_store()
                early: list[tuple[Plan, EarlyFiles]] = []
                seeds: list[Future] = []  # what the stat cache will say of the files, made while they download

                with ThreadPoolExecutor(max_workers=1) as seeding:
                    def before_blobs(decoded):  # the structure is readable: plan the files, write each as its pack
                        # arrives; the pages the walk decoded are not decoded again
                        snap = Snapshot(_Decoded(local, decoded), bytes.fromhex(record.manifest))
                        chosen = plan_restore(snap, Selection(tuple(datasets or ())))
                        early.append((chosen, EarlyFiles(chosen.files, folder)))
                        seeds.append(seeding.submit(plan_seed, snap.manifest, chosen.files, chosen.items,
                                                    chosen.folders))
                        return early[0][1].take

                    try:
                        objects = fetch_version(local, remote, record, blobs_of=datasets, progress=progress,
                                                before_blobs=before_blobs, publish=lambda: repo.prepare_publish(local))
                    finally:
                        for _, files in early:
                            files.close()
                    vouched = seeds[0].result()
                repo.prepare_publish(local)
                local.flush()
                repo.refs.write(RefsDoc(tuple(theirs)))
                partial = {r.id: Partial(info.name, "records") for r in live if r.id != record.id}
                if datasets is not None:
                    partial[record.id] = Partial(info.name, "structure", tuple(datasets))
                repo.partial.write(partial)
            stats = remote.stats
            received, requests = stats.bytes_received, stats.requests
        finally:
            remote.close()
        # what the downloads did not write: files of records fetched one by one, chunked files
        chosen, written = early[0]
        materialize(repo.store, replace(chosen, files=written.left(chosen.files)), folder, progress=progress)
        plan = chosen.files
        # the stat cache a commit of these files leaves: the first status reads none of them (`unsynced`: until the
        # files are known durable, StatCache's rule)
        write_seed(repo, vouched, unsynced=unsynced, known=written.stats)
        numbers = sorted(r.number for r in live if r.id in partial)
        return (info, record.number, len(theirs), datasets, len(plan), sum(e.size for e in plan), objects, received,
                requests, numbers)
    finally:
        repo.close()


class _Decoded:
    """`store`, giving back the structured objects of `decoded` (id -> the object `get_object` made of it) as they are
    instead of decoding them again; everything else is `store`'s."""

    def __init__(self, store, decoded: dict[bytes, object]) -> None:
        self._store, self._decoded = store, decoded

    def get_object(self, oid: bytes, cls):
        found = self._decoded.get(oid)
        return found if found is not None and type(found) is cls else self._store.get_object(oid, cls)

    def __getattr__(self, name: str):
        return getattr(self._store, name)
