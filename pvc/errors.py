"""One error hierarchy for pvc; the CLI maps each class to an exit code (docs/cli.md)."""

from __future__ import annotations

__all__ = [
    "PvcError",
    "UsageError",
    "NotAProject",
    "VersionNotFound",
    "BadInput",
    "TooManyFiles",
    "ObjectMissing",
    "CorruptObject",
    "Locked",
    "RemoteConflict",
    "RemoteError",
]


class PvcError(Exception):
    """Base of every error pvc raises on purpose; `str(err)` is the one-line message."""

    exit_code = 1


class UsageError(PvcError):
    """A bad argument: an unknown option value, a target that exists, a conflicting flag."""


class NotAProject(PvcError):
    """The directory has no `.pvc/` store (or it is not a directory)."""


class VersionNotFound(PvcError):
    """A version name matches no version, or a hash prefix matches several."""


class BadInput(PvcError):
    """A file of the project (or an argument file) that pvc cannot accept, with where and why."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        shown = self.path if len(self.path) <= 300 else f"{self.path[:140]}...{self.path[-140:]}"
        super().__init__(f"{shown}: {reason}")

    def __reduce__(self):  # raised in a worker process, re-raised in the parent
        return (type(self), (self.path, self.reason))


class TooManyFiles(PvcError):
    """More files must stay open at once than the process may open, its soft limit raised to the hard one."""


class ObjectMissing(PvcError):
    """An object a version needs is not in the store."""

    exit_code = 2


class CorruptObject(PvcError):
    """An object, pack, index or refs file whose bytes do not check out."""

    exit_code = 2


class Locked(PvcError):
    """Another process holds the repository lock past the timeout."""

    exit_code = 3


class RemoteConflict(PvcError):
    """The remote holds versions this project does not have yet: `pvc pull`, then push again."""

    exit_code = 4


class RemoteError(PvcError):
    """A remote that cannot be used: unreachable after retries, access denied, no such bucket, not a pvc remote."""

    exit_code = 5
