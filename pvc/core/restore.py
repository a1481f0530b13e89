"""restore: materialise a version (or part of it, pvc/core/selection.py) as a new project directory, byte for byte.

The plan (every file and the object it needs) is checked first; files are written in parallel into a
temporary sibling of the target, each one hashed as it is written, and the directory is renamed into
place at the end. So the target either appears complete or does not appear; with `skip_missing`, an item
whose objects are missing or corrupt is left out as a whole (media, annotation, companions) and reported.

With `link` (the default) the new project gets a `.pvc/` of its own linked to this store (pvc/core/lineage.py)
and a stat cache that knows every file written (pvc/core/capture/seed.py): it can commit at once, and its first
commit reads nothing that was restored unchanged and stores only what this store lacks.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from pvc.core.capture.seed import seed_stat_cache
from pvc.core.lineage import link_new_project, unlink_new_project
from pvc.core.selection import Selection, plan_restore
from pvc.core.snapshot import FileEntry, Snapshot, make_dirs
from pvc.errors import CorruptObject, ObjectMissing, PvcError, UsageError
from pvc.store.refs import VersionRecord
from pvc.store.repository import Repository

__all__ = ["Skipped", "RestoreResult", "restore"]

_WORKERS = 8


@dataclass(frozen=True)
class Skipped:
    dataset: str | None
    item: str | None
    reason: str
    path: str | None = None  # set for a project-level or extra file skipped on its own


@dataclass(frozen=True)
class RestoreResult:
    version: int
    target: str
    files: int
    bytes: int
    skipped: list[Skipped] = field(default_factory=list)
    selection: Selection = Selection()
    datasets: list[str] = field(default_factory=list)  # the datasets restored (nested ones too)
    items: int = 0  # items restored
    linked_store: str | None = None  # the new project's store id, when it is linked to this store
    origin: dict | None = None  # what the new project's first version will say it came from


def restore(
    repo: Repository,
    record: VersionRecord,
    dest: Path,
    *,
    selection: Selection = Selection(),
    link: bool = True,
    skip_missing: bool = False,
    verify: bool = False,
    force: bool = False,
    lock_timeout: float = 60.0,
    progress: Callable[[str, int, int], None] | None = None,
) -> RestoreResult:
    """Write version `record` (the part `selection` keeps) to `dest`; see the module docstring for the guarantees."""
    dest = _check_target(repo, dest, force)
    store = repo.store
    snap = Snapshot(store, bytes.fromhex(record.manifest))
    chosen = plan_restore(snap, selection)
    plan = chosen.files
    _check_paths(plan)
    bad = _find_bad_objects(store, plan, verify)
    if bad and not skip_missing:
        raise _plan_error(plan, bad)
    skipped, plan = _drop_bad(plan, bad)
    staging = dest.parent / f".{dest.name}.pvc-restore-{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    linked, link_info = None, (None, None)
    try:
        if link:
            linked = link_new_project(repo, record, staging, dest, selection, lock_timeout=lock_timeout)
        failed = _write_all(store, plan, staging, progress)
        if failed and not skip_missing:
            raise _plan_error(plan, failed)
        _remove_files(staging, _entries_of(plan, failed))
        more_skipped, plan = _drop_bad(plan, failed)
        skipped += more_skipped
        for folder in chosen.empty_folders:  # a chosen dataset left with no item still looks like a dataset
            (staging / folder).mkdir(parents=True, exist_ok=True)
        if linked is not None:
            seed_stat_cache(linked, snap.manifest, plan, chosen.items, chosen.folders)
            link_info = (linked.store_id, linked.origin.read())
        os.sync()
        _move_into_place(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if linked is not None:
            unlink_new_project(repo, linked)
        raise
    finally:
        if linked is not None:
            linked.close()
    items = {(e.dataset, e.item) for e in plan if e.item is not None}
    return RestoreResult(record.number, str(dest), len(plan), sum(e.size for e in plan), skipped, selection,
                         chosen.datasets, len(items), *link_info)


def _check_target(repo: Repository, dest: Path, force: bool) -> Path:
    dest = Path(os.path.abspath(dest))
    project = repo.project_root.resolve()
    real = dest.resolve()
    if real.is_relative_to(project) or project.is_relative_to(real):
        raise UsageError(f"{dest}: refusing to restore inside the project or over a folder that holds it; pick a directory outside {project}")
    if dest.is_symlink():
        raise UsageError(f"{dest}: is a symlink; restore writes only to a real directory")
    if dest.exists():
        if not dest.is_dir():
            raise UsageError(f"{dest}: exists and is not a directory")
        if any(dest.iterdir()) and not force:
            raise UsageError(f"{dest}: exists and is not empty (use --force to replace it)")
    if not dest.parent.is_dir():
        raise UsageError(f"{dest.parent}: parent directory does not exist")
    return dest


def _check_paths(plan: list[FileEntry]) -> None:
    """No two files at one path, and no file where another file needs a folder."""
    paths = set()
    for entry in plan:
        if entry.path in paths:
            raise CorruptObject(f"version lists {entry.path[:120]!r} twice")
        paths.add(entry.path)
    for entry in plan:
        parts = entry.path.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in paths:
                raise CorruptObject(f"version has a file {'/'.join(parts[:i])[:120]!r} where a folder is needed")


def _find_bad_objects(store, plan: list[FileEntry], verify: bool) -> dict[bytes, str]:
    """Object id -> why it cannot be restored (missing, or with `verify`, corrupt)."""
    bad: dict[bytes, str] = {}
    unique = list(dict.fromkeys(e.oid for e in plan))

    def check(oid: bytes) -> tuple[bytes, str | None]:
        try:
            if verify:
                store.check(oid)
            elif store.missing_parts(oid):
                return oid, "missing"
        except ObjectMissing:
            return oid, "missing"
        except CorruptObject:
            return oid, "corrupt"
        return oid, None

    with ThreadPoolExecutor(max_workers=_WORKERS if verify else 1) as pool:
        for oid, reason in pool.map(check, unique):
            if reason:
                bad[oid] = reason
    return bad


def _entries_of(plan: list[FileEntry], bad: dict[bytes, str]) -> list[FileEntry]:
    """Every entry that goes with a bad object: the whole item for item files, the file alone otherwise."""
    bad_items = {(e.dataset, e.item) for e in plan if e.oid in bad and e.item is not None}
    return [e for e in plan if e.oid in bad or (e.item is not None and (e.dataset, e.item) in bad_items)]


def _drop_bad(plan: list[FileEntry], bad: dict[bytes, str]) -> tuple[list[Skipped], list[FileEntry]]:
    if not bad:
        return [], plan
    dropped = _entries_of(plan, bad)
    skipped: dict[tuple, Skipped] = {}
    for e in dropped:
        if e.oid not in bad:
            continue
        key = (e.dataset, e.item) if e.item is not None else (e.dataset, None, e.path)
        reason = f"{bad[e.oid]} object for {e.path}"
        skipped.setdefault(key, Skipped(e.dataset, e.item, reason, None if e.item is not None else e.path))
    dropped_ids = {id(e) for e in dropped}
    return list(skipped.values()), [e for e in plan if id(e) not in dropped_ids]


def _plan_error(plan: list[FileEntry], bad: dict[bytes, str]) -> PvcError:
    affected = _entries_of(plan, bad)
    names = sorted({f"{e.dataset}/{e.item}" if e.item else e.path for e in affected if e.oid in bad})
    missing = sum(1 for r in bad.values() if r == "missing")
    counts = [f"{n} {kind} object(s)" for n, kind in ((missing, "missing"), (len(bad) - missing, "corrupt")) if n]
    what = " and ".join(counts)
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    cls = ObjectMissing if missing == len(bad) else CorruptObject
    return cls(f"{what} affecting {len(names)} item(s)/file(s): {shown}; nothing was written (use --skip-missing to restore the rest)")


def _write_all(store, plan: list[FileEntry], staging: Path, progress) -> dict[bytes, str]:
    """Write every file into `staging`; return the objects that turned out missing or corrupt."""
    failed: dict[bytes, str] = {}
    make_dirs(staging, [e.path for e in plan])

    def write(entry: FileEntry) -> FileEntry:
        target = staging / entry.path
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            with os.fdopen(fd, "wb", buffering=1 << 20) as out:
                store.write_to(entry.oid, out)
            os.chmod(target, entry.mode)
        except ObjectMissing:
            failed[entry.oid] = "missing"
        except CorruptObject:
            failed[entry.oid] = "corrupt"
        return entry

    total = sum(e.size for e in plan)
    done = 0
    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        for entry in pool.map(write, plan):
            done += entry.size
            if progress:
                progress("writing files", done, total)
    return failed


def _remove_files(staging: Path, entries: list[FileEntry]) -> None:
    for e in entries:
        (staging / e.path).unlink(missing_ok=True)


def _move_into_place(staging: Path, dest: Path) -> None:
    if not dest.exists():
        staging.rename(dest)
        return
    aside = dest.parent / f".{dest.name}.pvc-replaced-{uuid.uuid4().hex[:12]}"
    dest.rename(aside)
    staging.rename(dest)
    shutil.rmtree(aside)
