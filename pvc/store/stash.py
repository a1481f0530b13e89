"""Saved states under `.pvc/stash/`: project states that are not versions, but that gc must keep whole.

`pvc discard --yes` saves the state it is about to discard as `<time_ns>-<12 hex>.json`. For gc and verify, every
file there (at any depth, `*.tmp` aside) is read as JSON and every `"manifest"` value in it, at any depth, is a
root, so a record of any shape that names a manifest keeps it alive; a file that does not parse stops gc.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pvc.errors import CorruptObject
from pvc.record import record
from pvc.store.atomic import atomic_write, fsync_dir

__all__ = ["SavedState", "SavedStates"]


@record(frozen=True)
class SavedState:
    name: str
    manifest: str
    created_at: str
    base: int | None


class SavedStates:
    def __init__(self, store_dir: Path) -> None:
        self.dir = store_dir / "stash"

    def list(self) -> list[SavedState]:
        """The saved states `discard` wrote, oldest first."""
        states = []
        for path in sorted(self.dir.glob("*.json")) if self.dir.is_dir() else []:
            try:
                record = json.loads(path.read_text())
                bytes.fromhex(record["manifest"])
                states.append(SavedState(path.stem, record["manifest"], record.get("created_at", ""), record.get("base")))
            except (OSError, ValueError, KeyError, TypeError):
                raise CorruptObject(f"{path}: damaged saved state (move it aside to continue)") from None
        return states

    def save(self, manifest: bytes, base: int | None) -> str:
        """Record a saved state (its objects are already durable in the store); return its name."""
        self.dir.mkdir(exist_ok=True)
        name = f"{time.time_ns()}-{manifest.hex()[:12]}"
        record = {"manifest": manifest.hex(), "created_at": datetime.now(UTC).isoformat(timespec="seconds"), "base": base}
        atomic_write(self.dir / f"{name}.json", json.dumps(record).encode())
        return name

    def drop(self, name: str) -> None:
        (self.dir / f"{name}.json").unlink()
        fsync_dir(self.dir)

    def roots(self) -> list[tuple[str, str]]:
        """(label, manifest hex) of every manifest any file under `stash/` names; CorruptObject if one does not parse."""
        roots: list[tuple[str, str]] = []
        if not self.dir.is_dir():
            return roots
        for path in sorted(p for p in self.dir.rglob("*") if p.is_file() and not p.name.endswith(".tmp")):
            label = f"stash/{path.relative_to(self.dir).as_posix()}"
            try:
                doc = json.loads(path.read_bytes())
            except (OSError, ValueError) as exc:
                raise CorruptObject(f"{path}: unreadable saved state ({exc}); nothing can be collected until it is fixed") from None
            roots += [(label, m) for m in _manifest_values(doc)]
        return roots


def _manifest_values(doc: Any) -> list[str]:
    if isinstance(doc, dict):
        found = [doc["manifest"]] if isinstance(doc.get("manifest"), str) else []
        return found + [m for k, v in doc.items() if k != "manifest" for m in _manifest_values(v)]
    if isinstance(doc, list):
        return [m for v in doc for m in _manifest_values(v)]
    return []
