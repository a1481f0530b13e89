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

import errno
import os
import shutil
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import blake3

from pvc.core.capture.seed import seed_stat_cache
from pvc.core.lineage import link_new_project, unlink_new_project
from pvc.core.selection import Plan, Selection, plan_restore
from pvc.core.snapshot import FileEntry, Snapshot, make_dirs
from pvc.core.tuning import fewer_collections
from pvc.core.writefiles import FileWriter
from pvc.errors import CorruptObject, ObjectMissing, PvcError, TooManyFiles, UsageError
from pvc.record import field, record
from pvc.store import openfiles
from pvc.store.atomic import Writeback, fsync_dir
from pvc.store.backend import ObjectStore
from pvc.store.objects import hash_bytes
from pvc.store.refs import VersionRecord
from pvc.store.repository import Repository

__all__ = ["Skipped", "RestoreResult", "restore", "materialize", "EarlyFiles"]

_WORKERS = 8
_RESERVE_FILES = 256  # open files besides the large files a restore assembles: packs read, files written, the rest
_OTHER_FILES = 32  # of those, what is not a pack: the interpreter's, the index maps, the files the writers create


@record(frozen=True)
class Skipped:
    dataset: str | None
    item: str | None
    reason: str
    path: str | None = None  # set for a project-level or extra file skipped on its own


@record(frozen=True)
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
    kept_aside: str | None = None  # --force: where the old content of the target stays, if it could not be deleted


@fewer_collections
def restore(
    store: ObjectStore,
    record: VersionRecord,
    dest: Path,
    *,
    project_root: Path | None = None,
    selection: Selection = Selection(),
    link: Repository | None = None,
    skip_missing: bool = False,
    verify: bool = False,
    force: bool = False,
    lock_timeout: float = 60.0,
    progress: Callable[[str, int, int], None] | None = None,
) -> RestoreResult:
    """Write version `record` from `store` (local, or a remote) to `dest`, the part `selection` keeps; see the
    module docstring for the guarantees. `project_root`: the project the store belongs to, which the target may
    not be inside of; `link`: the repository `store` is, to link the new project to (its own `.pvc/` sharing
    that store's objects, and its lineage)."""
    dest = _check_target(project_root, dest, force)
    snap = Snapshot(store, bytes.fromhex(record.manifest))
    chosen = plan_restore(snap, selection)
    staging = dest.parent / f".{dest.name}.pvc-restore-{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    linked, link_info = None, (None, None)
    try:
        with Writeback(staging) as durable:  # what restore writes, on the target's file system only
            if link is not None:
                linked = link_new_project(link, record, staging, dest, selection, lock_timeout=lock_timeout)
            plan, skipped = materialize(store, chosen, staging, skip_missing=skip_missing, verify=verify,
                                        progress=progress)
            if linked is not None:
                seed_stat_cache(linked, snap.manifest, plan, chosen.items, chosen.folders)
                link_info = (linked.store_id, linked.origin.read())
            durable.finish()
        kept_aside = _move_into_place(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if linked is not None:
            unlink_new_project(link, linked)
        raise
    finally:
        if linked is not None:
            linked.close()
    items = {(e.dataset, e.item) for e in plan if e.item is not None}
    return RestoreResult(record.number, str(dest), len(plan), sum(e.size for e in plan), skipped,
                         selection=selection, datasets=chosen.datasets, items=len(items), linked_store=link_info[0],
                         origin=link_info[1], kept_aside=kept_aside)


@fewer_collections
def materialize(store: ObjectStore, chosen: Plan, folder: Path, *, skip_missing: bool = False,
                verify: bool = False, progress=None) -> tuple[list[FileEntry], list[Skipped]]:
    """Write the files `chosen` (from `plan_restore`) names into `folder`, which holds none of them, and the
    folders of its chosen datasets that have no item (so they still look like datasets); return the files
    written and what was skipped. Without `skip_missing`, a missing or corrupt object raises before anything is
    written, or, if found while writing, after the files written so far were removed again."""
    plan = chosen.files
    _check_paths(plan)
    bad = _find_bad_objects(store, plan, verify)
    if bad and not skip_missing:
        raise _plan_error(plan, bad)
    skipped, plan = _drop_bad(plan, bad)
    failed = _write_all(store, plan, folder, progress)
    if failed and not skip_missing:
        _remove_files(folder, plan)
        raise _plan_error(plan, failed)
    _remove_files(folder, _entries_of(plan, failed))
    more_skipped, plan = _drop_bad(plan, failed)
    for empty in chosen.empty_folders:
        (folder / empty).mkdir(parents=True, exist_ok=True)
    return plan, skipped + more_skipped


class EarlyFiles:
    """The whole files of a plan written from records as they arrive, before the store that gets them is readable:
    clone writes the working tree from the packs it downloads while they are in memory, instead of reading them back
    after the flush. Chunked files are left to the `materialize` of what is left after the flush."""

    def __init__(self, files: list[FileEntry], folder: Path):
        self._targets = _by_object(files)
        make_dirs(folder, [e.path for e in files])
        self._writer = FileWriter(folder)
        self._lock = threading.Lock()
        self.written: set[bytes] = set()  # the objects whose files are all written
        self.stats: dict[str, tuple[int, int, int, int]] = {}  # path -> (size, mtime_ns, inode, ctime_ns) as written

    def take(self, store: ObjectStore, records: list) -> None:
        """Write the files of `records` ([(id, location, content)] of `store`, each content checked against its id
        already: receive_objects' `on_pack`). Written before it returns: a content may be a view of a download
        buffer that is filled again afterwards."""
        batch, done = [], []
        for oid, loc, content in records:
            entries = self._targets.get(oid)
            if entries is None or content is None:
                continue
            batch += [(e.path, content, e.mode) for e in entries]
            done.append(oid)
        stats: list[tuple[int, int, int, int]] = []
        self._writer.write(batch, stats)
        with self._lock:
            self.written.update(done)
            self.stats.update(zip((path for path, _, _ in batch), stats))

    def left(self, files: list[FileEntry]) -> list[FileEntry]:
        """The files of `files` not written yet."""
        return [e for e in files if e.oid not in self.written]

    def close(self) -> None:
        self._writer.close()


def _check_target(project_root: Path | None, dest: Path, force: bool) -> Path:
    dest = Path(os.path.abspath(dest))
    real = dest.resolve()
    project = project_root.resolve() if project_root is not None else None
    if project is not None and (real.is_relative_to(project) or project.is_relative_to(real)):
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

    if verify:  # reads and hashes every object: worth threads
        with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
            found = list(pool.map(check, unique))
    else:  # index lookups: a task per object would cost more than the lookup (0.9 s of futures at 40k files)
        found = [check(oid) for oid in unique]
    for oid, reason in found:
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
    """Write every file into `staging`; return the objects that turned out missing or corrupt.

    Objects are read with `visit_records` (neighbours in a pack in one request, several requests at once, the
    files written by the same worker threads: a run of neighbours' files in one `FileWriter.write`, without the GIL
    where pvc/_files.c is built), and each part is checked against its id before it is written. A chunked file is
    assembled at its chunks' offsets, then hashed whole. Every file is created exclusively (O_EXCL | O_NOFOLLOW) in
    the fresh staging folder."""
    failed: dict[bytes, str] = {}
    lock = threading.Lock()
    make_dirs(staging, [e.path for e in plan])
    targets = _by_object(plan)
    parts, chunked = _parts(store, targets, failed)  # object to read -> [(the file's object, offset in it)]
    large = sum(len(targets[oid]) for oid in chunked)
    _room_for(large, store)
    open_fds: dict[str, int] = {}  # large files only
    writer = None
    total, done = sum(e.size for e in plan), [0]

    def write(records: list) -> None:
        batch: list[tuple[str, bytes, int]] = []  # the whole files of this run of records, created in one call
        written = 0
        for oid, loc, stored in records:
            data = _content(store, oid, loc, stored)
            for whole, offset in parts[oid]:
                if data is None:
                    with lock:
                        failed.setdefault(whole, "missing" if stored is None else "corrupt")
                    continue
                for entry in targets[whole]:
                    if entry.path in open_fds:
                        os.pwrite(open_fds[entry.path], data, offset)
                    else:
                        batch.append((entry.path, data, entry.mode))
                written += len(data) * len(targets[whole])
        writer.write(batch)
        with lock:
            done[0] += written
        if progress:
            progress("writing files", done[0], total)

    try:  # every file opened here is closed on the way out, whatever happens (then the staging folder can go)
        for oid in chunked:
            for e in targets[oid]:
                open_fds[e.path] = _create(staging / e.path, os.O_RDWR)
        writer = FileWriter(staging)  # the folder is synced before the rename
        seen = store.visit_records(list(parts), write, workers=_WORKERS)
        for oid in parts.keys() - seen:
            for whole, _ in parts[oid]:
                failed.setdefault(whole, "missing")
        _check_assembled(targets, chunked, open_fds, failed)
        for oid in chunked:
            for entry in targets[oid]:
                os.fchmod(open_fds[entry.path], entry.mode)
    except OSError as exc:
        if exc.errno not in (errno.EMFILE, errno.ENFILE):
            raise
        raise TooManyFiles(
            f"{len(plan)} files to restore, {large} of them large (each open until its chunks are written): more "
            f"than this process may open (open files limit {openfiles.limit()}); raise the limit (`ulimit -n`)"
        ) from None
    finally:
        try:
            if writer is not None:
                writer.close()
        finally:
            for fd in open_fds.values():
                os.close(fd)
    return failed


def _room_for(files: int, store) -> None:
    """Make room for `files` large files (open until their chunks are all written) and what else a restore opens (a
    project of thousands of videos, under the usual soft limit of 1,024): the open-files limit raised, and where
    that is not enough, the pack files `store` read so far (the chunk lists) closed (they open again as read)."""
    if files and (limit := openfiles.limit()) is not None and files + _RESERVE_FILES > limit:
        limit = openfiles.raise_limit(files + 2 * _RESERVE_FILES)
        if limit is not None and files + _RESERVE_FILES > limit and hasattr(store, "keep_open_at_most"):
            store.keep_open_at_most((limit - files - _OTHER_FILES) // 2)  # the rest for the small files written


def _by_object(files: list[FileEntry]) -> dict[bytes, list[FileEntry]]:
    """The files of each object (one blob may be several files)."""
    targets: dict[bytes, list[FileEntry]] = {}
    for entry in files:
        targets.setdefault(entry.oid, []).append(entry)
    return targets


def _create(path: Path, access: int = os.O_WRONLY) -> int:
    return os.open(path, access | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)


def _parts(store, targets: dict[bytes, list[FileEntry]],
           failed: dict[bytes, str]) -> tuple[dict[bytes, list[tuple[bytes, int]]], set[bytes]]:
    """Each object to read, and where its content goes: (the file's object, offset in the file); and the files'
    objects that are chunked. A file stored whole is its own single part; a chunked one is its chunks."""
    parts: dict[bytes, list[tuple[bytes, int]]] = {}
    chunked: set[bytes] = set()
    for oid in targets:
        try:
            info = store.info(oid)
            chunks = store.chunk_list(oid) if info is not None and info.chunked else None
        except ObjectMissing:
            failed[oid] = "missing"
            continue
        except CorruptObject:
            failed[oid] = "corrupt"
            continue
        if chunks is None:
            parts.setdefault(oid, []).append((oid, 0))
            continue
        chunked.add(oid)
        offset = 0
        for cid, length in chunks:
            parts.setdefault(cid, []).append((oid, offset))
            offset += length
    return parts, chunked


def _content(store, oid: bytes, loc, stored: bytes | None) -> bytes | None:
    """The part's content if it reads and matches its id, else None."""
    if stored is None:
        return None
    try:
        data = store.decoded(oid, loc, stored)
    except (CorruptObject, ObjectMissing):  # ObjectMissing: the zstd dictionary its record names
        return None
    return data if hash_bytes(data) == oid else None


def _check_assembled(targets: dict[bytes, list[FileEntry]], chunked: set[bytes], fds: dict[str, int],
                     failed: dict[bytes, str]) -> None:
    """Hash every chunked file as written: its chunks were each checked, this checks the chunk list."""
    for oid in chunked - failed.keys():
        for entry in targets[oid]:
            hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
            at = 0
            while block := os.pread(fds[entry.path], 4 << 20, at):
                hasher.update(block)
                at += len(block)
            if hasher.digest() != oid or at != entry.size:
                failed[oid] = "corrupt"


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
