"""log: the versions, newest first, with their tags, filtered as `git log` filters (author, text, dates, tagged,
a count). Deleted versions are left out unless asked for (`log --all` shows them, marked)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pvc.core.tag import tags_by_version
from pvc.core.when import parse_moment, parse_record_time
from pvc.errors import UsageError
from pvc.record import record
from pvc.store.refs import RefsDoc, VersionRecord

__all__ = ["LogQuery", "LogEntry", "log", "query"]


@record(frozen=True)
class LogQuery:
    limit: int | None = None  # the newest N that pass the filters
    author: str | None = None  # substring of the author, case-insensitive
    grep: str | None = None  # substring of the title or description, case-insensitive
    since: datetime | None = None  # created at or after
    until: datetime | None = None  # created at or before
    tagged: bool = False  # only versions that have a tag
    include_deleted: bool = False


@record(frozen=True)
class LogEntry:
    record: VersionRecord
    tags: list[str]

    def to_json(self) -> dict[str, Any]:
        r = self.record
        return {"number": r.number, "id": r.id, "manifest": r.manifest, "title": r.title,
                "description": r.description, "created_at": r.created_at, "parent": r.parent, "author": r.author,
                "origin": r.origin, "stats": r.stats, "tags": self.tags, "edited_at": r.edited_at,
                "deleted_at": r.deleted_at}


def query(limit: int | None = None, *, author: str | None = None, grep: str | None = None,
          since: str | datetime | None = None, until: str | datetime | None = None, tagged: bool = False,
          include_deleted: bool = False, now: datetime | None = None) -> LogQuery:
    """The query of `pvc log`'s options: `since`/`until` are datetimes, ISO dates (an `until` date includes its
    whole day) or durations ago (`30d`); UsageError for a bad one or a `limit` below 1."""
    if limit is not None and limit < 1:
        raise UsageError("-n must be 1 or more")
    now = now or datetime.now(UTC)
    return LogQuery(limit, author, grep, _moment(since, now, False), _moment(until, now, True), tagged, include_deleted)


def _moment(value: str | datetime | None, now: datetime, end_of_day: bool) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return parse_moment(value, now=now, end_of_day=end_of_day)


def log(refs: RefsDoc, query: LogQuery = LogQuery()) -> list[LogEntry]:
    """The versions `query` selects, newest first."""
    tags = tags_by_version(refs)
    found = []
    for record in reversed(refs.versions):
        if _selected(record, tags.get(record.number, []), query):
            found.append(LogEntry(record, tags.get(record.number, [])))
            if query.limit and len(found) == query.limit:
                break
    return found


def _selected(r: VersionRecord, tags: list[str], q: LogQuery) -> bool:
    if r.deleted and not q.include_deleted:
        return False
    if q.tagged and not tags:
        return False
    if q.author is not None and q.author.casefold() not in r.author.casefold():
        return False
    if q.grep is not None and not _mentions(r, q.grep.casefold()):
        return False
    if q.since is not None or q.until is not None:
        created = parse_record_time(r.created_at)
        if created is None or (q.since is not None and created < q.since) or (q.until is not None and created > q.until):
            return False
    return True


def _mentions(r: VersionRecord, text: str) -> bool:
    description = r.description if isinstance(r.description, str) or r.description is None else \
        json.dumps(r.description, ensure_ascii=False)
    return text in r.title.casefold() or text in (description or "").casefold()
