"""Reading a version back: its manifest, dataset trees, files and items, with every path validated.

Paths come from objects, and objects may be crafted: the typed objects (pvc/store/model.py) check each path
when they are decoded; here the paths joined from a dataset folder and a file key are checked again, and
restore checks that they are unique before anything is written from them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from pvc.record import record
from pvc.store.backend import ObjectStore
from pvc.store.model import FileValue, ItemEntry, Manifest, Page, Tree, safe_relpath
from pvc.store.pages import iter_entries

__all__ = ["FileEntry", "DatasetView", "Snapshot", "safe_relpath", "make_dirs"]


@record(frozen=True, slots=True)
class FileEntry:
    path: str  # relative to the project root
    oid: bytes
    size: int
    mode: int
    dataset: str | None  # full dataset name, None for project-level files
    item: str | None  # the item this file belongs to, None for extras


@record(frozen=True)
class DatasetView:
    name: str
    dir: str
    tree: Tree
    oid: bytes

    def items(self, store: ObjectStore) -> Iterator[tuple[str, ItemEntry]]:
        return iter_entries(self.tree.items, lambda oid: store.get_object(oid, Page), "items")

    def files(self, store: ObjectStore) -> Iterator[tuple[str, FileValue]]:
        return iter_entries(self.tree.files, lambda oid: store.get_object(oid, Page), "files")

    @property
    def item_count(self) -> int:
        return sum(ref.count for ref in self.tree.items)

    @property
    def file_count(self) -> int:
        return sum(ref.count for ref in self.tree.files)


def make_dirs(root: Path, relpaths: list[str]) -> None:
    """Create every folder the files `relpaths` need under `root`, shallowest first, one mkdir each
    (Path.mkdir(parents=True) recurses once per level, which a tree thousands deep overflows)."""
    folders: set[str] = set()
    for rel in relpaths:
        parts = rel.split("/")[:-1]
        for depth in range(len(parts), 0, -1):
            folder = "/".join(parts[:depth])
            if folder in folders:
                break
            folders.add(folder)
    for folder in sorted(folders, key=lambda f: f.count("/")):
        try:
            os.mkdir(root / folder)
        except FileExistsError:
            if not (root / folder).is_dir() or (root / folder).is_symlink():
                raise


class Snapshot:
    """One version's manifest and the trees under it."""

    def __init__(self, store: ObjectStore, manifest_id: bytes) -> None:
        self.store = store
        self.manifest_id = manifest_id
        self.manifest = store.get_object(manifest_id, Manifest)
        self.root = store.get_object(self.manifest.root, Tree)

    def page(self, oid: bytes) -> Page:
        return self.store.get_object(oid, Page)

    def datasets(self) -> Iterator[DatasetView]:
        """Every dataset, parents before children, in name order."""
        stack = list(reversed(self.root.children))
        while stack:
            child = stack.pop()
            tree = self.store.get_object(child.oid, Tree)
            yield DatasetView(child.name, child.folder, tree, child.oid)
            stack.extend(reversed(tree.children))

    def dataset(self, name: str) -> DatasetView | None:
        return next((ds for ds in self.datasets() if ds.name == name), None)

    def root_files(self) -> Iterator[FileEntry]:
        """The project-level files (those of no dataset)."""
        for rel, value in iter_entries(self.root.files, self.page, "files"):
            yield FileEntry(safe_relpath(rel, "tree of project"), value.oid, value.size, value.mode, None, None)

    def dataset_files(self, ds: DatasetView) -> Iterator[FileEntry]:
        """The files of one dataset (not of the datasets nested in it), with the item each belongs to."""
        owner: dict[str, str] = {}
        for name, item in ds.items(self.store):
            owner.update(dict.fromkeys(item.files(), name))
        for rel, value in ds.files(self.store):
            path = safe_relpath(f"{ds.dir}/{rel}", f"tree of {ds.name}")
            yield FileEntry(path, value.oid, value.size, value.mode, ds.name, owner.get(rel))

    def files(self) -> Iterator[FileEntry]:
        """Every file of the version with the dataset and item it belongs to."""
        yield from self.root_files()
        for ds in self.datasets():
            yield from self.dataset_files(ds)


def item_owner(tree_items: Iterator[tuple[str, ItemEntry]]) -> dict[str, str]:
    """File path (relative to the dataset folder) -> the item that claims it."""
    return {path: name for name, item in tree_items for path in item.files()}

