"""The `.pvc/` directory: where each on-disk part lives, creating and opening it.

    .pvc/
      config          JSON: format number and store settings
      versions        refs: version number -> manifest id, with records (refs.py)
      versions.bak    the previous refs file
      lock            the repository lock (lock.py)
      index           the stat cache (statcache.py)
      packs/          <id>.pack and <id>.idx (packs.py, packindex.py)
      tmp/            packs being written; only the lock holder writes here
      stash/          saved states that are not versions (optional): gc keeps what they name
      alternates      other stores' packs/ folders this one reads from (a restored project; links.py)
      origin          where a restored project came from (links.py)
      linked/         projects restored from this store, whose needs its gc respects (links.py)
"""

from __future__ import annotations

import errno
import json
import shutil
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from pvc.errors import CorruptObject, Locked, NotAProject, UsageError
from pvc.store.atomic import atomic_write, fsync_dir
from pvc.store.formats import STORE_FORMAT
from pvc.store.links import Alternates, LinkedProjects, OriginFile, is_store_id
from pvc.store.location import STORE_DIR, find_project_root
from pvc.store.refs import Refs, VersionRecord
from pvc.store.stash import SavedStates
from pvc.store.statcache import StatCache

if TYPE_CHECKING:
    from pvc.store.local.packstore import PackStore
    from pvc.store.lock import LockStatus, RepoLock

__all__ = ["Repository", "STORE_DIR", "STORE_FORMAT"]

_DEFAULT_CONFIG = {"format": STORE_FORMAT, "chunk_threshold": 8 << 20, "pack_size": 16 << 20}


class Repository:
    """An opened `.pvc/` store next to the project it versions."""

    def __init__(self, project_root: Path) -> None:
        self.project_root = project_root
        self.dir = project_root / STORE_DIR
        self.config = self._read_config()
        self.refs = Refs(self.dir)
        self.saved_states = SavedStates(self.dir)
        self.alternates = Alternates(self.dir)
        self.origin = OriginFile(self.dir)
        self.linked = LinkedProjects(self.dir)
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
        shutil.rmtree(staging, ignore_errors=True)
        for sub in ("packs", "tmp"):
            (staging / sub).mkdir(parents=True)
        config = _DEFAULT_CONFIG | (settings or {}) | {"id": uuid.uuid4().hex}
        atomic_write(staging / "config", json.dumps(config, indent=1).encode() + b"\n")
        if alternates:
            Alternates(staging).write(alternates)
        if origin is not None:
            OriginFile(staging).write(origin)
        staging.rename(pvc_dir)
        fsync_dir(project_root)
        return cls(project_root)

    @classmethod
    def discover(cls, start: Path) -> Repository:
        """The repository of `start` or of its nearest parent that has `.pvc/`, as git does."""
        root = find_project_root(start)
        if root is None:
            raise NotAProject(f"{start.resolve()}: not a pvc project (no {STORE_DIR}/ here or above; run `pvc init`)")
        return cls(Path(root))

    def _read_config(self) -> dict:
        path = self.dir / "config"
        if not self.dir.is_dir():
            raise NotAProject(f"{self.project_root}: not a pvc project (no {STORE_DIR}/; run `pvc init`)")
        try:
            config = json.loads(path.read_text())
        except FileNotFoundError:
            raise NotAProject(f"{path}: missing (not a pvc store)") from None
        except (OSError, ValueError) as exc:
            raise CorruptObject(f"{path}: unreadable ({exc})") from None
        if not isinstance(config, dict) or config.get("format") != STORE_FORMAT:
            raise CorruptObject(f"{path}: unsupported store format {config.get('format') if isinstance(config, dict) else '?'}")
        return {**_DEFAULT_CONFIG, **config}

    @property
    def store_id(self) -> str | None:
        """This store's identity (32 hex, in `config`); None for a store made before stores had one."""
        found = self.config.get("id")
        return found if is_store_id(found) else None

    def ensure_store_id(self) -> str:
        """The store id, giving an older store one first (call with the lock held: `config` is rewritten)."""
        if self.store_id is None:
            self.config = self.config | {"id": uuid.uuid4().hex}
            on_disk = json.loads((self.dir / "config").read_text()) | {"id": self.config["id"]}
            atomic_write(self.dir / "config", json.dumps(on_disk, indent=1).encode() + b"\n")
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
        from pvc.store.lock import RepoLock

        return RepoLock(self.lock_path, timeout)

    @contextmanager
    def lock_with_sources(self, timeout: float = 60.0) -> Iterator[None]:
        """The locks of the stores this one reads objects from (its alternates, the outermost source first), then
        its own. Held by the writers that may come to rely on a source's objects instead of storing them (commit,
        discard), so that no gc runs there meanwhile; a gc there takes only its own lock. Always taken in this
        order (sources before the projects restored from them), so two writers never wait for each other. A
        source on a read-only file system, or one this user may not write, cannot be locked and is skipped."""
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
            locks.enter_context(self.lock(timeout))
            yield

    @property
    def lock_path(self) -> Path:
        return self.dir / "lock"

    def lock_status(self) -> LockStatus:
        from pvc.store.lock import lock_status

        return lock_status(self.lock_path)

    def atomic_leftovers(self) -> list[Path]:
        """Temporary files of atomic writes that a killed process left (`.<name>.<random>.tmp`)."""
        return sorted(p for d in (self.dir, self.dir / "packs") for p in d.glob(".*.tmp") if p.is_file())

    def stat_cache(self) -> StatCache:
        return StatCache(self.dir / "index")

    def clean_tmp(self) -> None:
        """Remove what a killed writer left: tmp/, and the temp files of atomic writes into .pvc/ and
        packs/ (`.<name>.*.tmp`). Call with the lock held: every such write happens under it."""
        tmp = self.dir / "tmp"
        tmp.mkdir(exist_ok=True)
        for leftover in tmp.iterdir():
            leftover.unlink(missing_ok=True)
        for folder in (self.dir, self.dir / "packs"):
            for leftover in folder.glob(".*.tmp"):
                leftover.unlink(missing_ok=True)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
