"""repair: the two recoveries a damaged store may need, each under the repository lock.

- `repair_index`: every pack record names its object, so the index can be rebuilt from the packs alone. Each
  record is re-hashed; records whose content is damaged are left out (their objects then read as missing, and
  `restore --skip-missing` skips exactly their items). The new index is written before the old ones are removed.
- `repair_refs`: a damaged refs file is replaced by `versions.bak` (the refs as they were before the last
  commit); the damaged file is kept aside as `versions.damaged-<time>`, and the version it had beyond the
  backup is named when its text still shows it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from pvc.errors import CorruptObject
from pvc.record import record
from pvc.store.repository import Repository

__all__ = ["IndexRepair", "RefsRepair", "repair_index", "repair_refs"]


@record(frozen=True)
class IndexRepair:
    packs: int
    objects: int  # records indexed
    damaged: int  # records left out: their content does not match their id
    replaced: int  # index files removed

    def to_json(self) -> dict:
        return {"packs": self.packs, "objects": self.objects, "damaged": self.damaged, "replaced": self.replaced}


@record(frozen=True)
class RefsRepair:
    versions: int  # versions after the repair
    repaired: bool  # False: the refs file was fine, nothing was done
    damaged_copy: str | None = None
    lost: dict | None = None  # number, title, manifest of the version the backup lacks, if still legible

    def to_json(self) -> dict:
        return {"versions": self.versions, "repaired": self.repaired, "damaged_copy": self.damaged_copy,
                "lost": self.lost}


def repair_index(repo: Repository, *, lock_timeout: float = 60.0) -> IndexRepair:
    """Replace every index file by one rebuilt from the packs."""
    with repo.lock(lock_timeout):
        repo.clean_tmp()
        done = repo.reopen_store(strict_indexes=False).rebuild_index()
        repo.reopen_store()
    return IndexRepair(done.packs, done.objects, done.damaged, done.replaced)


def repair_refs(repo: Repository, *, lock_timeout: float = 60.0) -> RefsRepair:
    """Put `versions.bak` back in place of a damaged `versions` (a sound refs file is left alone)."""
    refs = repo.refs
    with repo.lock(lock_timeout):
        try:
            return RefsRepair(len(refs.read().versions), repaired=False)
        except CorruptObject:
            pass
        if not refs.has_backup():
            raise CorruptObject(f"{refs.path} is damaged and there is no {refs.backup.name} to recover from "
                                "(see docs/reliability.md, 'Recovering refs')")
        try:
            good = refs.read_backup()
        except CorruptObject:
            raise CorruptObject(f"{refs.path} and {refs.backup.name} are both damaged (see docs/reliability.md, 'Recovering refs')") from None
        aside = refs.path.with_name(f"versions.damaged-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}")
        damaged = refs.put_backup_back(aside)
    return RefsRepair(len(good.versions), True, str(aside), _lost_version(damaged, len(good.versions)))


def _lost_version(damaged: bytes, kept: int) -> dict | None:
    """The record after the last kept one, if the damaged text still parses that far."""
    try:
        record = json.loads(damaged)["versions"][kept]
        return {"number": int(record["number"]), "title": str(record["title"]), "manifest": str(record["manifest"])}
    except (ValueError, KeyError, IndexError, TypeError):
        return None
