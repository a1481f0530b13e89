"""gc: drop the objects that no version (and no saved state, nor any project restored from this one) needs,
rewriting packs that are mostly dead.

Under the exclusive repository lock: mark every object reachable from every root (`reach.py`) and from every
linked project (`lineage.py`: their commits hold this lock too, so none runs meanwhile), then let the store delete
packs with nothing live and rewrite mostly-dead ones (`store/repack.py`, crash-safe order), and remove the
temporary files of writers that are gone (a killed commit's temporary packs can be large). Deleted versions are
no roots: what only they reached goes.
Packs younger than the grace period are never touched, so objects a writer has just published survive even
where the lock cannot be trusted (a file system that does not honour flock). gc refuses to delete anything
when a root cannot be walked completely: a damaged tree could name objects that would look unreferenced.
"""

from __future__ import annotations

import time

from pvc.core.lineage import LinkedState, walk_linked
from pvc.core.reach import Walker, extra_roots, version_roots
from pvc.errors import CorruptObject
from pvc.record import field, record
from pvc.store.repository import Repository

__all__ = ["DEFAULT_GRACE", "GcResult", "gc"]

DEFAULT_GRACE = 3600.0


@record(frozen=True)
class GcResult:
    dry_run: bool
    versions: int
    roots: int  # versions plus saved states
    reachable: int  # objects reachable from the roots
    packs_before: int
    packs_deleted: int
    packs_rewritten: int
    packs_written: int
    packs_kept_young: int
    objects_dropped: int
    bytes_before: int
    bytes_freed: int
    temp_files_removed: int  # 0 with dry_run
    temp_files: int  # temporary files of writers that are gone, found (and, without dry_run, removed)
    temp_bytes: int  # their size
    linked: list[LinkedState] = field(default_factory=list)  # projects restored from this store, as gc found them

    def to_json(self) -> dict:
        return {"dry_run": self.dry_run, "versions": self.versions, "roots": self.roots, "reachable": self.reachable,
                "packs": {"before": self.packs_before, "deleted": self.packs_deleted, "rewritten": self.packs_rewritten,
                          "written": self.packs_written, "kept_young": self.packs_kept_young},
                "objects_dropped": self.objects_dropped, "bytes_before": self.bytes_before,
                "bytes_freed": self.bytes_freed, "temp_files_removed": self.temp_files_removed,
                "temp_files": self.temp_files, "temp_bytes": self.temp_bytes,
                "linked": [s.to_json() for s in self.linked]}


def gc(repo: Repository, *, dry_run: bool = False, grace: float = DEFAULT_GRACE, lock_timeout: float = 60.0,
       now: float | None = None) -> GcResult:
    """Collect garbage; with `dry_run`, only say what would go."""
    with repo.lock(lock_timeout):
        store = repo.reopen_store()
        versions = version_roots(repo)
        roots = versions + extra_roots(repo)
        walker = Walker(store, check_blobs=False)
        for root in roots:
            damage = walker.walk(root)
            if damage:
                d = damage[0]
                raise CorruptObject(f"gc refuses to run: {d.root} cannot be walked ({d.kind} {d.oid.hex()}: {d.what}); "
                                    f"nothing was deleted (run `pvc verify`)")
        needed, linked = walk_linked(repo, drop=not dry_run)
        # zstd dictionaries are kept whatever the walk reached: records of live objects name them (docs/format.md)
        dictionaries = set(store.dictionary_ids(alternates=False))
        plan = store.plan_repack(walker.reached | needed | dictionaries, keep_newer_than=(time.time() if now is None else now) - grace)
        temporaries = [size for _, size in repo.stale_temporaries()]
        written, removed = 0, 0
        if not dry_run:
            removed = repo.clean_tmp()
            written = store.repack(plan)
    return GcResult(dry_run, len(versions), len(roots), len(walker.reached), len(plan.packs), len(plan.delete),
                    len(plan.rewrite), written, len(plan.young), plan.objects_dropped,
                    sum(u.size for u in plan.packs), plan.bytes_freed, removed, len(temporaries), sum(temporaries),
                    linked)
