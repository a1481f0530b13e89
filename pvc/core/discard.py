"""discard: put the working project back to the latest version, after saving what was there.

Before any file is touched, the outstanding state is committed to the store as a *saved state* (objects
plus a small record under `.pvc/stash/`, not a numbered version), so `pvc discard --undo` can bring it
back byte for byte; a file a commit would refuse (a malformed annotation) is saved as it is, and put back. The tree is then changed file by file: added files removed, modified and removed
files written back (each through a temp file and a rename, never in place).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from pvc.core.capture import capture
from pvc.core.diff import diff_snapshots
from pvc.core.snapshot import FileEntry, Snapshot, make_dirs
from pvc.core.status import working_snapshot
from pvc.errors import UsageError
from pvc.record import field, record
from pvc.store.repository import Repository

__all__ = ["DiscardResult", "discard", "undo_discard"]


@record
class DiscardResult:
    applied: bool
    saved_state: str | None  # the stash record's name, when one was written
    restored: list[str] = field(default_factory=list)  # written back from the target
    removed: list[str] = field(default_factory=list)  # deleted from the working tree
    changes: dict | None = None  # the status-style report of what is (or was) outstanding

    def to_json(self) -> dict:
        return {"applied": self.applied, "saved_state": self.saved_state, "restored": self.restored,
                "removed": self.removed, "changes": self.changes,
                "undo": "pvc discard --undo" if self.applied and self.saved_state else None}


def discard(repo: Repository, *, apply: bool = False, lock_timeout: float = 60.0) -> DiscardResult:
    """Without `apply`, report what would change; with it, save the outstanding state and revert."""
    latest = repo.latest()
    if latest is None:
        raise UsageError("nothing to discard to: no versions yet (run `pvc commit`)")
    if not apply:
        working, cap = working_snapshot(repo, latest.manifest, from_change=True)
        base = Snapshot(repo.store, bytes.fromhex(latest.manifest))
        report = diff_snapshots(base, working, source=latest.number, target="working", invalid=cap.invalid)
        restore, remove = _plan(base, working)
        return DiscardResult(False, None, restore, remove, report)
    with repo.lock_with_sources(lock_timeout):  # it stores objects as commit does
        repo.clean_tmp()
        return _switch(repo, bytes.fromhex(latest.manifest), base=latest.number)


def undo_discard(repo: Repository, *, lock_timeout: float = 60.0) -> DiscardResult:
    """Bring back the most recent saved state (saving the current one first if it has outstanding changes)."""
    with repo.lock_with_sources(lock_timeout):  # it stores objects as commit does
        repo.clean_tmp()
        states = repo.saved_states.list()
        if not states:
            raise UsageError("no saved state to bring back (nothing was discarded)")
        last = states[-1]
        latest = repo.latest()
        result = _switch(repo, bytes.fromhex(last.manifest), base=latest.number if latest else None,
                         save_only_if_dirty_against=latest.manifest if latest else None, undo=True)
        repo.saved_states.drop(last.name)
        return result


def _switch(repo: Repository, target_id: bytes, *, base: int | None,
            save_only_if_dirty_against: str | None = None, undo: bool = False) -> DiscardResult:
    """Save the working state in the store, then make the working tree equal to `target_id`.

    The report says what is discarded (base version -> working) or, for an undo, what comes back
    (working -> saved state)."""
    store = repo.reopen_store()
    try:
        cap = capture(repo, store, report_invalid=True)  # a broken file is saved too, and then put back
        repo.prepare_publish(store)
        store.flush()
    except BaseException:
        store.abort()
        raise
    current = Snapshot(store, cap.manifest_id)
    target = Snapshot(store, target_id)
    if undo:
        report = diff_snapshots(current, target, source="working", target="saved state")
    else:
        report = diff_snapshots(target, current, source=base, target="working", invalid=cap.invalid)
    saved = None
    dirty = cap.manifest_id.hex() != (save_only_if_dirty_against or target_id.hex())
    if cap.manifest_id != target_id and dirty:
        saved = repo.saved_states.save(cap.manifest_id, base)
    restored, removed = _plan(target, current)
    _apply(repo.project_root, store, target, restored, removed)
    return DiscardResult(True, saved, restored, removed, report)


def _plan(target: Snapshot, current: Snapshot) -> tuple[list[str], list[str]]:
    """Paths to write back from `target`, and paths of the working tree to remove."""
    want = {e.path: e for e in target.files()}
    have = {e.path: e for e in current.files()}
    restore = sorted(p for p, e in want.items() if p not in have or (have[p].oid, have[p].mode) != (e.oid, e.mode))
    remove = sorted(p for p in have if p not in want)
    return restore, remove


def _apply(root: Path, store, target: Snapshot, restore: list[str], remove: list[str]) -> None:
    """Removals first (a file may have to make way for a folder), then writes through temp files."""
    for rel in remove:
        (root / rel).unlink(missing_ok=True)
    _prune_empty_dirs(root, remove)
    wanted = set(restore)
    entries: dict[str, FileEntry] = {e.path: e for e in target.files() if e.path in wanted}
    make_dirs(root, restore)
    for rel in restore:
        entry = entries[rel]
        path = root / rel
        tmp = path.with_name(f".{path.name}.pvc-{uuid.uuid4().hex[:8]}")
        try:
            with open(tmp, "xb") as out:
                store.write_to(entry.oid, out)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, entry.mode)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def _prune_empty_dirs(root: Path, removed: list[str]) -> None:
    for rel in sorted({os.path.dirname(r) for r in removed}, key=len, reverse=True):
        d = root / rel
        while rel and d != root:
            try:
                d.rmdir()
            except OSError:  # not empty (or already gone): stop climbing
                break
            rel = os.path.dirname(rel)
            d = root / rel
