"""Version names: `3`, `v3`, `latest`, a tag, or a manifest-hash prefix of at least 6 hex digits.

Deleted versions are not found by any name: their numbers stay taken, and naming one says it was deleted.
"""

from __future__ import annotations

import re

from pvc.errors import VersionNotFound
from pvc.store.refs import VersionRecord

__all__ = ["resolve_version", "MIN_PREFIX"]

MIN_PREFIX = 6
_NUMBER = re.compile(r"[vV]?(\d+)")
_HEX = re.compile(r"[0-9a-fA-F]+")


def resolve_version(versions: list[VersionRecord] | tuple[VersionRecord, ...], name: str | int,
                    tags: dict[str, int] | None = None) -> VersionRecord:
    """The one live version `name` designates among `versions` (all of them, deleted ones included, oldest first)
    and `tags`, or VersionNotFound saying why.

    Order: `latest`, a number (`3`, `v3`; 6 digits or more are tried as a hash prefix first), a tag, a prefix."""
    versions, tags = tuple(versions), tags or {}
    live = [v for v in versions if not v.deleted]
    if not live:
        raise VersionNotFound("no versions yet (run `pvc commit`)" if not versions else
                              "no versions left (every version was deleted; run `pvc commit`)")
    text = str(name).strip()
    if text == "latest":
        return live[-1]
    match = _NUMBER.fullmatch(text)
    if match and (len(text) < MIN_PREFIX or text[0] in "vV"):
        return _by_number(versions, int(match.group(1)), text)
    if text in tags:
        return _by_number(versions, tags[text], text)
    if _HEX.fullmatch(text) and len(text) >= MIN_PREFIX:
        hits = [v for v in live if v.manifest.startswith(text.lower())]
        if len(hits) == 1:
            return hits[0]
        if hits:
            raise VersionNotFound(f"{text} is ambiguous: versions {', '.join(str(v.number) for v in hits)} match")
        if match:  # all digits and long: maybe a number after all
            return _by_number(versions, int(match.group(1)), text)
        raise VersionNotFound(f"no version has a manifest starting with {text}")
    raise VersionNotFound(f"{text!r} is not a version name (use a number, v<number>, latest, a tag, "
                          f"or >= {MIN_PREFIX} hex digits)")


def _by_number(versions: tuple[VersionRecord, ...], number: int, text: str) -> VersionRecord:
    if not 1 <= number <= len(versions):
        raise VersionNotFound(f"version {text} does not exist (versions are 1..{len(versions)})")
    record = versions[number - 1]
    if record.deleted:
        raise VersionNotFound(f"version {number} was deleted ({record.deleted_at}); its number stays taken")
    return record
