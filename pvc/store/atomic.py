"""Durable file writes: temp file in the same directory, fsync, rename, fsync the directory."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["atomic_write", "fsync_dir", "sync_filesystem"]


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink inside `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_filesystem(path: Path) -> None:
    """Make everything written under `path` durable: syncfs(2) on its file system (Linux), which flushes that file
    system only, where sync(2) would flush every file system of the machine and wait for other processes' dirty
    data; elsewhere, fsync every file and folder under `path`."""
    syncfs = _syncfs()
    if syncfs is None:
        _fsync_tree(path)
        return
    import ctypes

    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(path))
    finally:
        os.close(fd)


def _syncfs():
    """libc's syncfs, or None where there is none."""
    import ctypes  # here: only restore needs it

    try:
        return getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)
    except OSError:
        return None


def _fsync_tree(root: Path) -> None:
    for folder, _, names in os.walk(root):
        for name in names:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(folder))


def atomic_write(path: Path, data: bytes | list) -> None:
    """Replace `path` with `data` (bytes, or a list of bytes-like parts written one after another, so that a large
    file made of parts needs no joined copy) so that a crash leaves either the old or the new content, never a mix."""
    import tempfile  # ~3 ms (shutil, random): the commands that only read never write a file

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; store files are as readable as the project
        with os.fdopen(fd, "wb") as f:
            for part in (data if isinstance(data, list) else (data,)):
                f.write(part)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    fsync_dir(path.parent)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
