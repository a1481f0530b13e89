"""The refs file `.pvc/versions`: version number -> manifest id, with each version's record.

It is JSON (readable with any tool) carrying a blake3 checksum of its version list, rewritten atomically
under the repository lock; the previous content is kept in `versions.bak` first, so a damaged file can
always be replaced by the last good one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import blake3

from pvc.errors import CorruptObject
from pvc.store.atomic import atomic_write

__all__ = ["VersionRecord", "read_versions", "write_versions"]

REFS_FORMAT = 1


@dataclass(frozen=True)
class VersionRecord:
    """One version: what the user said about it and which manifest it points at."""

    number: int
    manifest: str
    title: str
    description: str | dict | None
    created_at: str
    author: str
    parent: int | None
    stats: dict[str, Any] = field(default_factory=dict)
    origin: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


_FIELDS = tuple(VersionRecord.__dataclass_fields__)  # a newer pvc may add fields: they are ignored, not fatal


def _checksum(versions: list[dict]) -> str:
    canonical = json.dumps(versions, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return blake3.blake3(canonical.encode()).hexdigest()


def read_versions(path: Path) -> list[VersionRecord]:
    """All versions, oldest first; a missing file means no versions yet."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    hint = f"{path} is damaged; its previous copy is {path.name}.bak (see docs/format.md, 'Recovering refs')"
    try:
        doc = json.loads(raw)
        versions = doc["versions"]
        ok = doc.get("format") == REFS_FORMAT and doc.get("checksum") == _checksum(versions)
        records = [VersionRecord(**{k: v[k] for k in _FIELDS if k in v}) for v in versions] if ok else None
    except (ValueError, KeyError, TypeError, AttributeError):
        records = None
    if records is None:
        raise CorruptObject(hint)
    if [r.number for r in records] != list(range(1, len(records) + 1)):
        raise CorruptObject(f"{hint} (version numbers are not 1..{len(records)})")
    return records


def write_versions(path: Path, records: list[VersionRecord]) -> None:
    """Replace the refs file (caller holds the lock); the old content goes to `versions.bak` first."""
    versions = [r.to_json() for r in records]
    doc = {"format": REFS_FORMAT, "checksum": _checksum(versions), "versions": versions}
    if path.exists():
        atomic_write(path.with_name(path.name + ".bak"), path.read_bytes())
    atomic_write(path, json.dumps(doc, indent=1, ensure_ascii=False).encode() + b"\n")
