"""Reading a version back: its manifest, dataset trees, files and items, with every path validated.

Paths come from objects, and objects may be crafted: each path must be relative, without `..`, `.`,
empty parts or NUL, and unique, before anything is written from it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pvc.errors import CorruptObject
from pvc.store.pages import iter_entries
from pvc.store.overlay import OverlayStore
from pvc.store.store import ObjectStore

__all__ = ["FileEntry", "DatasetView", "Snapshot", "safe_relpath", "make_dirs", "media_files", "item_files"]


@dataclass(frozen=True, slots=True)
class FileEntry:
    path: str  # relative to the project root
    oid: bytes
    size: int
    mode: int
    dataset: str | None  # full dataset name, None for project-level files
    item: str | None  # the item this file belongs to, None for extras


@dataclass(frozen=True)
class DatasetView:
    name: str
    dir: str
    tree: dict
    oid: bytes

    def items(self, store: ObjectStore) -> Iterator[tuple[str, dict]]:
        for name, value in iter_entries(self.tree["items"], store.get_object, "items"):
            if not isinstance(value, dict):
                raise CorruptObject(f"dataset {self.name}: malformed item entry {name!r}")
            yield name, value


def safe_relpath(path: Any, where: str) -> str:
    """`path` if it is a harmless relative posix path, else CorruptObject."""
    if not isinstance(path, str) or not path or "\x00" in path or path.startswith("/") or "\\" in path:
        raise CorruptObject(f"{where}: unsafe path {str(path)[:120]!r}")
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts) or parts[0] == ".pvc":
        raise CorruptObject(f"{where}: unsafe path {path[:120]!r}")
    return path


def media_files(entry: dict) -> list[str]:
    """The media files of an item entry: its slices for a DICOM series, else its one media file (or none)."""
    files = entry.get("media_files") or ([entry["media"]] if entry.get("media") else [])
    if not isinstance(files, list):
        raise CorruptObject("malformed item entry (media_files is not a list)")
    return files


def item_files(entry: dict) -> list[str]:
    """Every file an item entry claims: media, annotation and companions (paths relative to the dataset)."""
    companions = entry.get("companions") or []
    if not isinstance(companions, list):
        raise CorruptObject("malformed item entry (companions is not a list)")
    return [f for f in (*media_files(entry), entry.get("ann"), *companions) if isinstance(f, str)]


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

    def __init__(self, store: ObjectStore | OverlayStore, manifest_id: bytes) -> None:
        self.store = store
        self.manifest_id = manifest_id
        self.manifest = store.get_object(manifest_id, "manifest")
        if self.manifest.get("type") != "manifest" or not isinstance(self.manifest.get("root"), bytes):
            raise CorruptObject(f"manifest {manifest_id.hex()}: not a manifest")
        self.root = self._tree(self.manifest["root"])

    def _tree(self, oid: Any) -> dict:
        if not isinstance(oid, bytes):
            raise CorruptObject(f"manifest {self.manifest_id.hex()}: malformed tree reference")
        tree = self.store.get_object(oid, "tree")
        if tree.get("type") != "tree" or not all(isinstance(tree.get(k), list) for k in ("files", "items", "children")):
            raise CorruptObject(f"tree {oid.hex()}: not a tree")
        return tree

    def datasets(self) -> Iterator[DatasetView]:
        """Every dataset, parents before children, in name order."""
        stack = list(reversed(self.root["children"]))
        while stack:
            entry = stack.pop()
            if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[1], str)):
                raise CorruptObject(f"manifest {self.manifest_id.hex()}: malformed dataset entry")
            ds_dir = safe_relpath(entry[0], f"dataset {entry[1]!r}")
            tree = self._tree(entry[2])
            yield DatasetView(entry[1], ds_dir, tree, entry[2])
            stack.extend(reversed(tree["children"]))

    def dataset(self, name: str) -> DatasetView | None:
        return next((ds for ds in self.datasets() if ds.name == name), None)

    def files(self) -> Iterator[FileEntry]:
        """Every file of the version with the dataset and item it belongs to."""
        yield from self._tree_files(self.root, "", None, {})
        for ds in self.datasets():
            owner = {}
            for name, item in ds.items(self.store):
                try:
                    owner.update(dict.fromkeys(item_files(item), name))
                except CorruptObject as exc:
                    raise CorruptObject(f"dataset {ds.name}: item {name[:120]!r}: {exc}") from None
            yield from self._tree_files(ds.tree, ds.dir + "/", ds.name, owner)

    def _tree_files(self, tree: dict, prefix: str, dataset: str | None, owner: dict) -> Iterator[FileEntry]:
        for rel, value in iter_entries(tree["files"], self.store.get_object, "files"):
            path = safe_relpath(prefix + rel, f"tree of {dataset or 'project'}")
            if not (isinstance(value, list) and len(value) == 3 and isinstance(value[0], bytes) and len(value[0]) == 32
                    and isinstance(value[1], int) and isinstance(value[2], int) and value[1] >= 0):
                raise CorruptObject(f"tree of {dataset or 'project'}: malformed entry for {path[:120]!r}")
            yield FileEntry(path, value[0], value[1], value[2] & 0o777, dataset, owner.get(rel))
