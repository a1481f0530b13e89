"""verify: check a whole store and say, for each problem, which versions and items it takes away.

1. Under the readers' (shared) lock, briefly: read the refs (falling back to `versions.bak` to find roots if they are damaged),
   open the index files (a damaged one is a problem, not a stop) and open every pack, so that neither a commit
   nor a gc running meanwhile changes what is being checked.
2. Read every pack once, front to back: every record re-hashed (or a random sample), the pack's name checked
   against its bytes, and every index entry checked against the record header it points at.
3. Walk every root (`reach.py`): manifest -> trees -> pages -> blobs -> chunks, every reference resolved.

Objects that no root reaches ("orphans", left by killed commits) are counted, not reported: gc removes them; so
are the temporary files of writers that are gone (a killed commit's temporary packs), found under the lock.
Problems of `.pvc/config` (a key pvc does not know, a value it cannot use) are reported too: every other command
stops on them.
"""

from __future__ import annotations

import random
from contextlib import ExitStack

from pvc.core.reach import Damage, Root, Walker, extra_roots, version_roots
from pvc.errors import CorruptObject, TooManyFiles
from pvc.record import field, record, replace
from pvc.store.local.packstore import PackStore
from pvc.store.repository import Repository

__all__ = ["Problem", "VerifyReport", "verify"]

MAX_AFFECTED = 1000  # per problem, in the report; `affected_total` has the full count


@record
class Problem:
    """One damaged thing (an object, a pack, an index file, the refs) and what it affects."""

    subject: str  # "object <id>", "pack <id>", "index <file>", "refs <file>", "stash <file>", "config <key>"
    kind: str  # blob, tree, page, manifest, object, pack, index, refs, stash, config
    what: str
    affects: list[dict] = field(default_factory=list)  # {"version", "dataset", "item", "path"}
    affected_total: int = 0

    @property
    def versions(self) -> list[str]:
        return sorted({a["version"] for a in self.affects}, key=_version_order)

    def to_json(self) -> dict:
        return {"subject": self.subject, "kind": self.kind, "what": self.what, "versions": self.versions,
                "affects": self.affects, "affected_total": self.affected_total}


@record(frozen=True)
class VerifyReport:
    versions: int
    roots: int
    packs: int
    indexes: int
    records: int
    hashed: int
    bytes: int
    sample: float
    orphans: int  # indexed objects no root reaches
    unindexed: int  # records in packs that no index names (left by a killed commit or gc)
    problems: list[Problem]
    temp_files: int = 0  # temporary files of writers that are gone (gc removes them)
    temp_bytes: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict:
        return {"ok": self.ok, "versions": self.versions, "roots": self.roots, "packs": self.packs,
                "indexes": self.indexes, "records": self.records, "hashed": self.hashed, "bytes": self.bytes,
                "sample": self.sample, "orphans": self.orphans, "unindexed": self.unindexed,
                "temp_files": self.temp_files, "temp_bytes": self.temp_bytes,
                "problems": [p.to_json() for p in self.problems]}


class _Problems:
    def __init__(self) -> None:
        self.by_key: dict[tuple[str, str], Problem] = {}
        self._seen: set[tuple] = set()

    def add(self, subject: str, kind: str, what: str, affected: dict | None = None) -> None:
        problem = self.by_key.setdefault((subject, what), Problem(subject, kind, what))
        if affected is None:
            return
        key = (subject, what, *affected.values())
        if key in self._seen:
            return
        self._seen.add(key)
        problem.affected_total += 1
        if len(problem.affects) < MAX_AFFECTED:
            problem.affects.append(affected)

    def damage(self, d: Damage) -> None:
        self.add(f"object {d.oid.hex()}", d.kind, d.what,
                 {"version": d.root, "dataset": d.dataset, "item": d.item, "path": d.path})


def verify(repo: Repository, *, sample: float = 1.0, seed: int | None = None, lock_timeout: float = 60.0) -> VerifyReport:
    """Check everything (see the module docstring); `sample` in (0, 1] is the share of records re-hashed."""
    problems = _Problems()
    for key, why in repo.config_problems:
        problems.add(f"config {key}", "config", why)
    with ExitStack() as held:
        held.enter_context(repo.read_lock(lock_timeout))
        roots, versions = _roots(repo, problems)
        store = repo.reopen_store(strict_indexes=False)
        temporaries = [size for _, size in repo.stale_temporaries()]
        try:
            packs = store.pin_packs()
            held.close()  # the packs stay open: writers may go on while verify reads
        except TooManyFiles:  # more packs than this process may keep open: the lock keeps gc out instead, held to
            packs = store.pack_ids()  # the end (writers wait meanwhile)
        try:
            report = _verify(store, packs, roots, versions, problems, sample, seed)
            return replace(report, temp_files=len(temporaries), temp_bytes=sum(temporaries))
        finally:
            repo.close()  # the lenient store is for verify only: later reads open a strict one again


def _verify(store: PackStore, packs: list[bytes], roots: list[Root], versions: int, problems: _Problems,
            sample: float, seed: int | None) -> VerifyReport:
    scan = store.check_packs(packs, sample=sample, rng=random.Random(seed))
    for p in scan.problems:
        problems.add(p.subject, p.kind, p.what)
    walker = Walker(store, bad=scan.bad)
    for root in roots:
        for d in walker.walk(root):
            problems.damage(d)
    for oid, why in scan.bad.items():
        if oid not in walker.reached:
            problems.add(f"object {oid.hex()}", "object", why)
    kept = set(store.dictionary_ids(alternates=False))  # zstd dictionaries: gc keeps them, they are no orphans
    orphans = sum(1 for oid in store.iter_ids() if oid not in walker.reached and oid not in kept)
    return VerifyReport(versions=versions, roots=len(roots), packs=scan.packs, indexes=scan.indexes,
                        records=scan.records, hashed=scan.hashed, bytes=scan.bytes, sample=sample, orphans=orphans,
                        unindexed=scan.unindexed, problems=list(problems.by_key.values()))


def _roots(repo: Repository, problems: _Problems) -> tuple[list[Root], int]:
    """Every root to walk, and the number of versions; damaged refs are problems (roots then from the backup)."""
    try:
        roots = version_roots(repo)
    except CorruptObject as exc:
        problems.add(f"refs {repo.refs.path.name}", "refs", str(exc))
        roots = _backup_roots(repo)
    if repo.refs.has_backup():
        try:
            repo.refs.read_backup()
        except CorruptObject:
            problems.add(f"refs {repo.refs.backup.name}", "refs", "the backup of the refs file is damaged too (it is only needed to recover from damaged refs)")
    versions = len(roots)
    try:
        roots += extra_roots(repo)
    except CorruptObject as exc:
        problems.add(f"stash {repo.saved_states.dir.name}", "stash", str(exc))
    return roots, versions


def _backup_roots(repo: Repository) -> list[Root]:
    try:
        return [Root(f"v{v.number}", v.number, bytes.fromhex(v.manifest)) for v in repo.refs.read_backup().versions
                if not v.deleted]
    except (CorruptObject, ValueError):
        return []


def _version_order(label: str) -> tuple:
    return (0, int(label[1:])) if label[:1] == "v" and label[1:].isdigit() else (1, label)
