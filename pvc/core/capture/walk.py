"""Capture, stage 1: the project's files and their stats (the C walk, or the Python scan where it declines), and
whether the stat cache proves the project untouched since a known manifest, in which case nothing else runs."""

from __future__ import annotations

from dataclasses import dataclass

from pvc.core.fastpath import untouched
from pvc.project.scan import FileInfo, Ignore, files_from_walk, scan
from pvc.project.walk import followed_symlinks, native_walk, tree_digest
from pvc.store.repository import Repository
from pvc.store.statcache import StatCache, fs_clock

__all__ = ["Walked", "walk_project"]


@dataclass(frozen=True)
class Walked:
    """One walk of the project."""

    scan_started: int | None  # the file system's clock just before the first stat (the stat cache's racy
    # cutoff); None when the store cannot be written (read-only, full), and then nothing of this scan is saved
    digest: bytes | None  # `tree_digest` of the C walk's stat records (taken at once: the records are ~75 bytes a
    # file, the digest all that is kept of them), None when it did not run or declined
    files: list[FileInfo] | None  # None when `records` already proved the project untouched
    followed_symlinks: int = 0  # files reached through a symlink (their targets are what is versioned)

    @property
    def settled(self) -> bool:
        """No file was modified since a moment before the scan began: its stat records can vouch for it."""
        return self.scan_started is not None and all(f.mtime_ns < self.scan_started for f in self.files or [])


def walk_project(repo: Repository, cache: StatCache, expect: bytes | None, settings: dict) -> Walked:
    """Walk the project; stop after the stat records when they prove the project is still `expect`."""
    root = repo.project_root
    ignore = Ignore.load(root)
    scan_started = fs_clock(repo.dir / "tmp")  # before the first stat
    walked = native_walk(root, ignore)  # the C walk: one stat a file, in threads
    if expect is not None and untouched(cache, expect, settings, walked[0] if walked else None):
        return Walked(scan_started, None, None, followed_symlinks(walked[1]))
    files = files_from_walk(root, *walked) if walked else None
    digest = tree_digest(walked[0]) if files is not None else None
    del walked
    if files is None:  # no C walk, or it declined: the Python scan (which reports what it refuses)
        files = scan(root, ignore)
    return Walked(scan_started, digest, files, sum(1 for f in files if f.symlink))
