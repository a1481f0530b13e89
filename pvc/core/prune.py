"""prune: delete every version that no keep rule keeps, as `delete` does (pvc/core/delete.py): the newest N,
the tagged ones, those created within a duration. A version kept by any rule stays; `gc` then frees the rest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pvc.core.delete import apply_deletion
from pvc.core.when import parse_record_time
from pvc.errors import UsageError
from pvc.record import field, record
from pvc.store.refs import RefsDoc
from pvc.store.repository import Repository

__all__ = ["PruneResult", "prune"]


@record(frozen=True)
class PruneResult:
    dry_run: bool
    deleted: list[int]
    kept: list[int]
    tags_removed: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"dry_run": self.dry_run, "deleted": self.deleted, "kept": self.kept, "tags_removed": self.tags_removed}


def prune(repo: Repository, *, keep_last: int | None = None, keep_tagged: bool = False,
          keep_within: float | None = None, dry_run: bool = False, lock_timeout: float = 60.0,
          now: datetime | None = None) -> PruneResult:
    """Delete the versions no rule keeps (`keep_within` in seconds); with `dry_run`, only say which."""
    if keep_last is None and keep_within is None and not keep_tagged:
        raise UsageError("say what to keep: --keep-last N, --keep-within DURATION and/or --keep-tagged")
    if keep_last is not None and keep_last < 1:
        raise UsageError("--keep-last must be 1 or more")
    cutoff = (now or datetime.now(UTC)) - timedelta(seconds=keep_within) if keep_within is not None else None
    with repo.lock(lock_timeout):
        refs = repo.refs.read()
        kept = _kept(refs, keep_last, keep_tagged, cutoff)
        doomed = [v.number for v in refs.versions if not v.deleted and v.number not in kept]
        if doomed and not dry_run:
            repo.refs.write(apply_deletion(refs, doomed))
    tags_removed = sorted(t for t, n in refs.tags.items() if n in set(doomed))
    return PruneResult(dry_run, doomed, sorted(kept), tags_removed)


def _kept(refs: RefsDoc, keep_last: int | None, keep_tagged: bool, cutoff: datetime | None) -> set[int]:
    live = [v for v in refs.versions if not v.deleted]
    kept = {v.number for v in live[-keep_last:]} if keep_last else set()
    if keep_tagged:
        kept |= set(refs.tags.values())
    if cutoff is not None:
        for v in live:
            created = parse_record_time(v.created_at)
            if created is None or created >= cutoff:  # a date that does not parse is never a reason to delete
                kept.add(v.number)
    return kept
