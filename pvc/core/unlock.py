"""unlock: explain who holds the repository lock, and clear what a dead holder left.

The lock is an flock, which the kernel releases when its holder dies (even by SIGKILL), so in the normal case
there is nothing to clear: `unlock` says whether the lock is free or who holds it. `force` handles the two
leftovers of a dead holder:

- the lock is free but the file still names the dead holder: the file is emptied (taking the lock to do it);
- the lock is still held, but the holder it names ran on this host and its pid is gone: the flock is then held
  through another open file (a child process that inherited it) or the file system does not track flock
  holders. The lock file is removed, so the next writer locks a fresh one. A live holder, or one on another
  host (whose pid cannot be checked here), is never overridden.
"""

from __future__ import annotations

from pvc.record import record
from pvc.store.lock import LockStatus
from pvc.store.repository import Repository

__all__ = ["UnlockResult", "unlock"]


@record(frozen=True)
class UnlockResult:
    status: LockStatus  # as found, before any action
    action: str  # "none", "cleared" (stale holder info emptied) or "removed" (lock file deleted)
    message: str

    @property
    def held(self) -> bool:
        """Whether the lock is still held after this command."""
        return self.status.held and self.action != "removed"

    def to_json(self) -> dict:
        s = self.status
        return {"held": self.held, "was_held": s.held, "pid": s.pid, "host": s.host, "since": s.since,
                "alive": s.alive, "action": self.action, "message": self.message}


def unlock(repo: Repository, *, force: bool = False) -> UnlockResult:
    """Probe the lock and, with `force`, clear a dead holder's leftovers (see the module docstring)."""
    status = repo.lock_status()
    if not status.held:
        return _free(repo, status, force)
    if status.pid is None or status.alive is not False:
        return UnlockResult(status, "none", f"the lock is held by {status.holder}; a live lock is never removed"
                            " (wait for it, or stop that process)")
    if not force:
        return UnlockResult(status, "none", f"the lock is held, but its recorded holder, {status.holder}, is gone: "
                            "another process holds the lock file open, or this file system does not track flock "
                            "holders; if no pvc command is running, `pvc unlock --force` removes the lock file")
    repo.lock_path.unlink(missing_ok=True)
    return UnlockResult(status, "removed", f"removed the lock file left by {status.holder}; the next command "
                        "creates a fresh one")


def _free(repo: Repository, status: LockStatus, force: bool) -> UnlockResult:
    if status.pid is None:
        return UnlockResult(status, "none", "nobody holds the lock")
    if not force:
        return UnlockResult(status, "none", f"nobody holds the lock; {status.holder} died holding it and the "
                            "kernel released it, so the next command takes over")
    with repo.lock(timeout=0):  # released on exit, which empties the file
        pass
    return UnlockResult(status, "cleared", f"nobody holds the lock; cleared what {status.holder} left in the lock file")
