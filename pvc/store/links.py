"""The files that link a restored project's store to the store it came from.

    <restored>/.pvc/alternates       the `packs/` folders of other stores, searched (read-only) after this one's
    <restored>/.pvc/origin           JSON: where the project was restored from (the next first version's `origin`)
    <source>/.pvc/linked/<id>.json   one per project restored from this store, so that its gc keeps what they use

A restored project shares the source's objects instead of copying them: its store reads the source's packs
through `alternates` and writes new objects only into its own. The source learns of it from its registration
in `linked/`; gc there walks every registered project that still exists (see pvc/core/lineage.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pvc.errors import CorruptObject
from pvc.record import record
from pvc.store.atomic import atomic_write, fsync_dir

__all__ = ["Alternates", "OriginFile", "Registration", "LinkedProjects", "is_store_id"]

_STORE_ID = re.compile(r"[0-9a-f]{32}")


def is_store_id(text: object) -> bool:
    """A store id is 32 lowercase hex digits (it becomes a file name under `linked/`)."""
    return isinstance(text, str) and _STORE_ID.fullmatch(text) is not None


class Alternates:
    """`.pvc/alternates`: absolute paths of other stores' `packs/` folders, one a line, searched in order."""

    def __init__(self, store_dir: Path) -> None:
        self.path = store_dir / "alternates"

    def read(self) -> list[Path]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError) as exc:
            raise CorruptObject(f"{self.path}: unreadable ({exc})") from None
        paths = [Path(line) for line in text.splitlines() if line.strip()]
        if not all(p.is_absolute() for p in paths):
            raise CorruptObject(f"{self.path}: every line must be an absolute path to a packs/ folder")
        return paths

    def write(self, packs_dirs: list[Path]) -> None:
        atomic_write(self.path, "".join(f"{p}\n" for p in packs_dirs).encode())


class OriginFile:
    """`.pvc/origin`: the lineage of a restored project, a JSON object (docs/format.md, "origin")."""

    def __init__(self, store_dir: Path) -> None:
        self.path = store_dir / "origin"

    def read(self) -> dict[str, Any] | None:
        try:
            doc = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise CorruptObject(f"{self.path}: unreadable ({exc})") from None
        if not isinstance(doc, dict):
            raise CorruptObject(f"{self.path}: not a JSON object")
        return doc

    def write(self, origin: dict[str, Any]) -> None:
        atomic_write(self.path, json.dumps(origin, indent=1, ensure_ascii=False).encode() + b"\n")


@record(frozen=True)
class Registration:
    """A project restored from this store: its store id, where it lives, and where it was being written."""

    store: str  # the restored project's store id
    project: str  # absolute path of the restored project
    staging: str  # the folder the restore wrote into before renaming it to `project`
    version: int  # the version of this store it was restored from
    registered_at: str

    def to_json(self) -> dict[str, Any]:
        return {"store": self.store, "project": self.project, "staging": self.staging, "version": self.version,
                "registered_at": self.registered_at}


class LinkedProjects:
    """`.pvc/linked/`: one registration per restored project (written under this store's lock)."""

    def __init__(self, store_dir: Path) -> None:
        self.dir = store_dir / "linked"

    def list(self) -> list[Registration]:
        found = []
        for path in sorted(self.dir.glob("*.json")) if self.dir.is_dir() else []:
            try:
                doc = json.loads(path.read_bytes())
                registration = Registration(doc["store"], str(doc["project"]), str(doc["staging"]),
                                            int(doc["version"]), str(doc.get("registered_at", "")))
                if not is_store_id(registration.store):
                    raise ValueError("not a store id")
                found.append(registration)
            except (OSError, ValueError, KeyError, TypeError):
                raise CorruptObject(f"{path}: damaged registration of a linked project (remove it to continue: "
                                    "gc then no longer keeps what that project needs)") from None
        return found

    def add(self, registration: Registration) -> None:
        if not is_store_id(registration.store):
            raise CorruptObject(f"{registration.store[:80]!r} is not a store id")
        self.dir.mkdir(exist_ok=True)
        atomic_write(self.dir / f"{registration.store}.json",
                     json.dumps(registration.to_json(), indent=1, ensure_ascii=False).encode() + b"\n")

    def drop(self, store: str) -> None:
        if not is_store_id(store):
            raise CorruptObject(f"{store[:80]!r} is not a store id")
        (self.dir / f"{store}.json").unlink(missing_ok=True)
        fsync_dir(self.dir)
