"""restore: materialise a version as a new project directory, byte for byte.

The plan (every file and the object it needs) is checked first; files are written in parallel into a
temporary sibling of the target, each one hashed as it is written, and the directory is renamed into
place at the end. So the target either appears complete or does not appear; with `skip_missing`, an item
whose objects are missing or corrupt is left out as a whole (media, annotation, companions) and reported.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from pvc.core.snapshot import FileEntry, Snapshot, make_dirs
from pvc.errors import CorruptObject, ObjectMissing, PvcError, UsageError
from pvc.store.atomic import fsync_dir, sync_filesystem
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
    kept_aside: str | None = None  # --force: where the old content of the target stays, if it could not be deleted


def restore(
    repo: Repository,
    record: VersionRecord,
    dest: Path,
    *,
    skip_missing: bool = False,
    verify: bool = False,
    force: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> RestoreResult:
    """Write version `record` to `dest`; see the module docstring for the guarantees."""
    dest = _check_target(repo, dest, force)
    store = repo.store
    plan = list(Snapshot(store, bytes.fromhex(record.manifest)).files())
    _check_paths(plan)
    bad = _find_bad_objects(store, plan, verify)
    if bad and not skip_missing:
        raise _plan_error(plan, bad)
    skipped, plan = _drop_bad(plan, bad)
    staging = dest.parent / f".{dest.name}.pvc-restore-{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    try:
        failed = _write_all(store, plan, staging, progress)
        if failed and not skip_missing:
            raise _plan_error(plan, failed)
        _remove_files(staging, _entries_of(plan, failed))
        more_skipped, plan = _drop_bad(plan, failed)
        skipped += more_skipped
        sync_filesystem(staging)  # what restore wrote, on the target's file system only
        kept_aside = _move_into_place(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return RestoreResult(record.number, str(dest), len(plan), sum(e.size for e in plan), skipped, kept_aside)


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


def _move_into_place(staging: Path, dest: Path) -> str | None:
    """Rename `staging` to `dest`, durably. An existing `dest` (--force) is moved aside first and deleted after;
    if the final rename fails it is put back, and the error says whether that worked. Returns where the old
    content was left if it could not be deleted (the restore itself succeeded)."""
    if not dest.exists():
        os.rename(staging, dest)
        fsync_dir(dest.parent)
        return None
    aside = dest.parent / f".{dest.name}.pvc-replaced-{uuid.uuid4().hex[:12]}"
    os.rename(dest, aside)
    try:
        os.rename(staging, dest)
    except OSError as exc:
        raise _put_back(aside, dest, exc) from None
    fsync_dir(dest.parent)
    try:
        shutil.rmtree(aside)
    except OSError:
        return str(aside)
    return None


def _put_back(aside: Path, dest: Path, failure: OSError) -> OSError:
    """The error of a failed final rename, after moving the old target back from `aside`."""
    why = f"cannot move the restored files into place ({failure.strerror or failure})"
    try:
        os.rename(aside, dest)
    except OSError as exc:
        return OSError(failure.errno, f"{why}; its old content could not be put back ({exc.strerror or exc}) "
                                      f"and is kept at {aside}", str(dest))
    return OSError(failure.errno, f"{why}; its old content is back in place, nothing was changed", str(dest))
