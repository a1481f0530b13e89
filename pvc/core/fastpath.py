"""Recognising an untouched project from one stat per file, without reading or building anything.

The stat cache's head (the tree record) holds the digest of a settled scan's stat records and the manifest
that scan's project produced. A new scan with the same digest saw the same files with the same size, mtime,
inode and ctime, so the project is still that manifest. The C walk (pvc/_walk.c) makes that scan several
times faster than the Python one.

`clean_status` and `unchanged_commit` answer `pvc status` and `pvc commit` on an untouched project for
pvc/entry.py; the commit's answer is given under the writers' lock, as every commit's is, and only when that lock
is free at once. They start the C walk in a thread (the walk runs without the GIL) and only then import the
store's modules and read the refs and the tree record, so that importing and walking overlap. This module
itself imports nothing heavy. A changed project's status and commit go on from the same walk (`PriorWalk`):
the report of pvc/core/status.py, and the commit of pvc/core/commit.py under the same lock.
"""

from __future__ import annotations

import _thread
import os

from pvc.errors import PvcError
from pvc.project.walk import Ignore, followed_symlinks, native_walk, tree_digest
from pvc.store.clock import fs_clock
from pvc.store.formats import MANIFEST_FORMAT
from pvc.store.location import STORE_DIR, find_project_root

TYPE_CHECKING = False  # (not typing's: this module is imported before the walk starts, and typing costs ~3 ms)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from pvc.core.report import CommitResult
    from pvc.store.refs import VersionRecord
    from pvc.store.repository import Repository
    from pvc.store.statcache import StatCache

__all__ = ["MANIFEST_FORMAT", "PriorWalk", "capture_settings", "untouched", "clean_status", "working_status",
           "unchanged_commit"]



def capture_settings(repo: Repository, allow_invalid: bool) -> dict[str, Any]:
    """Everything besides the files that decides the manifest: a cached manifest holds only for these."""
    return {"chunk_threshold": repo.config.get("chunk_threshold"), "dicom_tags": repo.config.get("dicom_tags"),
            "allow_invalid": allow_invalid, "format": MANIFEST_FORMAT}


def untouched(cache: StatCache, expect: bytes, settings: dict[str, Any], digest: bytes | None) -> bool:
    """True when a C walk whose stat records have `digest` (`tree_digest`) proves the project is still `expect`;
    False means "scan in Python and see" (also when no C walk ran, or it declined: `digest` None)."""
    return digest is not None and cache.vouches_for(expect, settings, digest)


class _Walk:
    """The C walk of `root`, in the background; `records()` waits for it (None: it declined or failed).
    `scan_started`: the file system's clock read just before it began (the racy cutoff of a capture that takes the
    walk over, `PriorWalk`), or None. A thread of `_thread`'s, held by a lock until it ends (`threading` imports
    functools and collections, ~3 ms, which this module is imported too early to pay: they are imported during the
    walk instead)."""

    def __init__(self, root: str, ignore: Ignore, *, clock: bool = False) -> None:
        self._args, self._walked, self._digest = (root, ignore), None, None
        self.cache: StatCache | None = None  # the stat cache, read while walking, for the capture that follows
        self.pages: dict[bytes, bytes] = {}  # and the latest version's pages, read while walking (id -> bytes),
        self.tables: dict[tuple, bytes] = {}  # and their tables (pvc/store/pagediff.py, page_table)
        self.scan_started = fs_clock(os.path.join(root, STORE_DIR, "tmp")) if clock else None
        self._running = _thread.allocate_lock()

    def start(self) -> None:
        self._running.acquire()
        try:
            _thread.start_new_thread(self._run, ())
        except RuntimeError:  # no thread to be had: walk here
            self._run()

    def _run(self) -> None:
        try:
            self._walked = native_walk(*self._args)
        except Exception:  # the full status will meet the same problem and report it
            self._walked = None
        finally:
            self._running.release()

    def join(self) -> None:
        with self._running:
            pass

    def is_alive(self) -> bool:
        return self._running.locked()

    def digest(self) -> bytes | None:
        """`tree_digest` of the walk's records, hashed once (for the clean check, and for the capture that takes the
        walk over); None when the walk declined or failed."""
        self.join()
        if self._digest is None and self._walked is not None:
            self._digest = tree_digest(self._walked[0])
        return self._digest

    def followed_symlinks(self) -> int:
        self.join()
        return 0 if self._walked is None else followed_symlinks(self._walked[1])

    def prior(self) -> PriorWalk | None:
        """This walk, for a capture of the same project to take over instead of walking again."""
        self.join()
        if self._walked is None or self.scan_started is None:
            return None
        return PriorWalk(self._args[0], self.scan_started, *self._walked, self.digest(), self.cache, self.pages,
                         self.tables)


class PriorWalk:
    """A C walk already taken of the project at `root`, the clock read just before it, and its records' digest
    (pvc/core/capture/walk.py takes it over: `pvc status`, whose clean check walked the tree already, walks it once);
    `cache`: the project's stat cache as read during that walk, or None (the capture then reads it); `pages`: pages of
    the latest version read from the store during the walk, each checked against its id (id -> bytes); `tables`:
    their tables (pvc/store/pagediff.py, `page_table`), for the capture that takes the cache over."""

    __slots__ = ("root", "scan_started", "records", "flags", "digest", "cache", "pages", "tables")

    def __init__(self, root: str, scan_started: int, records: bytes, flags: bytes, digest: bytes,
                 cache: StatCache | None = None, pages: dict[bytes, bytes] | None = None,
                 tables: dict[tuple, bytes] | None = None) -> None:
        self.root, self.scan_started, self.records, self.flags, self.digest = root, scan_started, records, flags, digest
        self.cache, self.pages, self.tables = cache, pages or {}, tables or {}


def _untouched_latest(start: str, keep: list[PriorWalk] | None = None,
                      then: tuple[str, ...] = ()) -> tuple[VersionRecord, StatCache, int] | None:
    """The latest version, the stat cache and the symlinks the walk followed, when the project is provably that
    version; else None, and the walk is appended to `keep` (if given) for the capture that follows (status: a
    reader, which takes no lock). `then`: the modules the answer of a changed project imports (`_while_walking`)."""
    root = find_project_root(start)
    if root is None:
        return None
    try:
        walk = _Walk(root, Ignore.load(root), clock=keep is not None)
    except PvcError:  # unreadable .pvcignore
        return None
    walk.start()
    try:
        from pathlib import Path

        from pvc.store.repository import Repository

        repo = Repository(Path(root))
        try:
            found = _provably_latest(repo, walk, then)
        finally:
            repo.close()  # (the store's files, if the pages were read)
    except (PvcError, OSError, ValueError):
        found = None
    finally:
        walk.join()
    if found is None and keep is not None and (prior := walk.prior()) is not None:
        keep.append(prior)
    return found


def _provably_latest(repo: Repository, walk: _Walk, then: tuple[str, ...] = ()) -> tuple[VersionRecord, StatCache, int] | None:
    latest = repo.latest()  # deleted versions are not compared with
    if latest is None:
        return None
    cache = repo.stat_cache()
    expect, settings = bytes.fromhex(latest.manifest), capture_settings(repo, False)
    if not cache.may_vouch_for(expect, settings):  # no tree record of this version: whatever the walk finds, the
        _while_walking(walk, then)  # answer is a changed tree's (as after a status that found changes)
        if then:  # and its capture reads the stat cache first: read it now, while the walk runs (8-10 ms at 40,000
            if walk.is_alive():  # files), and hand it over with the walk; then the version's pages, while it runs,
                cache.read_ahead()  # where the build from the change can take them (a base of this version)
            walk.cache = cache
            base = cache.base if walk.is_alive() else None
            if base is not None and base[0] == expect and base[1] == settings:
                walk.pages, walk.tables = _pages_while_walking(repo, walk, expect)
        return None
    if not untouched(cache, expect, settings, walk.digest()):
        return None
    return latest, cache, walk.followed_symlinks()


_AHEAD_BYTES = 64 << 20  # pages and tables read during the walk, at most (a build from the change reads the rest)


def _pages_while_walking(repo: Repository, walk: _Walk, manifest: bytes) -> tuple[dict[bytes, bytes], dict[tuple, bytes]]:
    """The pages of the version `manifest` (its datasets' files and items maps), read from the store and checked
    against their ids, and their tables (pvc/store/pagediff.py, `page_table`), for as long as the walk runs: the build from
    the change reads the pages that hold the changed paths, and a change spread over the project touches most of them
    (about 200 pages after the 1% change of the 20k JPEG-only bench project). What is not read by the walk's end is
    read by the build as before; anything amiss is left to it too, which meets it again and says what it is. At most
    `_AHEAD_BYTES` of pages and tables are held (about 45 bytes an item: 11 MB at 20,000 items)."""
    from pvc.store.pagediff import page_table
    from pvc.store.model import Manifest, Tree

    read: dict[bytes, bytes] = {}
    tables: dict[tuple, bytes] = {}
    try:
        store = repo.store
        trees, maps = [store.get_object(manifest, Manifest).root], []
        while trees and walk.is_alive():
            tree = store.get_object(trees.pop(), Tree)
            maps += [(tree.files, "files"), (tree.items, "items")]
            trees += [child.oid for child in tree.children]
        held = 0
        for refs, kind in maps:
            for j, ref in enumerate(refs):
                if held > _AHEAD_BYTES or not walk.is_alive():
                    return read, tables
                data = read[ref.oid] = store.get(ref.oid)
                key, table = page_table(refs, j, kind, data)
                if table:
                    tables[key] = table
                held += len(data) + len(table or b"")
    except (PvcError, OSError, ValueError):
        pass
    return read, tables


def _while_walking(walk: _Walk, modules: tuple[str, ...]) -> None:
    """Import `modules`, one after another, for as long as the walk runs: what the answer of a changed project needs
    is then imported in time spent waiting for the walk, not after it. Called only where the stat cache holds no
    tree record of the latest version, so that the project cannot be found untouched: on two cores those imports
    would slow the walk of a clean project's answer, which needs none of them (+10 ms at 40,000 files)."""
    for name in modules:
        if not walk.is_alive():
            return
        __import__(name)


_STORE_MODULES = ("pvc.store.local.packstore", "pvc.store.lock")  # (the store opens its packs lazily)
_STATUS_MODULES = (*_STORE_MODULES, "pvc.core.capture", "pvc.core.capture.delta", "pvc.core.diff", "pvc.core.status")
_COMMIT_MODULES = (*_STORE_MODULES, "pvc.core.capture", "pvc.core.capture.delta", "pvc.core.commit")


def clean_status(start: str, *, changed: bool = False) -> dict | None:
    """The `status` report when the project is provably the latest version; None in every other case
    (changes, no version yet, no C walk, anything odd), and then the full status runs and explains.
    `changed`: in every other case, the report of the changed project (`working_status`) from the same walk."""
    keep: list[PriorWalk] | None = [] if changed else None
    found = _untouched_latest(start, keep, _STATUS_MODULES if changed else ())
    if found is None:
        return working_status(start, keep[0] if keep else None) if changed else None
    from pvc.core.report import clean_report

    latest, cache, _ = found
    return clean_report(latest.number, "working", cache.classes)


def working_status(start: str, walk: PriorWalk | None = None) -> dict | None:
    """The `status` report of a changed project (pvc/core/status.py, the same function the CLI calls), taking over
    `walk` where it is of this project; None on any problem, which the full command then meets and explains."""
    from pvc.core.status import status

    return _answered(start, lambda repo: status(repo, walk=walk))


def unchanged_commit(start: str, *, changed: bool = False, **options: Any) -> CommitResult | None:
    """What `pvc commit` returns when the project is provably the latest version, decided under the lock
    like every commit (nothing else is written); None in every other case, and then the full commit runs.

    `changed`: also the commit of a changed project (`options` as `commit.commit_locked` takes them), made under the
    same lock, and its sources' taken at once (`Repository.lock_with_sources`), from the same walk when no writer
    took the lock since before that walk began (`_undisturbed`), else from a walk of its own. None still when the
    lock is taken or anything is odd before the commit begins (the full command then waits, or says what); an error
    of the commit itself is raised, and the entry point says it as the CLI says it."""
    root = find_project_root(start)
    if root is None:
        return None
    try:
        before = os.stat(os.path.join(root, STORE_DIR, "lock")) if changed else None  # before the clock and the walk
    except OSError:
        before = None
    try:
        walk = _Walk(root, Ignore.load(root), clock=changed)
    except PvcError:  # unreadable .pvcignore
        return None
    walk.start()
    from contextlib import ExitStack  # (after the walk has started)

    with ExitStack() as held:
        try:
            from pathlib import Path

            from pvc.store.repository import Repository

            repo = Repository(Path(root))
            held.callback(repo.close)  # (after the locks are let go: an exit stack unwinds in reverse)
            lock = held.enter_context(repo.lock(timeout=0))
            found = _provably_latest(repo, walk, _COMMIT_MODULES if changed else ())
            if found is None and changed:
                held.enter_context(repo.source_locks(timeout=0))  # (after its own: so without waiting)
        except (PvcError, OSError, ValueError):  # Locked among them
            return None
        finally:
            walk.join()
        from pvc.core.report import CommitResult

        if found is not None:
            return CommitResult(found[0], False, 0, 0, followed_symlinks=found[2])
        if not changed:
            return None
        from pvc.core.commit import commit_locked

        prior = walk.prior() if _undisturbed(before, lock.seen, walk.scan_started) else None
        return commit_locked(repo, walk=prior, **options)


def _undisturbed(before: os.stat_result | None, seen: os.stat_result | None, scan_started: int | None) -> bool:
    """No writer held the project's lock between `before` (the lock file, stat'ed before the clock `scan_started` was
    read and the walk began) and `seen` (the file as this process found it on taking the lock). A writer writes its
    record into the file as it takes the lock, and empties it as it lets go; one killed while holding it leaves the
    record. So: the file was empty (no writer held it, or a killed one's record was left: then the walk is not
    taken over), and still is, with the same ctime, older than the clock: a write after the clock was read gives a
    later ctime, and a writer that took and let go of the lock within the clock's own tick ended before the walk."""
    return (before is not None and seen is not None and scan_started is not None and before.st_size == 0
            and before.st_ctime_ns < scan_started
            and (before.st_ino, before.st_size, before.st_ctime_ns) == (seen.st_ino, seen.st_size, seen.st_ctime_ns))


def _answered(start: str, answer: Callable[[Repository], Any]) -> Any:
    """`answer(repo)` for the project at or above `start`; None when the full command must answer instead: no
    project, or any problem (config, refs, objects, a bad option) that the CLI explains."""
    from pathlib import Path

    from pvc.store.repository import Repository

    root = find_project_root(start)
    if root is None:
        return None
    try:
        repo = Repository(Path(root))
        try:
            return answer(repo)
        finally:
            repo.close()
    except (PvcError, OSError, ValueError):
        return None


def quick_log(start: str, **filters) -> list | None:
    """`pvc log`'s entries (pvc.core.log), with `filters` as `log.query` takes them, from the refs alone."""
    from pvc.core.log import log, query

    return _answered(start, lambda repo: log(repo.refs.read(), query(**filters)))


def quick_show(start: str, name: str) -> tuple | None:
    """`pvc show NAME`'s (details, tags), from the refs and the version's manifest and trees (None also for a
    name that resolves to nothing, or a version whose structure is on a remote only)."""
    from pvc.core.inspect import show
    from pvc.core.resolve import resolve_version
    from pvc.core.tag import tags_by_version

    def answer(repo: Repository) -> tuple | None:
        refs = repo.refs.read()
        record = resolve_version(refs.versions, name, refs.tags)
        if record.id in repo.partial.read():
            return None  # the CLI says where its objects are, or shows what is here
        return show(repo.store, record), tags_by_version(refs).get(record.number, [])

    return _answered(start, answer)


def quick_tags(start: str) -> list | None:
    """`pvc tag --list`'s tags, from the refs alone."""
    from pvc.core.tag import list_tags

    return _answered(start, lambda repo: list_tags(repo.refs.read()))


def quick_diff(start: str, first: str, second: str, *, details: bool = True) -> dict | None:
    """`pvc diff FIRST SECOND`'s report (pvc.core.diff), as the CLI makes it (without `details`: no semantic
    annotation diffs, which `--stat` does not print); None when the CLI must answer: no project, a name that
    resolves to nothing, a version whose objects are on a remote only, and any error at all (the CLI then meets
    it again and says it as it says it, internal errors included)."""
    from pvc.core.diff import diff_snapshots
    from pvc.core.resolve import resolve_version
    from pvc.core.snapshot import Snapshot

    def answer(repo: Repository) -> dict | None:
        refs = repo.refs.read()
        ra, rb = (resolve_version(refs.versions, name, refs.tags) for name in (first, second))
        partial = repo.partial.read()
        if ra.id in partial or rb.id in partial:
            return None  # the CLI says where its objects are, or diffs what is here
        return diff_snapshots(Snapshot(repo.store, bytes.fromhex(ra.manifest)),
                              Snapshot(repo.store, bytes.fromhex(rb.manifest)), source=ra.number, target=rb.number,
                              details=details)

    try:
        return _answered(start, answer)
    except Exception:
        return None
