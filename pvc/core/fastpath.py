"""Recognising an untouched project from one stat per file, without reading or building anything.

The stat cache's head (the tree record) holds the digest of a settled scan's stat records and the manifest
that scan's project produced. A new scan with the same digest saw the same files with the same size, mtime,
inode and ctime, so the project is still that manifest. The C walk (pvc/_walk.c) makes that scan several
times faster than the Python one.

`clean_status` and `unchanged_commit` answer `pvc status` and `pvc commit` on an untouched project for
pvc/entry.py. They start the C walk in a thread (the walk runs without the GIL) and only then import the
store's modules and read the refs and the tree record, so that importing and walking overlap. This module
itself imports nothing heavy.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from pvc.errors import PvcError
from pvc.project.walk import Ignore, native_stat_records, tree_digest
from pvc.store.formats import MANIFEST_FORMAT
from pvc.store.location import find_project_root

if TYPE_CHECKING:
    from pvc.core.report import CommitResult
    from pvc.store.refs import VersionRecord
    from pvc.store.repository import Repository
    from pvc.store.statcache import StatCache

__all__ = ["MANIFEST_FORMAT", "capture_settings", "untouched", "clean_status", "unchanged_commit"]



def capture_settings(repo: Repository, allow_invalid: bool) -> dict[str, Any]:
    """Everything besides the files that decides the manifest: a cached manifest holds only for these."""
    return {"chunk_threshold": repo.config.get("chunk_threshold"), "dicom_tags": repo.config.get("dicom_tags"),
            "allow_invalid": allow_invalid, "format": MANIFEST_FORMAT}


def untouched(cache: StatCache, expect: bytes, settings: dict[str, Any], records: bytes | None) -> bool:
    """True when the C walk's `records` prove the project is still `expect`; False means "scan in Python
    and see" (also when the walk declined: `records` None)."""
    return (records is not None and cache.may_vouch_for(expect, settings)
            and cache.vouches_for(expect, settings, tree_digest(records)))


class _Walk(threading.Thread):
    """The C walk of `root`, in the background; `records()` waits for it (None: it declined or failed)."""

    def __init__(self, root: str, ignore: Ignore) -> None:
        super().__init__(daemon=True)
        self._args, self._records = (root, ignore), None

    def run(self) -> None:
        try:
            self._records = native_stat_records(*self._args)
        except Exception:  # the full status will meet the same problem and report it
            self._records = None

    def records(self) -> bytes | None:
        self.join()
        return self._records


def _untouched_latest(start: str) -> tuple[VersionRecord, StatCache] | None:
    """The latest version and the stat cache, when the project is provably that version; else None."""
    root = find_project_root(start)
    if root is None:
        return None
    try:
        walk = _Walk(root, Ignore.load(root))
    except PvcError:  # unreadable .pvcignore
        return None
    walk.start()
    try:
        from pathlib import Path

        from pvc.store.repository import Repository

        repo = Repository(Path(root))
        latest = repo.latest()
        if latest is None:
            return None
        cache = repo.stat_cache()
        if not untouched(cache, bytes.fromhex(latest.manifest), capture_settings(repo, False), walk.records()):
            return None
    except (PvcError, OSError, ValueError):
        return None
    finally:
        walk.join()
    return latest, cache


def clean_status(start: str) -> dict | None:
    """The `status` report when the project is provably the latest version; None in every other case
    (changes, no version yet, no C walk, anything odd), and then the full status runs and explains."""
    found = _untouched_latest(start)
    if found is None:
        return None
    from pvc.core.report import clean_report

    latest, cache = found
    return clean_report(latest.number, "working", cache.classes)


def unchanged_commit(start: str) -> CommitResult | None:
    """What `pvc commit` returns when the project is provably the latest version (nothing written, no
    lock needed: it changes nothing); None in every other case, and then the full commit runs."""
    found = _untouched_latest(start)
    if found is None:
        return None
    from pvc.core.report import CommitResult

    return CommitResult(found[0], False, 0, 0)
