"""Creating the files of a restore: a batch at a time, each file created exclusively in a fresh folder.

`FileWriter(folder).write([(path, data, mode), ...])` creates each file under `folder` (O_CREAT | O_EXCL |
O_NOFOLLOW: an existing file or a symbolic link at that path is an error), writes it whole and closes it. With
pvc/_files.c built, the loop over a batch runs in C without the GIL, so restore's worker threads create files on
both cores at once; without it, the same loop runs here, with the same results.

A file is created with its final mode, and its mode is set again (fchmod) only where the process's umask would
strip some of its bits: one system call per file saved in the usual case (umask 022, modes 644 and 755).

The files are left to the kernel's writeback; restore and clone sync their folder once, before renaming it into
place. (Starting each file's writeback at once, sync_file_range without waiting, was tried and dropped: on new ext4
file systems it made a 20k-item restore 4% slower and a clone 12% slower, its block allocation paid in the writing
threads.)
"""

from __future__ import annotations

import os
from pathlib import Path

try:  # built from pvc/_files.c at install; without it the loop below does the same, holding the GIL
    from pvc import _files
except ImportError:  # pragma: no cover - depends on the build
    _files = None

__all__ = ["FileWriter", "NATIVE_WRITES"]

NATIVE_WRITES = _files is not None
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def process_umask() -> int | None:
    """The process's umask, read without changing it (Linux ≥ 4.7 shows it in /proc/self/status); None where it
    cannot be read, and then every file's mode is set after creation."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return None


_STATS: list[bool] = []  # whether this build of pvc._files gives the stats of what it writes, once asked


def _native_stats() -> bool:
    if not _STATS:
        try:
            _STATS.append(_files.write_files(-1, [], []) is None)
        except TypeError:  # built before the third argument existed
            _STATS.append(False)
    return _STATS[0]


class FileWriter:
    """Creates files under one folder, which stays open (its descriptor) while the writer lives."""

    def __init__(self, folder: Path, *, native: bool = NATIVE_WRITES):
        self.folder = folder
        self._fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._umask = process_umask()
        self._native = native and _files is not None

    def write(self, files: list[tuple[str, bytes | memoryview, int]], stats: list | None = None) -> None:
        """Create and write each (path relative to the folder, content, permission bits); the first failure raises
        its OSError (naming the file), and the files after it are not written. Given a list `stats`, appends the
        (size, mtime_ns, inode, ctime_ns) of each file written, in order, as it was once written."""
        rows = [(os.fsencode(path), data, mode & 0o7777, self._umask is None or bool(mode & self._umask))
                for path, data, mode in files]
        if self._native and (stats is None or _native_stats()):
            # (stats passed only when asked: an extension built before they existed takes two arguments, and the
            # Python loop below gives them then)
            failed = _files.write_files(self._fd, rows) if stats is None else _files.write_files(self._fd, rows, stats)
            if failed is not None:
                at, err = failed
                raise OSError(err, os.strerror(err), str(self.folder / files[at][0]))
            return
        for path, data, mode, fix in rows:
            self._write_one(path, data, mode, fix, stats)

    def _write_one(self, path: bytes, data: bytes | memoryview, mode: int, fix: bool, stats: list | None = None
                   ) -> None:
        try:
            fd = os.open(path, _FLAGS, mode, dir_fd=self._fd)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(self.folder / os.fsdecode(path))) from None
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if fix:
                os.fchmod(fd, mode)
            if stats is not None:
                st = os.fstat(fd)
                stats.append((st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns))
        finally:
            os.close(fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> FileWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
