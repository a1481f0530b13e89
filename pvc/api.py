"""The Python API: `pvc.Project` and its `version` accessor, mirroring `api.project.version.*`.

    project = pvc.Project("path/to/project")           # or pvc.Project.init(path)
    v = project.version.create(title="checkpoint-1", description={"app": "augment"})
    project.version.get_list(filters=[{"field": "title", "operator": "=", "value": "checkpoint-1"}])
    project.version.update(version_num=1, title="baseline", description={"app": "train", "params": {"lr": 0.1}})
    project.version.tag("baseline", 1)
    project.version.restore(version_num=1, dest="../proj-v1", skip_missed_entities=True, datasets=["train"])
    project.version.delete(version_num=2); project.gc(grace=0)
    project.version.restore(version_num=1, dest="../proj-v1", skip_missed_entities=True)
    project.remote.add("origin", "s3://bucket/prefix"); project.remote.push(); project.remote.pull()
    pvc.restore("s3://bucket/prefix", 7, "/data/v7")      # no project: a CI job with a URL and credentials
    pvc.clone("s3://bucket/prefix", "work/proj", version=7, datasets=["train"])
"""

from __future__ import annotations

import io
import operator
from collections.abc import Callable
from datetime import datetime
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from pvc.core import inspect
from pvc.core.commit import CommitResult, commit
from pvc.core.config import ConfigChange, ConfigEntry, ConfigListing, get_config, list_config, set_config, unset_config
from pvc.core.delete import DeleteResult, delete_versions
from pvc.core.diff import diff_snapshots
from pvc.core.discard import DiscardResult, discard, undo_discard
from pvc.core.edit import UNCHANGED, edit
from pvc.core.gc import DEFAULT_GRACE, GcResult, gc
from pvc.core.inspect import ItemView, VersionDetails
from pvc.core.log import LogEntry, log
from pvc.core.log import query as log_query
from pvc.core.prune import PruneResult, prune
from pvc.core.repair import IndexRepair, RefsRepair, repair_index, repair_refs
from pvc.core.resolve import resolve_version
from pvc.core.restore import RestoreResult
from pvc.core.restore import restore as restore_version
from pvc.core.selection import Selection
from pvc.core.snapshot import Snapshot
from pvc.core.status import status, version_snapshot, working_snapshot
from pvc.core.tag import TagChange, TagView, list_tags, tag, tags_by_version, untag
from pvc.core.transfer import in_datasets
from pvc.core.unlock import UnlockResult, unlock
from pvc.core.verify import VerifyReport, verify
from pvc.core.when import parse_duration
from pvc.errors import ObjectMissing, UsageError
from pvc.store.refs import VersionRecord
from pvc.store.repository import Repository

if TYPE_CHECKING:
    from pvc.core.clone import CloneResult
    from pvc.core.graph import Lineage
    from pvc.core.pull import PullResult
    from pvc.core.push import PushResult
    from pvc.core.remote import RemoteInfo

__all__ = ["Project", "VersionApi", "RemoteApi", "UNCHANGED", "restore", "clone"]

Progress = Callable[[str, int, int], None]
_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq, "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge, "in": lambda a, b: a in b, "contains": lambda a, b: b in (a or ""),
}
_FIELDS = ("number", "manifest", "title", "description", "created_at", "author", "parent", "id", "edited_at",
           "origin", "tags")


class Project:
    """A project directory with a `.pvc/` store (found in `path` or the nearest parent that has one).

    Opening checks `.pvc/config` (CorruptObject naming a bad key); `check_config=False` opens a store whose config
    has problems, with defaults in their place, to fix them (`config_set`, `config_unset`) or report them (`verify`)."""

    def __init__(self, path: str | PathLike = ".", *, check_config: bool = True) -> None:
        self._repo = Repository.discover(Path(path), check_config=check_config)
        self.version = VersionApi(self._repo)
        self.remote = RemoteApi(self._repo)

    @classmethod
    def init(cls, path: str | PathLike = ".") -> Project:
        """Create `.pvc/` in `path` and open it."""
        Repository.init(Path(path).resolve())
        return cls(path)

    @property
    def path(self) -> Path:
        return self._repo.project_root

    def log(self, limit: int | None = None, *, author: str | None = None, grep: str | None = None,
            since: str | datetime | None = None, until: str | datetime | None = None, tagged: bool = False,
            include_deleted: bool = False) -> list[VersionRecord]:
        """Versions, newest first, kept by the filters of `history`."""
        return [entry.record for entry in self.history(limit, author=author, grep=grep, since=since, until=until,
                                                       tagged=tagged, include_deleted=include_deleted)]

    def history(self, limit: int | None = None, *, author: str | None = None, grep: str | None = None,
                since: str | datetime | None = None, until: str | datetime | None = None, tagged: bool = False,
                include_deleted: bool = False) -> list[LogEntry]:
        """Versions newest first, each with its tags (`entry.record`, `entry.tags`), kept by every filter given:
        `author` and `grep` (title or description) are case-insensitive substrings; `since`/`until` are
        datetimes, ISO dates (an `until` date includes its whole day) or durations ago (`30d`); `tagged` keeps
        tagged versions only; `include_deleted` shows deleted ones too; `limit` keeps the newest N."""
        return log(self._repo.refs.read(), log_query(limit, author=author, grep=grep, since=since, until=until,
                                                     tagged=tagged, include_deleted=include_deleted))

    def show(self, name: str | int = "latest") -> VersionDetails:
        return inspect.show(self._repo.store, self._here(name, "structure"))

    def tags_of(self, number: int) -> list[str]:
        """The tags of version `number`."""
        return tags_by_version(self._repo.refs.read()).get(number, [])

    def graph(self) -> Lineage:
        """The versions of this project and of every project linked to it (restored from it, or it from them)."""
        from pvc.core.graph import lineage  # imported on first use, as graphview: only `pvc graph` needs them

        return lineage(self._repo)

    def graph_text(self, fmt: str = "mermaid") -> str:
        """The lineage graph as Mermaid, DOT, or a self-contained HTML page."""
        from pvc.core.graphview import FORMATS, render

        if fmt not in FORMATS:
            raise UsageError(f"unknown graph format {fmt!r} (formats: {', '.join(FORMATS)})")
        return render(self.graph(), fmt, title=f"pvc lineage of {self.path.name}")

    def prune(self, *, keep_last: int | None = None, keep_tagged: bool = False, keep_within: str | float | None = None,
              dry_run: bool = False, lock_timeout: float = 60.0) -> PruneResult:
        """Delete every version no rule keeps: the newest `keep_last`, the tagged ones, those younger than
        `keep_within` ("30d", seconds); `gc` then frees their objects."""
        within = parse_duration(keep_within) if keep_within is not None else None
        return prune(self._repo, keep_last=keep_last, keep_tagged=keep_tagged, keep_within=within, dry_run=dry_run,
                     lock_timeout=lock_timeout)

    def ls(self, name: str | int = "latest", dataset: str | None = None) -> list[ItemView]:
        return list(inspect.ls(self._repo.store, self._here(name, "structure"), dataset))

    def _here(self, name: str | int, need: str) -> VersionRecord:
        """Version `name`, if what the caller needs of it is in the store (see `_refuse_partial`)."""
        record = self.version.get(name)
        _refuse_partial(self._repo, record, need)
        return record

    def cat(self, name: str | int, path: str, out: BinaryIO) -> int:
        """Write one file of a version to `out`; return its size."""
        return inspect.cat(self._repo.store, self._here(name, "blobs"), path, out)

    def status(self) -> dict:
        """The working project against the latest version (the `diff --json` document, `to` = "working")."""
        return status(self._repo)

    def diff(self, a: str | int | None = None, b: str | int | None = None, *, dataset: str | None = None,
             item: str | None = None, details: bool = True) -> dict:
        """No version: latest vs working; one: `a` vs working; two: `a` vs `b`. Without `details` the modified
        items have no semantic annotation diff (`objects`, `annotation`) and the annotations are not read: what
        `pvc diff --stat` prints."""
        if a is None and b is not None:
            raise UsageError("give the first version before the second")
        if b is not None:
            ra, rb = self._here(a, "structure"), self._here(b, "structure")
            return diff_snapshots(Snapshot(self._repo.store, bytes.fromhex(ra.manifest)),
                                  Snapshot(self._repo.store, bytes.fromhex(rb.manifest)),
                                  source=ra.number, target=rb.number, dataset=dataset, item=item, details=details)
        ra = self.version.get(a if a is not None else "latest") if (a is not None or self._repo.latest()) else None
        working, cap = working_snapshot(self._repo, ra.manifest if ra else None,  # untouched since `ra`: nothing read
                                        from_change=True)  # (built from the change when `ra` is the stat cache's base)
        left = version_snapshot(self._repo, ra.manifest if ra else None, working)
        return diff_snapshots(left, working, source=ra.number if ra else None, target="working",
                              dataset=dataset, item=item, invalid=cap.invalid, details=details)

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
        """Drop objects no version, saved state or linked project references; `grace` ("1h", "30m", seconds)
        spares young packs."""
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
    """`project.version`: create, get_list, get, update, delete, tag, restore."""

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

    def get_list(self, filters: list[dict] | None = None, *, include_deleted: bool = False) -> list[VersionRecord]:
        """Versions, oldest first, keeping those that pass every filter {"field", "operator", "value"}; the field
        `tags` is the list of the version's tags (`{"field": "tags", "operator": "contains", "value": "baseline"}`).
        Deleted versions only with `include_deleted`."""
        checks = [_compile_filter(f) for f in filters or []]
        refs = self._repo.refs.read()
        tags = tags_by_version(refs)
        return [v for v in refs.versions if (include_deleted or not v.deleted)
                and all(check(v, tags.get(v.number, [])) for check in checks)]

    def get(self, name: str | int) -> VersionRecord:
        """A version by number, `v<number>`, `latest`, tag, or manifest-hash prefix (never a deleted one)."""
        refs = self._repo.refs.read()
        return resolve_version(refs.versions, name, refs.tags)

    def update(self, version_id: str | None = None, version_num: int | None = None, *, title: str | None = None,
               description=UNCHANGED, lock_timeout: float = 60.0) -> VersionRecord:
        """Change the title and/or description of a version (the SDK's `version.update`); the manifest never
        changes, `edited_at` is recorded. `description=None` removes it; leave it out to keep it."""
        return edit(self._repo, self._name(version_id, version_num), title=title, description=description,
                    lock_timeout=lock_timeout)

    def delete(self, version_id: str | None = None, version_num: int | None = None, *,
               lock_timeout: float = 60.0) -> DeleteResult:
        """Delete a version: it leaves the log, its number stays taken, its tags go; `gc` frees its objects."""
        return delete_versions(self._repo, [self._name(version_id, version_num)], apply=True, lock_timeout=lock_timeout)

    def delete_many(self, names: list[str | int], *, apply: bool = True, lock_timeout: float = 60.0) -> DeleteResult:
        """Delete several versions at once (any version names); with `apply` False, only say what would go."""
        return delete_versions(self._repo, list(names), apply=apply, lock_timeout=lock_timeout)

    def tag(self, name: str, version: str | int = "latest", *, force: bool = False,
            lock_timeout: float = 60.0) -> TagChange:
        """Name a version (unique names; `force` moves an existing tag)."""
        return tag(self._repo, name, version, force=force, lock_timeout=lock_timeout)

    def untag(self, name: str, *, lock_timeout: float = 60.0) -> TagChange:
        return untag(self._repo, name, lock_timeout=lock_timeout)

    def tags(self) -> list[TagView]:
        """Every tag with its version, by name."""
        return list_tags(self._repo.refs.read())

    def _name(self, version_id: str | None, version_num: int | None) -> str | int:
        """`version_id` is a manifest id or prefix (any version name is accepted: a tag, `latest`, `v3`)."""
        if (version_num is None) == (version_id is None):
            raise UsageError("give exactly one of version_num and version_id")
        return version_num if version_num is not None else version_id

    def restore(
        self,
        version_num: int | None = None,
        version_id: str | None = None,
        dest: str | PathLike | None = None,
        *,
        skip_missed_entities: bool = False,
        verify: bool = False,
        force: bool = False,
        datasets: list[str] | tuple[str, ...] = (),
        classes: list[str] | tuple[str, ...] = (),
        include: list[str] | tuple[str, ...] = (),
        link: bool = True,
        remote: str | None = None,
        lock_timeout: float = 60.0,
        progress: Progress | None = None,
    ) -> RestoreResult:
        """Restore version `version_num` (or the one whose manifest id is/starts with `version_id`, or a tag) into
        `dest` as a new project. `datasets` (nested names too), `classes` (items with an object or tag of that
        class) and `include` (glob on item paths) restore part of it. With `link`, the new project has a store
        that shares this one's objects and remembers where it came from; without, it is plain files. With
        `remote` (a remote's name), straight from that remote, numbered as it numbers its versions (never linked:
        the objects are not on this machine)."""
        name = self._name(version_id, version_num)
        if dest is None:
            raise UsageError("dest is required: restore always writes a new directory")
        selection = Selection(tuple(datasets), tuple(classes), tuple(include))
        if remote is not None:
            from pvc.core.remote import find_remote, open_remote

            store = open_remote(self._repo, find_remote(self._repo, remote))
            try:
                store.require_remote()
                return restore_version(store, resolve_version(store.versions(), name), Path(dest),
                                       project_root=self._repo.project_root, selection=selection,
                                       skip_missing=skip_missed_entities, verify=verify, force=force,
                                       progress=progress)
            finally:
                store.close()
        record = self.get(name)
        _refuse_partial(self._repo, record, "blobs", selection.datasets)
        return restore_version(self._repo.store, record, Path(dest), project_root=self._repo.project_root,
                               selection=selection, link=self._repo if link else None,
                               skip_missing=skip_missed_entities, verify=verify, force=force,
                               lock_timeout=lock_timeout, progress=progress)


class RemoteApi:
    """`project.remote`: add, list, remove, push, pull. (The remote modules are imported on first use: commands
    that never reach a remote do not load them.)"""

    def __init__(self, repo: Repository) -> None:
        self._repo = repo

    def add(self, name: str, url: str, *, endpoint: str | None = None, region: str | None = None,
            timeout: float = 60.0, retries: int = 5) -> RemoteInfo:
        from pvc.core.remote import add_remote

        return add_remote(self._repo, name, url, endpoint=endpoint, region=region, timeout=timeout, retries=retries)

    def list(self) -> list[RemoteInfo]:
        from pvc.core.remote import list_remotes

        return list_remotes(self._repo)

    def remove(self, name: str) -> RemoteInfo:
        from pvc.core.remote import remove_remote

        return remove_remote(self._repo, name)

    def push(self, name: str | None = None, *, lock_timeout: float = 60.0, progress: Progress | None = None) -> PushResult:
        """Send every version the remote lacks (`origin`, or the only remote, by default)."""
        from pvc.core.push import push

        return push(self._repo, name, lock_timeout=lock_timeout, progress=progress)

    def pull(self, name: str | None = None, *, versions: list[int] | None = None, metadata_only: bool = False,
             lock_timeout: float = 60.0, progress: Progress | None = None) -> PullResult:
        """Fetch the remote's versions and their objects into the store; the working tree is not touched."""
        from pvc.core.pull import pull

        return pull(self._repo, name, versions=versions, metadata_only=metadata_only, lock_timeout=lock_timeout,
                    progress=progress)


def restore(url: str, version: str | int, dest: str | PathLike, *, skip_missed_entities: bool = False,
            endpoint: str | None = None, region: str | None = None, verify: bool = False, force: bool = False,
            datasets: list[str] | tuple[str, ...] = (), classes: list[str] | tuple[str, ...] = (),
            include: list[str] | tuple[str, ...] = (), progress: Progress | None = None) -> RestoreResult:
    """Restore `version` of the remote at `url` into `dest` (the part `datasets`, `classes` and `include` keep,
    as `project.version.restore`), with no project and no local store."""
    from pvc.core.remote import restore_from_url

    return restore_from_url(url, version, Path(dest), endpoint=endpoint, region=region,
                            selection=Selection(tuple(datasets), tuple(classes), tuple(include)),
                            skip_missing=skip_missed_entities, verify=verify, force=force, progress=progress)


def clone(url: str, dest: str | PathLike, *, version: str | int | None = None, datasets: list[str] | None = None,
          endpoint: str | None = None, region: str | None = None, progress: Progress | None = None) -> CloneResult:
    """A new project at `dest` from the remote at `url`, with `origin` set and `version` (default: the latest)
    checked out (only `datasets`, when given)."""
    from pvc.core.clone import clone as clone_remote

    return clone_remote(url, Path(dest), endpoint=endpoint, region=region, version=version, datasets=datasets,
                        progress=progress)


def _refuse_partial(repo: Repository, record: VersionRecord, need: str, datasets: tuple[str, ...] = ()) -> None:
    """A version whose objects are on a remote only: say where they are, when what is needed of it is not here
    (`need`: "structure" for show, ls and diff; "blobs" for cat and restore; a restore of `datasets` only needs
    theirs, which a `clone --dataset` brought)."""
    partial = repo.partial.read().get(record.id)
    if partial is None or (need == "structure" and partial.has == "structure"):
        return
    if (need == "blobs" and partial.has == "structure" and datasets and partial.datasets
            and all(in_datasets(d, list(partial.datasets)) for d in datasets)):
        return
    what = "its objects are" if partial.has == "records" else "its files' contents are"
    raise ObjectMissing(f"version {record.number}: {what} on remote {partial.remote!r} only: "
                        f"`pvc pull --versions {record.number}` brings them" +
                        (f", or restore it with --remote {partial.remote}" if need == "blobs" else ""))


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

    def check(record: VersionRecord, tags: list[str]) -> bool:
        try:
            return bool(compare(tags if field == "tags" else getattr(record, field), value))
        except TypeError:
            return False

    return check
