"""Durable file writes: temp file in the same directory, fsync, rename, fsync the directory; and a folder written
back while a restore or clone writes it (`Writeback`)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["Writeback", "atomic_write", "fsync_dir"]


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink inside `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Writeback:
    """The durability of a folder that is being written (a restore's or a clone's): syncfs(2) on its file system, which
    flushes that file system only, where sync(2) would flush every file system of the machine and wait for other
    processes' dirty data.

    One flush at the end alone waits for all of it: the kernel starts writing dirty pages back on its own only past
    a share of memory (`dirty_background_ratio`, 10%: 2.4 GB on a 24 GB machine) or once they are 30 s old
    (`dirty_expire_centisecs`), so a 730 MB restore stays in memory until that final flush. Here syncfs(2) runs
    every `interval` seconds in a thread while the writing goes on, so the disk works alongside, and once more in
    `finish()`, which then has little left to wait for. All of them go through one descriptor opened before the
    first write: syncfs reports a write-back error of the file system (Linux 5.8 and later; earlier kernels report
    none) only to descriptors opened before it happened, so an error of any moment is seen, even one of another
    writer on that file system; `finish()` raises the first.
    Where there is no syncfs (not Linux), `finish()` fsyncs every file and folder under the folder, and no thread runs.
    Use as a context manager around the writing, and call `finish()` at its end."""

    def __init__(self, path: Path, interval: float = 0.25) -> None:
        self.path, self.interval = path, interval
        self._syncfs = _syncfs()
        self._fd: int | None = None
        self._error: OSError | None = None
        self._thread = None

    def __enter__(self) -> Writeback:
        if self._syncfs is not None:
            import threading

            self._fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
            self._stop = threading.Event()
            thread = threading.Thread(target=self._run, name="pvc-writeback", daemon=True)
            try:
                thread.start()
            except BaseException:  # no thread to be had (or interrupted): nothing is held after the raise
                os.close(self._fd)
                self._fd = None
                raise
            self._thread = thread
        return self

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval) and self._error is None:
                self._sync()
        except Exception:  # (not expected) the flushing stops early; finish() still flushes all of it
            pass

    def _sync(self) -> None:
        if self._syncfs(self._fd) != 0 and self._error is None:
            import ctypes

            err = ctypes.get_errno()
            self._error = OSError(err, os.strerror(err), str(self.path))

    def _halt(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

    def finish(self) -> None:
        """Wait until everything written under the folder is durable; raise the first error any flush met. Inside
        the `with` block only."""
        self._halt()
        if self._syncfs is None:
            _fsync_tree(self.path)
            return
        if self._fd is None:
            raise RuntimeError("Writeback.finish() outside its with block")
        self._sync()
        if self._error is not None:
            raise self._error

    def __exit__(self, *exc) -> None:
        try:
            self._halt()
        finally:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


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
