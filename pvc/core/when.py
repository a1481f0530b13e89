"""Durations and moments as people write them: `90s`, `30m`, `1h`, `2d`, `3w`; ISO dates and times, or a
duration meaning that long ago (`--since 30d`)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from pvc.errors import UsageError

__all__ = ["parse_duration", "parse_moment", "parse_record_time"]

_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
_AGO = re.compile(r"\d+(?:\.\d+)?[smhdw]")  # a moment given as a duration needs its unit: `2026` is no date


def parse_duration(text: str | float) -> float:
    """Seconds in `90`, `90s`, `30m`, `1h`, `2d`, `3w` (or a number of seconds)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        match = _DURATION.fullmatch(str(text))
        if not match:
            raise UsageError(f"{text!r} is not a duration (use e.g. 0, 90s, 30m, 1h, 2d, 3w)")
        seconds = float(match.group(1)) * _UNIT[match.group(2)]
    if seconds < 0:
        raise UsageError(f"{text!r}: a duration cannot be negative")
    return seconds


def parse_moment(text: str, *, now: datetime, end_of_day: bool = False) -> datetime:
    """A point in time (UTC): an ISO date (`2026-11-23`: its start, or with `end_of_day` its last instant), an ISO
    date and time (without an offset: UTC), or a duration ago (`30d`, `12h`)."""
    text = text.strip()
    if _AGO.fullmatch(text):
        return now - timedelta(seconds=parse_duration(text))
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{text!r} is not a date (use e.g. 2026-11-23, 2026-11-23T14:30, or 30d for 30 days ago)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if end_of_day and _DATE_ONLY.fullmatch(text):
        moment += timedelta(days=1, microseconds=-1)
    return moment


def parse_record_time(text: str) -> datetime | None:
    """A record's `created_at` as a datetime (None if it does not parse: a hand-edited refs file)."""
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
