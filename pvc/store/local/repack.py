"""Repacking: which packs hold objects nobody needs, and rewriting them without ever losing a live one.

The caller (gc, holding the repository lock) says which objects are live. A pack with no live object is
deleted; a pack that is mostly dead has its live records copied, unchanged and re-hashed, into new packs.
Packs younger than the grace period are left alone. The order makes every crash harmless:

1. new packs are written under `tmp/`, fsynced and renamed into `packs/` (a crash: unindexed packs, invisible);
2. one new index naming every surviving record is written atomically (a crash: the old indexes still name
   the old packs, which are all still there; an object named twice is fine);
3. the old index files are deleted, then the old packs (a crash: old packs that no index names, invisible;
   the next gc deletes them).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from pvc.errors import CorruptObject
from pvc.record import field, record
from pvc.store.atomic import fsync_dir
from pvc.store.local.packcheck import check_record
from pvc.store.local.packindex import write_index
from pvc.store.local.packs import PACK_MAGIC, RECORD, Location, PackWriter, Record

if TYPE_CHECKING:
    from pvc.store.local.packstore import PackStore

__all__ = ["REWRITE_DEAD_FRACTION", "SMALL_PACK", "PackUsage", "RepackPlan", "plan_repack", "repack"]

REWRITE_DEAD_FRACTION = 0.25  # rewrite a pack once a quarter of its bytes are dead
SMALL_PACK = 1 << 20  # ... or, for packs under 1 MiB, as soon as anything in it is dead (cheap, merges them)


@record
class PackUsage:
    """One pack: its size and the live records whose copy the store reads (first index hit)."""

    pack: bytes
    size: int
    mtime: float
    indexed: bool
    live: list[tuple[bytes, Location]] = field(default_factory=list)
    dead_objects: int = 0

    @property
    def live_bytes(self) -> int:
        return sum(RECORD.size + loc.stored_len for _, loc in self.live)

    @property
    def dead_bytes(self) -> int:
        return max(0, self.size - len(PACK_MAGIC) - self.live_bytes)


@record(frozen=True)
class RepackPlan:
    packs: list[PackUsage]
    delete: list[PackUsage]  # nothing live in them
    rewrite: list[PackUsage]  # live records copied to new packs, then deleted
    young: list[PackUsage]  # inside the grace period: untouched whatever they hold

    @property
    def objects_dropped(self) -> int:
        return sum(u.dead_objects for u in self.delete + self.rewrite)

    @property
    def bytes_freed(self) -> int:
        return sum(u.size for u in self.delete) + sum(u.dead_bytes for u in self.rewrite)


def plan_repack(store: PackStore, live: set[bytes], *, keep_newer_than: float) -> RepackPlan:
    """Sort every pack on disk into kept, deleted and rewritten, given the live ids and a grace cutoff (mtime)."""
    usage: dict[bytes, PackUsage] = {}
    for path in sorted(store.packs_dir.glob("*.pack")):
        try:
            pack, st = bytes.fromhex(path.stem), path.stat()
        except (ValueError, FileNotFoundError):
            continue
        usage[pack] = PackUsage(pack, st.st_size, st.st_mtime, indexed=False)
    for idx in store.indexes:
        for oid, loc in idx:
            u = usage.get(loc.pack)
            if u is None:
                continue  # a pack named by an index but gone: verify reports it; nothing to delete
            u.indexed = True
            canonical = store.locate(oid)
            if oid in live and (canonical.pack, canonical.offset) == (loc.pack, loc.offset):
                u.live.append((oid, loc))
            else:
                u.dead_objects += 1
    packs = list(usage.values())
    young = [u for u in packs if u.mtime > keep_newer_than]
    old = [u for u in packs if u.mtime <= keep_newer_than]
    delete = [u for u in old if not u.live]
    rewrite = [u for u in old if u.live and u.dead_bytes and _mostly_dead(u)]
    return RepackPlan(packs, delete, rewrite, young)


def _mostly_dead(u: PackUsage) -> bool:
    return u.dead_bytes >= REWRITE_DEAD_FRACTION * u.size or u.size < SMALL_PACK


def repack(store: PackStore, plan: RepackPlan) -> int:
    """Carry out `plan` (caller holds the lock); return how many new packs were written."""
    if not plan.delete and not plan.rewrite:
        return 0
    writer = PackWriter(store.tmp_dir, store.pack_size)
    try:
        for u in plan.rewrite:
            for oid, loc in u.live:
                _, stored = store.read_record(oid)
                problem = check_record(stored, Record(oid, loc.codec, loc.raw_len, loc.stored_len, loc.offset), store.dictionary_by_ref)
                if problem:
                    raise CorruptObject(f"object {oid.hex()}: {problem}; gc stopped and changed nothing (run `pvc verify`)")
                writer.append(oid, loc.codec, loc.raw_len, stored)
        sealed = writer.seal_all()
        for tmp, pack_id, _ in sealed:
            os.replace(tmp, store.pack_path(pack_id))
        if sealed:
            fsync_dir(store.packs_dir)
        published = [(pack_id, records) for _, pack_id, records in sealed]
    except BaseException:
        writer.abort()
        raise
    # A pack is named by its content, so a new pack can be byte-identical to one being dropped (a killed gc left
    # a copy of the same live records): that name now holds live data and must not be deleted.
    gone = {u.pack for u in plan.delete + plan.rewrite} - {pack for pack, _ in published}
    entries = [(oid, loc.pack, loc.offset, loc.stored_len, loc.raw_len, loc.codec)
               for idx in store.indexes for oid, loc in idx if loc.pack not in gone]
    entries += [(oid, pack, off, slen, rlen, codec) for pack, records in published for oid, off, slen, rlen, codec in records]
    new_index = write_index(store.packs_dir, entries)
    for idx in store.indexes:
        if idx.path != new_index:
            idx.path.unlink(missing_ok=True)
    fsync_dir(store.packs_dir)
    for pack in gone:
        store.close_pack(pack)
        try:
            os.unlink(store.pack_path(pack))
        except FileNotFoundError:
            pass
    fsync_dir(store.packs_dir)
    store.reload()
    return len(published)
