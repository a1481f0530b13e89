"""Capture, stage 1: the project's files and their stats (the C walk, or the Python scan where it declines), and
whether the stat cache proves the project untouched since a known manifest, in which case nothing else runs."""

from __future__ import annotations

from bisect import bisect_left

from pvc.core.fastpath import PriorWalk, untouched
from pvc.project.scan import FileInfo, Ignore, scan
from pvc.project.walk import RECORD, _walk, followed_symlinks, native_walk, tree_digest
from pvc.store.repository import Repository
from pvc.store.statcache import StatCache, fs_clock

__all__ = ["Walked", "walk_project"]


class Walked:
    """One walk of the project: its paths in order (`paths`), and each file's `FileInfo` (`file(i)`, or `files`, all of
    them). From the C walk a file's `FileInfo` is made when it is asked for: a status after a small change asks for
    the changed files only (the stat cache compares the rest from the walk's records, in C)."""

    __slots__ = ("scan_started", "digest", "followed_symlinks", "records", "at", "_paths", "_files", "_flags",
                 "_prefix", "_newest", "untouched")

    def __init__(self, scan_started: int | None, digest: bytes | None = None, files: list[FileInfo] | None = None, *,
                 native: tuple | None = None, prefix: str = "", followed: int = 0, untouched: bool = False) -> None:
        self.scan_started = scan_started  # the file system's clock just before the first stat (the stat cache's
        # racy cutoff); None when the store cannot be written (read-only, full), and then nothing of this scan is saved
        self.digest = digest  # `tree_digest` of the C walk's stat records, None when it did not run or declined
        self.followed_symlinks = followed  # files reached through a symlink (their targets are what is versioned)
        self.untouched = untouched  # the stat records proved the project is the manifest expected: nothing else ran
        self._files = files
        self._prefix = prefix
        self.records: bytes | None = None  # the C walk's records, `at` where each file's integers start in them
        self.at: memoryview | None = None
        self._flags = b""
        self._newest: int | None = None
        if native is not None:  # (records, flags, (paths, at, newest mtime or ctime))
            self.records, self._flags, (self._paths, at, self._newest) = native
            self.at = memoryview(at).cast("Q")
        else:
            self._paths = [f.relpath for f in files] if files is not None else []

    @property
    def files(self) -> list[FileInfo] | None:
        """Every file, sorted by path; None when `untouched`."""
        if self.untouched:
            return None
        if self._files is None:
            self._files = [self.file(i) for i in range(len(self._paths))]
        return self._files

    @property
    def paths(self) -> list[str]:
        return self._paths

    def file(self, i: int) -> FileInfo:
        if self._files is not None:
            return self._files[i]
        flag = self._flags[i]
        return FileInfo(self._paths[i], self._prefix, *RECORD.unpack_from(self.records, self.at[i]), bool(flag & 1),
                        bool(flag & 2))

    def index(self, path: str) -> int | None:
        """The position of `path` among the files, or None."""
        i = bisect_left(self._paths, path)
        return i if i < len(self._paths) and self._paths[i] == path else None

    @property
    def settled(self) -> bool:
        """No file was modified, nor its metadata changed, since a moment before the scan began (every mtime and ctime
        older than the clock): its stat records can vouch for it, for a later write gives a later ctime at least."""
        if self.scan_started is None:
            return False
        if self._newest is not None:
            return self._newest < self.scan_started
        return all(max(f.mtime_ns, f.ctime_ns) < self.scan_started for f in self.files or [])


def walk_project(repo: Repository, cache: StatCache, expect: bytes | None, settings: dict,
                 prior: PriorWalk | None = None) -> Walked:
    """Walk the project (or take over `prior`, a C walk of it already taken); stop after the stat records when they
    prove the project is still `expect`."""
    root = repo.project_root
    ignore = Ignore.load(root)
    if prior is not None and prior.root == str(root):
        scan_started, walked, digest = prior.scan_started, (prior.records, prior.flags), prior.digest
    else:
        scan_started = fs_clock(repo.dir / "tmp")  # before the first stat
        walked = native_walk(root, ignore)  # the C walk: one stat a file, in threads
        digest = tree_digest(walked[0]) if walked else None
    if expect is not None and untouched(cache, expect, settings, digest):
        return Walked(scan_started, followed=followed_symlinks(walked[1]), untouched=True)
    listed = _walk.names(walked[0]) if walked else None  # None: a name that is not UTF-8, which the scan reports
    if listed is None:  # no C walk, or it declined: the Python scan (which reports what it refuses)
        files = scan(root, ignore)
        return Walked(scan_started, None, files, followed=sum(1 for f in files if f.symlink))
    return Walked(scan_started, digest, native=(*walked, listed), prefix=f"{root}/",
                  followed=followed_symlinks(walked[1]))
