"""commit: snapshot the project directory as a new version (or return the latest one if nothing changed).

Order of writes: blobs, pages, trees, manifest (all staged in temp packs), then `flush` makes them durable
and visible, then the refs file names the new version. A failure before the refs write leaves at most
orphan objects; a failure before `flush` leaves the visible store exactly as it was.
"""

from __future__ import annotations

import getpass
import socket
from collections.abc import Callable
from datetime import UTC, datetime

from pvc.core.capture import capture
from pvc.core.fastpath import PriorWalk
from pvc.core.report import CommitResult
from pvc.record import replace
from pvc.store.model import Manifest
from pvc.store.objects import hex_id
from pvc.store.refs import VersionRecord, record_id
from pvc.store.repository import Repository

__all__ = ["CommitResult", "commit", "commit_locked", "Progress"]

Progress = Callable[[str, int, int], None]


def default_author() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def commit(
    repo: Repository,
    *,
    title: str = "",
    description: str | dict | None = None,
    author: str | None = None,
    allow_invalid: bool = False,
    lock_timeout: float = 60.0,
    progress: Progress | None = None,
) -> CommitResult:
    """Version the project directory; the lock is held from the scan to the refs write (and, in a restored
    project, the locks of the stores whose objects it shares: no gc there may drop what this commit relies on)."""
    with repo.lock_with_sources(lock_timeout):
        return commit_locked(repo, title=title, description=description, author=author, allow_invalid=allow_invalid,
                             progress=progress)


def commit_locked(repo: Repository, *, title: str = "", description: str | dict | None = None,
                  author: str | None = None, allow_invalid: bool = False, progress: Progress | None = None,
                  walk: PriorWalk | None = None) -> CommitResult:
    """`commit`, for a caller that holds the locks `commit` takes. `walk`: a walk of the project this caller began
    before it took them, used instead of walking again only because no other writer held the lock since before it
    began (pvc/core/fastpath.py, `_undisturbed`: the entry point's check for an untouched project)."""
    repo.clean_tmp()
    store = repo.reopen_store()
    try:
        return _commit_locked(repo, store, title, description, author, allow_invalid, progress, walk)
    except BaseException:
        store.abort()
        raise


def _commit_locked(repo, store, title, description, author, allow_invalid, progress, walk) -> CommitResult:
    versions = repo.versions()
    latest = repo.latest()  # deleted versions are not compared with, nor parents
    expect = bytes.fromhex(latest.manifest) if latest else None
    snap = capture(repo, store, allow_invalid=allow_invalid, progress=progress, expect=expect, from_change=True,
                   walk=walk)
    manifest_id = snap.manifest_id
    if latest and latest.manifest == hex_id(manifest_id):
        repo.prepare_publish(store)
        store.flush()  # usually writes nothing; objects found missing and stored again are kept
        snap.save_cache()
        return CommitResult(latest, False, snap.files_hashed, snap.bytes_hashed,
                            followed_symlinks=snap.followed_symlinks)
    repo.prepare_publish(store)
    store.flush()
    manifest = store.get_object(manifest_id, Manifest)
    record = VersionRecord(
        number=len(versions) + 1,  # numbers of deleted versions stay taken
        manifest=hex_id(manifest_id),
        title=title,
        description=description,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        author=author or default_author(),
        parent=latest.number if latest else None,
        stats=manifest.stats,
        origin=None if latest else repo.origin.read(),  # a first version of a restored project says where from
    )
    record = replace(record, id=record_id(record))
    repo.write_versions([*versions, record])
    snap.save_cache()
    return CommitResult(record, True, snap.files_hashed, snap.bytes_hashed, manifest.warnings or (),
                        snap.followed_symlinks)
