"""Durable file writes: temp file in the same directory, fsync, rename, fsync the directory; and a folder written
back while a restore or clone writes it (`Writeback`)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

__all__ = ["StoreFirst", "Writeback", "atomic_write", "boot_id", "fsync_dir", "mount_token", "sync_file_system",
           "synced_later"]

# The folders a StoreFirst is making durable as a whole, each hidden until its finish() (a clone's staging folder,
# renamed into sight only after that): a file or rename inside one needs no fsync of its own. A tuple replaced whole
# under the lock, so that threads read it without one.
_LATER: tuple[str, ...] = ()
_LATER_LOCK = threading.Lock()


def synced_later(path: Path | str) -> bool:
    """Whether `path` lies inside a folder a StoreFirst makes durable as a whole before anyone can see it: then its
    own fsync only costs time (one journal commit each) and is skipped."""
    if not _LATER:
        return False
    text = os.path.abspath(path)
    return any(text == root or text.startswith(root + os.sep) for root in _LATER)


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink inside `path` durable (at once, or by the StoreFirst that covers `path`)."""
    if not synced_later(path):
        _fsync_path(path, os.O_DIRECTORY)


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


class StoreFirst:
    """The durability of a clone: its store durable before the project appears, its checked-out files left to the
    kernel's write-back (as `git clone` leaves its checkout).

    `folder` is a hidden staging folder, renamed into sight after `finish()`; `store` the store folder inside it.
    From the `with` until `finish()` the store's own fsyncs are skipped (`synced_later`); `finish()` then fsyncs
    every file and folder under `store` at once from a few threads (the file system joins them into a few journal
    commits), and `folder` itself. The checked-out files are not waited for: a crash right after the clone can leave
    some of them short or empty on disk while the store holds every byte of them (`pvc status` names them, `pvc
    discard` writes them again). The stat cache the clone writes for them is kept as *unsynced* (docs/format.md,
    "Stat cache"): it vouches for nothing in another boot or another mount of the file system, and in that one only
    once `sync_file_system` has made the files durable. Linux only (`mount_token`, syncfs); elsewhere a clone syncs
    everything with `Writeback`."""

    def __init__(self, folder: Path, store: Path) -> None:
        self.folder, self.store = folder, store
        self._root: str | None = None

    def __enter__(self) -> StoreFirst:
        self._root = _cover(self.folder)
        return self

    def finish(self) -> None:
        """Make everything under the store durable, and the store's entry in the folder; the first failure raises."""
        self._root = _uncover(self._root)
        _fsync_tree(self.store, threads=8)
        fsync_dir(self.folder)

    def __exit__(self, *exc) -> None:
        self._root = _uncover(self._root)


def _cover(folder: Path) -> str:
    """Count `folder` among those whose store needs no fsync of its own (`synced_later`); its key for `_uncover`."""
    global _LATER
    root = os.path.abspath(folder)
    with _LATER_LOCK:
        _LATER = (*_LATER, root)
    return root


def _uncover(root: str | None) -> None:
    """Undo one `_cover` of `root` (nothing for None, or for a root no longer covered)."""
    global _LATER
    if root is None:
        return
    with _LATER_LOCK:
        if root in _LATER:
            found = list(_LATER)
            found.remove(root)
            _LATER = tuple(found)


def boot_id() -> str | None:
    """This boot's id (Linux: a random UUID the kernel makes at each boot), or None where there is none."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip() or None
    except OSError:
        return None


def mount_token(path: Path) -> str | None:
    """What tells files written under `path` in this mount of its file system in this boot from any other:
    "<boot id>/<mount id>". The mount id is statx(2)'s STATX_MNT_ID_UNIQUE where the kernel gives it (Linux 6.8 and
    later: 64 bits, never used twice in a boot), so a file system unmounted and mounted again in the same boot (a
    device that dropped) gets another; on older kernels, "m" and /proc/self/fdinfo's mnt_id, which a new mount may
    take over from one just gone (the check is then one of the boot, and of the mount only at best). None where
    neither can be read (not Linux): a stat cache kept for files not yet known durable is then not written."""
    boot = boot_id()
    if boot is None:
        return None
    unique = _unique_mount_id(path)
    if unique is not None:
        return f"{boot}/{unique}"
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        with open(f"/proc/self/fdinfo/{fd}", encoding="ascii") as f:
            mount = next((line.split()[1] for line in f if line.startswith("mnt_id:")), None)
    except (OSError, IndexError):
        mount = None
    finally:
        os.close(fd)
    return f"{boot}/m{mount}" if mount else None


_STATX_MNT_ID_UNIQUE = 0x4000
_AT_FDCWD = -100


def _unique_mount_id(path: Path) -> int | None:
    """statx(2)'s stx_mnt_id asked as STATX_MNT_ID_UNIQUE, or None where the C library or the kernel lacks it."""
    import ctypes
    import struct

    try:
        statx = ctypes.CDLL(None, use_errno=True).statx
    except (OSError, AttributeError):
        return None
    buffer = ctypes.create_string_buffer(256)  # struct statx
    if statx(_AT_FDCWD, os.fsencode(path), 0, _STATX_MNT_ID_UNIQUE, buffer) != 0:
        return None
    mask, = struct.unpack_from("<I", buffer, 0)  # stx_mask: what the kernel filled in
    if not mask & _STATX_MNT_ID_UNIQUE:
        return None
    mount, = struct.unpack_from("<Q", buffer, 144)  # stx_mnt_id
    return mount


def sync_file_system(*paths: Path) -> bool:
    """syncfs(2) on the file system holding each of `paths` (once each): what was written there is durable when it
    returns True; False where there is no syncfs or one failed. A failure is a write-back error the kernel
    reports (Linux 5.8 and later) to a descriptor opened before it happened: one that happened before this call
    opens its descriptor is not seen here, as it is not by any program that did not keep a descriptor open from the
    write on."""
    syncfs = _syncfs()
    if syncfs is None:
        return False
    synced: set[int] = set()  # devices done: one syncfs a file system (each may flush the device's cache)
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return False
        try:
            device = os.fstat(fd).st_dev
            if device not in synced:
                if syncfs(fd) != 0:
                    return False
                synced.add(device)
        finally:
            os.close(fd)
    return True


def _syncfs():
    """libc's syncfs, or None where there is none."""
    import ctypes  # here: only restore needs it

    try:
        return getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)
    except OSError:
        return None


def _fsync_tree(root: Path, threads: int = 1) -> None:
    """fsync every file and folder under `root` (the folders after their files), from `threads` threads."""
    files, folders = [], []
    for folder, _, names in os.walk(root, onerror=_raise):
        files += [os.path.join(folder, name) for name in names]
        folders.append(folder)
    if threads > 1 and len(files) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(_fsync_path, files))
            list(pool.map(_fsync_path, folders))
        return
    for path in [*files, *folders]:
        _fsync_path(path)


def _fsync_path(path: str | Path, flags: int = 0) -> None:
    fd = os.open(path, os.O_RDONLY | flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _raise(exc: OSError) -> None:
    raise exc


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
            if not synced_later(path):
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
