"""The repository lock: one writer at a time, waiting up to a timeout.

An advisory `flock` on `.pvc/lock`: the kernel releases it when its holder dies, even by SIGKILL, so a
crash never leaves a lock that needs clearing by hand. The holder writes its pid, host and start time
into the file so a waiting process can say who it is waiting for.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from datetime import UTC, datetime
from pathlib import Path

from pvc.errors import Locked

__all__ = ["RepoLock"]


class RepoLock:
    """Context manager: `with RepoLock(path, timeout=60): ...`."""

    def __init__(self, path: Path, timeout: float = 60.0, poll: float = 0.05) -> None:
        self.path = path
        self.timeout = timeout
        self.poll = poll
        self._fd: int | None = None

    def __enter__(self) -> RepoLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = self.holder()
                    os.close(fd)
                    raise Locked(f"repository is locked by {holder} (waited {self.timeout:g} s; see --lock-timeout)") from None
                time.sleep(self.poll)
        self._fd = fd
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": datetime.now(UTC).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
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
