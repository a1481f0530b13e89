"""The Python API: `pvc.Project` and its `version` accessor, mirroring `api.project.version.*`.

    project = pvc.Project("path/to/project")           # or pvc.Project.init(path)
    v = project.version.create(title="checkpoint-1", description={"app": "augment"})
    project.version.get_list(filters=[{"field": "title", "operator": "=", "value": "checkpoint-1"}])
    project.version.restore(version_num=1, dest="../proj-v1", skip_missed_entities=True)
"""

from __future__ import annotations

import io
import operator
from collections.abc import Callable
from os import PathLike
from pathlib import Path
from typing import Any, BinaryIO

from pvc.core import inspect
from pvc.core.commit import CommitResult, commit
from pvc.core.config import ConfigChange, ConfigEntry, ConfigListing, get_config, list_config, set_config, unset_config
from pvc.core.gc import DEFAULT_GRACE, GcResult, gc, parse_duration
from pvc.core.diff import diff_snapshots
from pvc.core.discard import DiscardResult, discard, undo_discard
from pvc.core.snapshot import Snapshot
from pvc.core.status import status, version_snapshot, working_snapshot
from pvc.core.inspect import ItemView, VersionDetails
from pvc.core.repair import IndexRepair, RefsRepair, repair_index, repair_refs
from pvc.core.resolve import resolve_version
from pvc.core.restore import RestoreResult, restore
from pvc.core.unlock import UnlockResult, unlock
from pvc.core.verify import VerifyReport, verify
from pvc.errors import UsageError
from pvc.store.refs import VersionRecord
from pvc.store.repository import Repository

__all__ = ["Project", "VersionApi"]

Progress = Callable[[str, int, int], None]
_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq, "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge, "in": lambda a, b: a in b, "contains": lambda a, b: b in (a or ""),
}
_FIELDS = ("number", "manifest", "title", "description", "created_at", "author", "parent")


class Project:
    """A project directory with a `.pvc/` store (found in `path` or the nearest parent that has one).

    Opening checks `.pvc/config` (CorruptObject naming a bad key); `check_config=False` opens a store whose config
    has problems, with defaults in their place, to fix them (`config_set`, `config_unset`) or report them (`verify`)."""

    def __init__(self, path: str | PathLike = ".", *, check_config: bool = True) -> None:
        self._repo = Repository.discover(Path(path), check_config=check_config)
        self.version = VersionApi(self._repo)

    @classmethod
    def init(cls, path: str | PathLike = ".") -> Project:
        """Create `.pvc/` in `path` and open it."""
        Repository.init(Path(path).resolve())
        return cls(path)

    @property
    def path(self) -> Path:
        return self._repo.project_root

    def log(self, limit: int | None = None) -> list[VersionRecord]:
        """Versions, newest first."""
        versions = list(reversed(self._repo.versions()))
        return versions[:limit] if limit else versions

    def show(self, name: str | int = "latest") -> VersionDetails:
        return inspect.show(self._repo.store, self.version.get(name))

    def ls(self, name: str | int = "latest", dataset: str | None = None) -> list[ItemView]:
        return list(inspect.ls(self._repo.store, self.version.get(name), dataset))

    def cat(self, name: str | int, path: str, out: BinaryIO) -> int:
        """Write one file of a version to `out`; return its size."""
        return inspect.cat(self._repo.store, self.version.get(name), path, out)

    def status(self) -> dict:
        """The working project against the latest version (the `diff --json` document, `to` = "working")."""
        return status(self._repo)

    def diff(self, a: str | int | None = None, b: str | int | None = None, *, dataset: str | None = None,
             item: str | None = None) -> dict:
        """No version: latest vs working; one: `a` vs working; two: `a` vs `b`."""
        if a is None and b is not None:
            raise UsageError("give the first version before the second")
        if b is not None:
            ra, rb = self.version.get(a), self.version.get(b)
            return diff_snapshots(Snapshot(self._repo.store, bytes.fromhex(ra.manifest)),
                                  Snapshot(self._repo.store, bytes.fromhex(rb.manifest)),
                                  source=ra.number, target=rb.number, dataset=dataset, item=item)
        ra = self.version.get(a if a is not None else "latest") if (a is not None or self._repo.versions()) else None
        working, cap = working_snapshot(self._repo, ra.manifest if ra else None)  # untouched since `ra`: nothing read
        left = version_snapshot(self._repo, ra.manifest if ra else None, working)
        return diff_snapshots(left, working, source=ra.number if ra else None, target="working",
                              dataset=dataset, item=item, invalid=cap.invalid)

    def discard(self, *, apply: bool = False, lock_timeout: float = 60.0) -> DiscardResult:
        """Put the working project back to the latest version (with `apply`; otherwise only report)."""
        return discard(self._repo, apply=apply, lock_timeout=lock_timeout)

    def undo_discard(self, *, lock_timeout: float = 60.0) -> DiscardResult:
        """Bring back the state the last `discard` saved."""
        return undo_discard(self._repo, lock_timeout=lock_timeout)

    def read_file(self, name: str | int, path: str) -> bytes:
        buf = io.BytesIO()
        self.cat(name, path, buf)
        return buf.getvalue()

    def verify(self, sample: float = 100.0, *, seed: int | None = None, lock_timeout: float = 60.0) -> VerifyReport:
        """Re-hash every object (or `sample` percent of them) and resolve every reference of every version.

        The report lists each problem with the versions and items it affects; `report.ok` is True when clean."""
        if not 0 < sample <= 100:
            raise UsageError(f"--sample must be a percentage in (0, 100], got {sample:g}")
        return verify(self._repo, sample=sample / 100, seed=seed, lock_timeout=lock_timeout)

    def gc(self, *, dry_run: bool = False, grace: str | float = DEFAULT_GRACE, lock_timeout: float = 60.0) -> GcResult:
        """Drop objects no version (nor saved state) references; `grace` ("1h", "30m", seconds) spares young packs."""
        return gc(self._repo, dry_run=dry_run, grace=parse_duration(grace), lock_timeout=lock_timeout)

    def unlock(self, *, force: bool = False) -> UnlockResult:
        """Say who holds the lock; with `force`, clear what a dead holder on this host left (never a live lock)."""
        return unlock(self._repo, force=force)

    def repair_index(self, *, lock_timeout: float = 60.0) -> IndexRepair:
        """Rebuild the index from the packs (every record names its object); damaged records are left out."""
        return repair_index(self._repo, lock_timeout=lock_timeout)

    def repair_refs(self, *, lock_timeout: float = 60.0) -> RefsRepair:
        """Replace a damaged refs file by `versions.bak`, keeping the damaged one aside."""
        return repair_refs(self._repo, lock_timeout=lock_timeout)

    def config_list(self) -> ConfigListing:
        """Every known setting with its value and default, and the config's problems."""
        return list_config(self._repo)

    def config_get(self, key: str) -> ConfigEntry:
        """One setting; dotted keys reach into sections (`remotes.origin.url`)."""
        return get_config(self._repo, key)

    def config_set(self, key: str, value: Any, *, lock_timeout: float = 60.0) -> ConfigChange:
        """Set a setting (checked against its type and range; text is read as `pvc config KEY VALUE` reads it)."""
        return set_config(self._repo, key, value, lock_timeout=lock_timeout)

    def config_unset(self, key: str, *, lock_timeout: float = 60.0) -> ConfigChange:
        """Remove a key from the config file (it takes its default), a misspelt one too."""
        return unset_config(self._repo, key, lock_timeout=lock_timeout)

    def close(self) -> None:
        self._repo.close()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class VersionApi:
    """`project.version`: create, get_list, get, restore."""

    def __init__(self, repo: Repository) -> None:
        self._repo = repo

    def create(
        self,
        title: str = "",
        description: str | dict | None = None,
        *,
        author: str | None = None,
        allow_invalid: bool = False,
        lock_timeout: float = 60.0,
        progress: Progress | None = None,
    ) -> CommitResult:
        """Commit the project; if nothing changed since the latest version, return it (`created` False)."""
        return commit(self._repo, title=title, description=description, author=author,
                      allow_invalid=allow_invalid, lock_timeout=lock_timeout, progress=progress)

    def get_list(self, filters: list[dict] | None = None) -> list[VersionRecord]:
        """Versions, oldest first, keeping those that pass every filter {"field", "operator", "value"}."""
        checks = [_compile_filter(f) for f in filters or []]
        return [v for v in self._repo.versions() if all(check(v) for check in checks)]

    def get(self, name: str | int) -> VersionRecord:
        """A version by number, `v<number>`, `latest`, or manifest-hash prefix."""
        return resolve_version(self._repo.versions(), name)

    def restore(
        self,
        version_num: int | None = None,
        version_id: str | None = None,
        dest: str | PathLike | None = None,
        *,
        skip_missed_entities: bool = False,
        verify: bool = False,
        force: bool = False,
        progress: Progress | None = None,
    ) -> RestoreResult:
        """Restore version `version_num` (or the one whose manifest id is/starts with `version_id`) into `dest`."""
        if (version_num is None) == (version_id is None):
            raise UsageError("give exactly one of version_num and version_id")
        if dest is None:
            raise UsageError("dest is required: restore always writes a new directory")
        record = self.get(version_num if version_num is not None else version_id)
        return restore(self._repo, record, Path(dest), skip_missing=skip_missed_entities, verify=verify,
                       force=force, progress=progress)


def _compile_filter(spec: dict) -> Callable[[VersionRecord], bool]:
    try:
        field, op, value = spec["field"], spec.get("operator", "="), spec["value"]
    except (KeyError, TypeError):
        raise UsageError(f"a filter is {{'field', 'operator', 'value'}}, got {spec!r}") from None
    if field not in _FIELDS:
        raise UsageError(f"cannot filter on {field!r} (fields: {', '.join(_FIELDS)})")
    if op not in _OPERATORS:
        raise UsageError(f"unknown filter operator {op!r} (operators: {', '.join(_OPERATORS)})")
    compare = _OPERATORS[op]

    def check(record: VersionRecord) -> bool:
        try:
            return bool(compare(getattr(record, field), value))
        except TypeError:
            return False

    return check
