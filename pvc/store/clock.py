"""The file system's own clock, read without importing anything heavy: `pvc status` reads it before it starts the
C walk, and that happens before most of pvc is loaded (pvc/core/fastpath.py)."""

from __future__ import annotations

import os

__all__ = ["fs_clock"]


def fs_clock(directory: str | os.PathLike) -> int | None:
    """The file system's current time (the mtime a file created now gets), in ns; None where no file can be
    made (a read-only store, a full disk): the scan then has no racy cutoff, and nothing of it is saved. The file is
    `clock-<pid>-<random>` (a committer cleaning tmp/ leaves the file of a live process alone)."""
    for _ in range(8):
        name = os.path.join(directory, f"clock-{os.getpid()}-{os.urandom(6).hex()}")
        try:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            continue
        except OSError:
            return None
        try:
            return os.fstat(fd).st_mtime_ns
        finally:
            os.close(fd)
            try:
                os.unlink(name)
            except FileNotFoundError:  # a committer cleaning tmp/ got there first
                pass
    return None
