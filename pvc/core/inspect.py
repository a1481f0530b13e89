"""Read-only views of versions: show (record + stats), ls (items with metadata), cat (one file)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

from pvc.core.snapshot import Snapshot
from pvc.errors import CorruptObject, UsageError
from pvc.record import record
from pvc.store.backend import ObjectStore
from pvc.store.model import safe_relpath
from pvc.store.refs import VersionRecord

__all__ = ["ItemView", "VersionDetails", "show", "ls", "cat"]


@record(frozen=True)
class VersionDetails:
    record: VersionRecord
    project_type: str
    layout: str
    stats: dict[str, Any]
    datasets: list[dict[str, Any]]
    problems: list[dict[str, Any]]
    warnings: list[str]  # where the project's layout disagreed with its meta.json when committed


@record(frozen=True)
class ItemView:
    dataset: str
    item: str
    path: str | None
    size: int | None
    blob: str | None
    meta: dict
    annotation: dict | None
    kind: str
    files: list[str]
    problems: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "item": self.item, "kind": self.kind, "path": self.path, "size": self.size,
                "blob": self.blob, "files": self.files, "meta": self.meta, "annotation": self.annotation,
                "problems": self.problems}


def show(store: ObjectStore, record: VersionRecord) -> VersionDetails:
    """The record with the manifest's stats and one line of figures per dataset."""
    snap = Snapshot(store, bytes.fromhex(record.manifest))
    datasets = []
    for ds in snap.datasets():
        datasets.append({"name": ds.name, "path": ds.dir, "items": ds.item_count, "files": ds.file_count})
    m = snap.manifest
    return VersionDetails(record, m.project_type, m.layout, m.stats, datasets, list(m.problems or []),
                          list(m.warnings or []))


def ls(store: ObjectStore, record: VersionRecord, dataset: str | None = None) -> Iterator[ItemView]:
    """Every item of a version (or of one dataset and the datasets nested in it) with its metadata."""
    snap = Snapshot(store, bytes.fromhex(record.manifest))
    found = False
    for ds in snap.datasets():
        if dataset is not None and ds.name != dataset and not ds.name.startswith(dataset + "/"):
            continue
        found = True
        sizes = {rel: (v.oid.hex(), v.size) for rel, v in ds.files(store)}
        for name, item in ds.items(store):
            media = item.media
            files = list(item.media_paths())
            sized = [sizes[f] for f in files if f in sizes]
            size = sum(s for _, s in sized) if sized else None
            blob = sized[0][0] if len(sized) == 1 else None  # a DICOM series has one blob per slice
            folders = {f.rsplit("/", 1)[0] for f in files}
            in_folder = len(files) > 1 and len(folders) == 1 and folders != {media.split("/", 1)[0]}
            path = f"{ds.dir}/{folders.pop() if in_folder else media}" if media else None  # a series folder
            yield ItemView(ds.name, name, path, size, blob, item.meta or {}, item.annotation, item.kind,
                           [f"{ds.dir}/{f}" for f in files], list(item.problems or ()))
    if dataset is not None and not found:
        raise UsageError(f"dataset {dataset!r} is not in version {record.number}")


def cat(store: ObjectStore, record: VersionRecord, path: str, out: BinaryIO) -> int:
    """Write one file of a version to `out`; return its size."""
    try:
        path = safe_relpath(path.strip("/"), "path")
    except CorruptObject:
        raise UsageError(f"{path!r} is not a path inside the project") from None
    for entry in Snapshot(store, bytes.fromhex(record.manifest)).files():
        if entry.path == path:
            return store.write_to(entry.oid, out)
    raise UsageError(f"{path}: no such file in version {record.number}")
