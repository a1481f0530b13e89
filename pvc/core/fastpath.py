"""Recognising an untouched project from one stat per file, without reading or building anything.

The stat cache remembers the manifest a full scan produced and the digest of that scan's stat records
(`.pvc/index.tree`, recorded only when no file was racy). A new scan with the same digest saw the
same files with the same size, mtime, inode and ctime, so the project is still that manifest. The C walk
(pvc/_walk.c) makes this scan several times faster than the Python one; `clean_status` answers
`pvc status` on an untouched project from it, importing nothing of the store or the media readers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pvc.core.report import clean_report
from pvc.errors import PvcError
from pvc.project.scan import Ignore, native_stat_records, tree_digest
from pvc.store.repository import Repository
from pvc.store.statcache import StatCache

__all__ = ["MANIFEST_FORMAT", "capture_settings", "untouched", "clean_status"]

MANIFEST_FORMAT = 1


def capture_settings(repo: Repository, allow_invalid: bool) -> dict[str, Any]:
    """Everything besides the files that decides the manifest: a cached manifest holds only for these."""
    return {"chunk_threshold": repo.config.get("chunk_threshold"), "dicom_tags": repo.config.get("dicom_tags"),
            "allow_invalid": allow_invalid, "format": MANIFEST_FORMAT}


def untouched(repo: Repository, cache: StatCache, expect: bytes, settings: dict[str, Any]) -> bool:
    """True when the C walk proves the project is still `expect`; False means "scan in Python and see"."""
    if not cache.may_vouch_for(expect, settings):
        return False
    root = repo.project_root
    records = native_stat_records(root, Ignore.load(root))
    return records is not None and cache.vouches_for(expect, settings, tree_digest(records))


def clean_status(start: Path) -> dict | None:
    """The `status` report when the project is provably the latest version; None in every other case
    (changes, no version yet, no C walk, anything odd), and then the full status runs and explains."""
    try:
        repo = Repository.discover(start)
        versions = repo.versions()
        if not versions:
            return None
        latest = versions[-1]
        cache = repo.stat_cache()
        if not untouched(repo, cache, bytes.fromhex(latest.manifest), capture_settings(repo, False)):
            return None
    except (PvcError, OSError, ValueError):
        return None
    return clean_report(latest.number, "working", cache.classes)
