"""Version names: `3`, `v3`, `latest`, or a manifest-hash prefix of at least 6 hex digits."""

from __future__ import annotations

import re

from pvc.errors import VersionNotFound
from pvc.store.refs import VersionRecord

__all__ = ["resolve_version", "MIN_PREFIX"]

MIN_PREFIX = 6
_NUMBER = re.compile(r"[vV]?(\d+)")
_HEX = re.compile(r"[0-9a-fA-F]+")


def resolve_version(versions: list[VersionRecord], name: str | int) -> VersionRecord:
    """The one version `name` designates, or VersionNotFound saying why."""
    if not versions:
        raise VersionNotFound("no versions yet (run `pvc commit`)")
    text = str(name).strip()
    if text == "latest":
        return versions[-1]
    match = _NUMBER.fullmatch(text)
    if match and (len(text) < MIN_PREFIX or text[0] in "vV"):
        number = int(match.group(1))
        if 1 <= number <= len(versions):
            return versions[number - 1]
        raise VersionNotFound(f"version {text} does not exist (versions are 1..{len(versions)})")
    if _HEX.fullmatch(text) and len(text) >= MIN_PREFIX:
        hits = [v for v in versions if v.manifest.startswith(text.lower())]
        if len(hits) == 1:
            return hits[0]
        if hits:
            raise VersionNotFound(f"{text} is ambiguous: versions {', '.join(str(v.number) for v in hits)} match")
        if match:  # all digits and long: maybe a number after all
            number = int(match.group(1))
            if 1 <= number <= len(versions):
                return versions[number - 1]
        raise VersionNotFound(f"no version has a manifest starting with {text}")
    raise VersionNotFound(f"{text!r} is not a version name (use a number, v<number>, latest, or >= {MIN_PREFIX} hex digits)")
