"""`.pvc/partial`: the versions this store knows whose objects are, wholly or in part, on a remote only.

`pvc pull --metadata-only` and `pvc clone --dataset` bring a version's record (and its manifest, trees and pages)
without all of its files' blobs; `pvc clone` brings the records of the versions it does not check out and nothing
else. Those versions are listed here, so that gc and verify do not take the absent objects for damage, and restore
can say where they are. A later pull that fetches a version whole takes it off the list.

    {"<version id>": {"remote": "origin", "has": "records" | "structure", "datasets": [names] | null}}

`has`: "records" — only the version record is here; "structure" — also its manifest, trees and pages, with the
blobs of the project's own files and of `datasets` (none of the datasets' when null).
"""

from __future__ import annotations

import json
from pathlib import Path

from pvc.errors import CorruptObject
from pvc.record import record
from pvc.store.atomic import atomic_write

__all__ = ["Partial", "PartialVersions"]


@record(frozen=True)
class Partial:
    remote: str
    has: str  # "records" or "structure"
    datasets: tuple[str, ...] | None = None  # with "structure": the datasets whose blobs are here

    def to_json(self) -> dict:
        return {"remote": self.remote, "has": self.has, "datasets": list(self.datasets) if self.datasets is not None else None}


class PartialVersions:
    def __init__(self, store_dir: Path) -> None:
        self.path = store_dir / "partial"

    def read(self) -> dict[str, Partial]:
        try:
            doc = json.loads(self.path.read_bytes())
            return {vid: Partial(v["remote"], v["has"], None if v.get("datasets") is None else tuple(v["datasets"]))
                    for vid, v in doc.items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            raise CorruptObject(f"{self.path}: damaged (it lists the versions whose objects are on a remote only)") from None

    def write(self, partial: dict[str, Partial]) -> None:
        """Replace the list (caller holds the lock)."""
        if not partial and not self.path.exists():
            return
        atomic_write(self.path, json.dumps({vid: p.to_json() for vid, p in sorted(partial.items())}, indent=1).encode() + b"\n")
