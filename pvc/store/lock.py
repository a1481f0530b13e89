"""The repository lock: one writer at a time, waiting up to a timeout.

An advisory `flock` on `.pvc/lock`: the kernel releases it when its holder dies, even by SIGKILL, so a
crash never leaves a lock that needs clearing by hand. The holder writes its pid, host and start time
into the file so a waiting process can say who it is waiting for. `lock_status` probes the lock without
waiting (for `pvc unlock`); a holder that died leaves its JSON behind, which the next holder sees in
`RepoLock.previous` and overwrites. Readers that need a store nobody changes for a moment (`verify` opening
its packs) take the same flock shared, writing nothing.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

from pvc.errors import Locked
from pvc.record import record

__all__ = ["LockStatus", "RepoLock", "lock_status", "pid_alive"]


class RepoLock:
    """Context manager: `with RepoLock(path, timeout=60): ...`.

    `shared=True` is the readers' lock (`verify`): many may hold it at once, a writer waits for all of them,
    and it writes nothing, so it works on a full disk and on a store the user may only read. Where the lock
    file does not exist and cannot be made (a read-only store), no writer can be at work and no lock is needed."""

    def __init__(self, path: Path, timeout: float = 60.0, poll: float = 0.05, *, shared: bool = False) -> None:
        self.path = path
        self.timeout = timeout
        self.poll = poll
        self.shared = shared
        self._fd: int | None = None
        self.previous: dict | None = None
        self.seen: os.stat_result | None = None  # the lock file as the last holder left it, read once the flock is
        # taken and before this holder writes to it (every writer writes it when it takes the lock and when it lets go)

    def __enter__(self) -> RepoLock:
        fd = self._open()
        if fd is None:
            return self
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = self.holder()
                    os.close(fd)
                    raise Locked(f"repository is locked by {holder} (waited {self.timeout:g} s; see --lock-timeout)") from None
                time.sleep(self.poll)
        self._fd = fd
        self.seen = os.fstat(fd)
        if not self.shared:
            self._record_holder()
        return self

    def _open(self) -> int | None:
        if not self.shared:
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            return os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            pass
        try:
            return os.open(self.path, os.O_RDONLY | os.O_CREAT, 0o644)
        except OSError:  # read-only or full: nobody can write this store now
            return None

    def _record_holder(self) -> None:
        """Write who holds the lock, for whoever waits; a failure (a full disk) lets the lock go again."""
        self.previous = _read_info(self._fd)  # non-empty only if the last holder died holding the lock
        info = {"pid": os.getpid(), "host": _host(), "since": datetime.now(UTC).isoformat(timespec="seconds")}
        try:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, json.dumps(info).encode(), 0)
        except OSError as exc:
            self.__exit__()
            raise OSError(exc.errno, exc.strerror, str(self.path)) from None

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            if not self.shared:
                os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def holder(self) -> str:
        """Who holds the lock, as written by the holder ("unknown" if it has not written yet)."""
        try:
            info = json.loads(self.path.read_text() or "{}")
            return f"pid {info['pid']} on {info['host']} since {info['since']}"
        except (OSError, ValueError, KeyError, TypeError):
            return "another process"


@record(frozen=True)
class LockStatus:
    """Who holds (or last held) the lock, as far as this host can tell."""

    held: bool  # some open file holds the flock right now
    pid: int | None = None  # as written by the holder (or by a holder that died holding it)
    host: str | None = None
    since: str | None = None
    alive: bool | None = None  # that pid runs on this host; None when it is on another host or unknown

    @property
    def holder(self) -> str:
        if self.pid is None:
            return "an unknown process"
        state = {True: "alive", False: "gone", None: "on another host: cannot check"}[self.alive]
        return f"pid {self.pid} on {self.host} since {self.since} ({state})"


def lock_status(path: Path) -> LockStatus:
    """Probe the lock without waiting: try the flock (and let it go at once), read what the holder wrote."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return LockStatus(held=False)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held = False
            fcntl.flock(fd, fcntl.LOCK_UN)
        except BlockingIOError:
            held = True
        info = _read_info(fd) or {}
    finally:
        os.close(fd)
    pid, host = info.get("pid"), info.get("host")
    alive = pid_alive(pid) if isinstance(pid, int) and host == _host() else None
    return LockStatus(held, pid if isinstance(pid, int) else None, host, info.get("since"), alive)


def _host() -> str:
    """This machine's name, as gethostname(2) gives it (uname's nodename: no import of socket, ~3 ms, for it)."""
    return os.uname().nodename


def _read_info(fd: int) -> dict | None:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"null")
    except ValueError:
        return None
    return info if isinstance(info, dict) else None


def pid_alive(pid: int) -> bool:
    """Whether process `pid` runs on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True
