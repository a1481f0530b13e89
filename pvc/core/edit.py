"""edit: change a version's title or description. The manifest (what the version is) never changes, nor do its
number, id, author or date; the record keeps `edited_at`, the time of the last edit."""

from __future__ import annotations

from datetime import UTC, datetime

from pvc.core.resolve import resolve_version
from pvc.errors import UsageError
from pvc.record import replace
from pvc.store.refs import VersionRecord
from pvc.store.repository import Repository

__all__ = ["UNCHANGED", "edit"]

UNCHANGED = object()  # a description left as it is (None is a description: none)


def edit(repo: Repository, version: str | int, *, title: str | None = None, description=UNCHANGED,
         lock_timeout: float = 60.0) -> VersionRecord:
    """Set the title and/or description of `version`; return the new record."""
    if title is None and description is UNCHANGED:
        raise UsageError("nothing to change: give a new title or description")
    if description is not UNCHANGED and not (description is None or isinstance(description, (str, dict))):
        raise UsageError("a description is text, a JSON object, or None")
    with repo.lock(lock_timeout):
        refs = repo.refs.read()
        record = resolve_version(refs.versions, version, refs.tags)
        changes: dict = {"edited_at": datetime.now(UTC).isoformat(timespec="seconds")}
        if title is not None:
            changes["title"] = title
        if description is not UNCHANGED:
            changes["description"] = description
        edited = replace(record, **changes)
        versions = list(refs.versions)
        versions[record.number - 1] = edited
        repo.refs.write(replace(refs, versions=tuple(versions)))
    return edited
