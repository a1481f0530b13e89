"""Checking the local store's files: every pack read once, every index entry matched with its record.

`check_packs` is the store's half of `pvc verify`: it says which objects have no good copy (their readable copy
is damaged, or the index points at nothing), and what is wrong with packs and index files themselves. Which
versions and items that takes away is the walk's business (pvc/core/reach.py), not the store's.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from pvc.record import field, record
from pvc.store.local.packcheck import check_pack

if TYPE_CHECKING:
    from pvc.store.local.packstore import PackStore

__all__ = ["PackScan", "StoreProblem", "check_packs"]


@record(frozen=True)
class StoreProblem:
    """Damage of a store file itself: subject "pack <id>" or "index <file>"."""

    subject: str
    kind: str  # "pack" or "index"
    what: str


@record
class PackScan:
    packs: int = 0
    indexes: int = 0
    records: int = 0
    hashed: int = 0
    bytes: int = 0
    unindexed: int = 0  # records no index names (left by a killed commit or gc)
    bad: dict[bytes, str] = field(default_factory=dict)  # object -> why the copy the store reads is bad
    problems: list[StoreProblem] = field(default_factory=list)


def check_packs(store: PackStore, packs: list[bytes], sample: float, rng: random.Random) -> PackScan:
    scan = PackScan(packs=len(packs), indexes=len(store.indexes) + len(store.damaged_indexes))
    for path, why in store.damaged_indexes:
        scan.problems.append(StoreProblem(f"index {path.name}", "index", why))
    for idx in store.indexes:
        if not idx.name_matches():
            scan.problems.append(StoreProblem(f"index {idx.path.name}", "index", "file name does not match its content"))
    entries = _entries_by_pack(store)
    for pack in sorted(set(packs) | set(entries)):
        named = entries.get(pack, {})
        if pack not in packs:
            scan.problems.append(StoreProblem(f"pack {pack.hex()}", "pack", f"missing (an index names {len(named)} object(s) in it)"))
            for offset, (oid, *_rest) in named.items():
                _blame(store, scan, oid, pack, offset, "missing: its pack is gone")
            continue
        with store.pack_file(pack) as fd:
            check = check_pack(store.pack_path(pack), fd=fd, sample=sample, rng=rng, dictionary=store.dictionary_by_ref)
        scan.records += len(check.records)
        scan.hashed += check.checked
        scan.bytes += check.size
        for offset, what in check.damage:
            scan.problems.append(StoreProblem(f"pack {pack.hex()}", "pack", f"{what} at offset {offset}"))
        if check.name_ok is False:
            scan.problems.append(StoreProblem(f"pack {pack.hex()}", "pack", "file content does not match its name (some byte changed)"))
        found = {r.offset: r for r in check.records}
        scan.unindexed += sum(1 for offset in found if offset not in named)
        for offset, (oid, codec, stored_len, raw_len) in named.items():
            rec = found.get(offset)
            if rec is None or (rec.oid, rec.codec, rec.stored_len, rec.raw_len) != (oid, codec, stored_len, raw_len):
                why = f"the index points at offset {offset} of pack {pack.hex()[:12]}, where no matching record is"
            elif offset in check.bad:
                why = f"{check.bad[offset]} (pack {pack.hex()[:12]}, offset {offset})"
            else:
                continue
            _blame(store, scan, oid, pack, offset, why)
    return scan


def _entries_by_pack(store: PackStore) -> dict[bytes, dict[int, tuple]]:
    entries: dict[bytes, dict[int, tuple]] = {}
    for idx in store.indexes:
        for oid, loc in idx:
            entries.setdefault(loc.pack, {})[loc.offset] = (oid, loc.codec, loc.stored_len, loc.raw_len)
    return entries


def _blame(store: PackStore, scan: PackScan, oid: bytes, pack: bytes, offset: int, why: str) -> None:
    """A bad copy makes the object bad if it is the copy the store reads; else it is a problem of the pack."""
    loc = store.locate(oid)
    if loc is not None and (loc.pack, loc.offset) == (pack, offset):
        scan.bad[oid] = why
    else:
        scan.problems.append(StoreProblem(f"pack {pack.hex()}", "pack",
                                          f"an unused second copy of object {oid.hex()} is damaged: {why}"))
