"""delete: take versions out of the history. A deleted version keeps its record (its number is never reused and
`log --all` shows it) with `deleted_at` set; it no longer lists, restores, or keeps objects alive, so the next
`gc` frees whatever only it needed. Its tags are removed with it.

Under the repository lock, so a concurrent commit either sees the version still there (and is compared with it,
or takes it as its parent) or deleted; gc, under the same lock, sees either state whole.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pvc.core.resolve import resolve_version
from pvc.errors import UsageError
from pvc.record import field, record, replace
from pvc.store.refs import RefsDoc
from pvc.store.repository import Repository

__all__ = ["DeleteResult", "delete_versions", "apply_deletion"]


@record(frozen=True)
class DeleteResult:
    applied: bool  # False: only what would be deleted
    versions: list[int]
    tags_removed: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"applied": self.applied, "versions": self.versions, "tags_removed": self.tags_removed}


def delete_versions(repo: Repository, names: list[str | int], *, apply: bool = False,
                    lock_timeout: float = 60.0) -> DeleteResult:
    """Delete the versions `names` designate (with `apply`; otherwise only say which, and which tags go)."""
    if not names:
        raise UsageError("name at least one version to delete")
    if not apply:
        refs = repo.refs.read()
        return _result(refs, _numbers(refs, names), applied=False)
    with repo.lock(lock_timeout):
        refs = repo.refs.read()
        numbers = _numbers(refs, names)
        repo.refs.write(apply_deletion(refs, numbers))
    return _result(refs, numbers, applied=True)


def apply_deletion(refs: RefsDoc, numbers: list[int]) -> RefsDoc:
    """The refs with `numbers` marked deleted now and their tags removed (the caller writes them under the lock)."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    gone = set(numbers)
    versions = tuple(replace(v, deleted_at=now) if v.number in gone else v for v in refs.versions)
    return replace(refs, versions=versions, tags={t: n for t, n in refs.tags.items() if n not in gone})


def _numbers(refs: RefsDoc, names: list[str | int]) -> list[int]:
    return sorted({resolve_version(refs.versions, name, refs.tags).number for name in names})


def _result(refs: RefsDoc, numbers: list[int], *, applied: bool) -> DeleteResult:
    return DeleteResult(applied, numbers, sorted(t for t, n in refs.tags.items() if n in set(numbers)))
