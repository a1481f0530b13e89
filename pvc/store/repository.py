"""The `.pvc/` directory: where each on-disk part lives, creating and opening it.

    .pvc/
      config          JSON: format number and store settings
      versions        refs: version number -> manifest id, with records (refs.py)
      versions.bak    the previous refs file
      lock            the repository lock (lock.py)
      index           the stat cache (statcache.py)
      status          the last captured status report, for the next status of the same files (statusrecord.py)
      packs/          <id>.pack and <id>.idx (packs.py, packindex.py)
      tmp/            packs being written; only the lock holder writes here
      stash/          saved states that are not versions (optional): gc keeps what they name
      alternates      other stores' packs/ folders this one reads from (a restored project; links.py)
      origin          where a restored project came from (links.py)
      linked/         projects restored from this store, whose needs its gc respects (links.py)
      remotes/<name>/ what is known of a remote: its index files and version records (a cache)
      partial         versions whose objects are (partly) on a remote only (pull --metadata-only, clone --dataset)
"""

from __future__ import annotations

import errno
import json
import stat
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from pvc.errors import CorruptObject, Locked, NotAProject, UsageError
from pvc.record import replace
from pvc.store import config as schema
from pvc.store.atomic import atomic_write, fsync_dir
from pvc.store.formats import DICT_STORE_FORMAT, READ_STORE_FORMATS, STORE_FORMAT
from pvc.store.links import Alternates, LinkedProjects, OriginFile, is_store_id
from pvc.store.location import STORE_DIR, find_project_root
from pvc.store.refs import Refs, VersionRecord
from pvc.store.partial import PartialVersions
from pvc.store.stash import SavedStates

if TYPE_CHECKING:
    from pvc.store.local.packstore import PackStore
    from pvc.store.statcache import StatCache
    from pvc.store.lock import LockStatus, RepoLock

__all__ = ["Repository", "STORE_DIR", "STORE_FORMAT"]


class Repository:
    """An opened `.pvc/` store next to the project it versions.

    Its config is checked when it is opened: a key pvc does not know or a value it cannot use is a
    CorruptObject naming the key, unless `check_config` is False (`pvc config`, which fixes it, and `pvc verify`,
    which reports it); then every bad value is replaced by its default and listed in `config_problems`."""

    def __init__(self, project_root: Path, *, check_config: bool = True) -> None:
        self.project_root = project_root
        self.dir = project_root / STORE_DIR
        self.config_doc = self.read_config_doc()
        self.config_problems = schema.problems(self.config_doc)
        if check_config and self.config_problems:
            raise CorruptObject(self._config_error())
        self.config = schema.effective(self.config_doc)
        self.refs = Refs(self.dir)
        self.saved_states = SavedStates(self.dir)
        self.alternates = Alternates(self.dir)
        self.origin = OriginFile(self.dir)
        self.linked = LinkedProjects(self.dir)
        self.partial = PartialVersions(self.dir)
        self._store: PackStore | None = None

    @classmethod
    def init(cls, project_root: Path, *, settings: dict | None = None, alternates: list[Path] | None = None,
             origin: dict | None = None) -> Repository:
        """Create `.pvc/` in an existing directory; refuse if one is already there.

        `settings` (chunk_threshold, pack_size, dicom_tags) replace the defaults; a restored project takes its
        source's, so that the same files make the same manifest, and `alternates` and `origin` link it to it.
        The store is complete or absent: it is built as `.pvc.init-tmp/` and renamed."""
        if not project_root.is_dir():
            raise UsageError(f"{project_root}: not a directory")
        pvc_dir = project_root / STORE_DIR
        if pvc_dir.exists():
            raise UsageError(f"{pvc_dir}: already exists (this project is already initialised)")
        staging = project_root / f"{STORE_DIR}.init-tmp"
        import shutil

        shutil.rmtree(staging, ignore_errors=True)
        for sub in ("packs", "tmp"):
            (staging / sub).mkdir(parents=True)
        import uuid

        config = schema.defaults() | (settings or {}) | {"id": uuid.uuid4().hex}
        atomic_write(staging / "config", _config_bytes(config))
        if alternates:
            Alternates(staging).write(alternates)
        if origin is not None:
            OriginFile(staging).write(origin)
        staging.rename(pvc_dir)
        fsync_dir(project_root)
        return cls(project_root)

    @classmethod
    def discover(cls, start: Path, *, check_config: bool = True) -> Repository:
        """The repository of `start` or of its nearest parent that has `.pvc/`, as git does."""
        root = find_project_root(start)
        if root is None:
            raise NotAProject(f"{start.resolve()}: not a pvc project (no {STORE_DIR}/ here or above; run `pvc init`)")
        return cls(Path(root), check_config=check_config)

    @property
    def config_path(self) -> Path:
        return self.dir / "config"

    def read_config_doc(self) -> dict:
        """The config file as it is (a JSON object of this store format; its keys are not checked here)."""
        path = self.config_path
        if not self.dir.is_dir():
            raise NotAProject(f"{self.project_root}: not a pvc project (no {STORE_DIR}/; run `pvc init`)")
        try:
            config = json.loads(path.read_text())
        except FileNotFoundError:
            raise NotAProject(f"{path}: missing (not a pvc store)") from None
        except (OSError, ValueError) as exc:
            raise CorruptObject(f"{path}: unreadable ({exc})") from None
        if not isinstance(config, dict) or config.get("format") not in READ_STORE_FORMATS:
            raise CorruptObject(f"{path}: unsupported store format {config.get('format') if isinstance(config, dict) else '?'}")
        return config

    def prepare_publish(self, store: PackStore) -> None:
        """Before `store.flush()` (lock held): a store about to hold its first zstd dictionary records becomes
        format 2, so that a pvc that does not know them refuses it instead of taking them for damage."""
        if store.dictionary_records and self.config_doc.get("format") == STORE_FORMAT:
            self.write_config(dict(self.config_doc, format=DICT_STORE_FORMAT))

    def write_config(self, doc: dict) -> None:
        """Replace the config file (caller holds the lock and has checked `doc`)."""
        atomic_write(self.config_path, _config_bytes(doc))
        self.config_doc, self.config_problems, self.config = doc, schema.problems(doc), schema.effective(doc)

    def _config_error(self) -> str:
        key, why = self.config_problems[0]
        more = len(self.config_problems) - 1
        fix = (f"`pvc config --unset {key}` removes it" if why.startswith("unknown key")
               else f"`pvc config {key} VALUE` sets it, `pvc config --unset {key}` restores the default")
        return (f"{self.config_path}: {key}: {why}" + (f" (and {more} more problem(s): `pvc config --list`)" if more else "")
                + f"; {fix}")

    @property
    def store_id(self) -> str | None:
        """This store's identity (32 hex, in `config`); None for a store made before stores had one."""
        found = self.config.get("id")
        return found if is_store_id(found) else None

    def ensure_store_id(self) -> str:
        """The store id, giving an older store one first (call with the lock held: `config` is rewritten)."""
        if self.store_id is None:
            import uuid

            new_id = uuid.uuid4().hex
            self.update_config(lambda doc: doc.__setitem__("id", new_id))
        return self.config["id"]

    def settings(self) -> dict:
        """What a store copies from this one so that the same files give the same manifest and packs."""
        keys = ("chunk_threshold", "pack_size", "dicom_tags")
        return {k: self.config[k] for k in keys if k in self.config}

    @property
    def store(self) -> PackStore:
        if self._store is None:
            self._store = self._open_store(strict_indexes=True)
        return self._store

    def _open_store(self, *, strict_indexes: bool) -> PackStore:
        # imported here, as the lock is: a status that the stat cache answers opens neither
        from pvc.store.local.packstore import PackStore

        return PackStore(self.dir, chunk_threshold=int(self.config["chunk_threshold"]),
                         pack_size=int(self.config["pack_size"]), strict_indexes=strict_indexes,
                         alternates=tuple(self.alternates.read()))

    def reopen_store(self, *, strict_indexes: bool = True) -> PackStore:
        """Drop the open store and see the packs on disk as they are now (after taking the lock).

        `strict_indexes=False` opens a store whose damaged index files are left out rather than fatal."""
        if self._store is not None:
            self._store.close()
        self._store = self._open_store(strict_indexes=strict_indexes)
        return self._store

    def update_config(self, change: Callable[[dict], None]) -> None:
        """Apply `change` to the config as stored (defaults not filled in) and write it back atomically (call with
        the lock held); refused, and nothing written, if the result has a problem."""
        doc = json.loads(json.dumps(self.read_config_doc()))
        change(doc)
        found = schema.problems(doc)
        if found:
            raise UsageError(f"{self.config_path}: {found[0][0]}: {found[0][1]}")
        self.write_config(doc)

    def remote_cache(self, name: str) -> Path:
        """Where what is known of remote `name` is cached (its index files and version records)."""
        return self.dir / "remotes" / name

    def versions(self) -> list[VersionRecord]:
        """Every version record, oldest first (record n is version n), deleted ones included."""
        return list(self.refs.read().versions)

    def live_versions(self) -> list[VersionRecord]:
        """The versions that are not deleted, oldest first."""
        return [v for v in self.versions() if not v.deleted]

    def latest(self) -> VersionRecord | None:
        """The newest version that is not deleted (what `latest` names), or None."""
        return next((v for v in reversed(self.versions()) if not v.deleted), None)

    def write_versions(self, records: list[VersionRecord]) -> None:
        """Replace the version list (caller holds the lock), keeping tags and unknown fields."""
        self.refs.write(replace(self.refs.read(), versions=tuple(records)))

    def lock(self, timeout: float = 60.0) -> RepoLock:
        """The writers' lock (exclusive)."""
        from pvc.store.lock import RepoLock

        return RepoLock(self.lock_path, timeout)

    @contextmanager
    def lock_with_sources(self, timeout: float = 60.0) -> Iterator[None]:
        """The locks of the stores this one reads objects from (its alternates, the outermost source first), then
        its own. Held by the writers that may come to rely on a source's objects instead of storing them (commit,
        discard), so that no gc runs there meanwhile; a gc there takes only its own lock. Always taken in this
        order (sources before the projects restored from them), so two writers never wait for each other. A
        source on a read-only file system, or one this user may not write, cannot be locked and is skipped."""
        with ExitStack() as locks:
            locks.enter_context(self.source_locks(timeout))
            locks.enter_context(self.lock(timeout))
            yield

    @contextmanager
    def source_locks(self, timeout: float = 60.0) -> Iterator[None]:
        """The locks of the stores this one reads objects from, as `lock_with_sources` takes them (without its own).
        A caller that holds its own lock already takes them with `timeout` 0: it must not wait in the wrong order."""
        from pvc.store.lock import RepoLock

        with ExitStack() as locks:
            for packs in reversed(self.alternates.read()):
                if not packs.is_dir():
                    continue  # gone: nothing can be collected there
                try:
                    locks.enter_context(RepoLock(packs.parent / "lock", timeout))
                except Locked as exc:
                    raise Locked(f"{packs.parent.parent} (whose objects this project shares): {exc}") from None
                except OSError as exc:
                    if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
                        raise
            yield

    def read_lock(self, timeout: float = 60.0) -> RepoLock:
        """The readers' lock: shared, writes nothing; keeps writers (gc above all) out while it is held."""
        from pvc.store.lock import RepoLock

        return RepoLock(self.lock_path, timeout, shared=True)

    @property
    def lock_path(self) -> Path:
        return self.dir / "lock"

    def lock_status(self) -> LockStatus:
        from pvc.store.lock import lock_status

        return lock_status(self.lock_path)

    def stale_temporaries(self) -> list[tuple[Path, int]]:
        """(path, size) of the temporary files of writers that are gone: everything in tmp/ (packs being
        written, clock files) and the `.<name>.<random>.tmp` files of atomic writes in .pvc/ and packs/. Call it
        under a lock, exclusive or shared: then no writer is at work and every such file is a leftover, except
        the clock file of a `status` (which makes it without the lock, `clock-<pid>-…`) while that one runs."""
        tmp = self.dir / "tmp"
        found = [p for p in (tmp.iterdir() if tmp.is_dir() else ()) if not _live_clock(p.name)]
        found += [p for d in (self.dir, self.dir / "packs") for p in d.glob(".*.tmp")]
        stale = []
        for path in sorted(found):
            try:
                st = path.lstat()
            except FileNotFoundError:  # its writer removed it meanwhile
                continue
            if stat.S_ISREG(st.st_mode):
                stale.append((path, st.st_size))
        return stale

    def stat_cache(self) -> StatCache:
        from pvc.store.statcache import StatCache  # status and commit read it; the other commands do not

        return StatCache(self.dir / "index")

    def clean_tmp(self) -> int:
        """Remove what killed writers left (`stale_temporaries`); return how many files. Call with the lock held:
        every such write happens under it."""
        (self.dir / "tmp").mkdir(exist_ok=True)
        removed = 0
        for leftover, _ in self.stale_temporaries():
            try:
                leftover.unlink()
            except FileNotFoundError:
                continue
            removed += 1
        return removed

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


def _live_clock(name: str) -> bool:
    """A `clock-<pid>-<random>` file whose process still runs (a `status` reading the file system's clock)."""
    from pvc.store.lock import pid_alive

    parts = name.split("-")
    return len(parts) == 3 and parts[0] == "clock" and parts[1].isdigit() and pid_alive(int(parts[1]))


def _config_bytes(doc: dict) -> bytes:
    return json.dumps(doc, indent=1, ensure_ascii=False).encode() + b"\n"
