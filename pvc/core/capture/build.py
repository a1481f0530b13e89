"""Capture, stage 4: the objects of a version — pages, a tree per dataset, the manifest — from the layout and
what the earlier stages learned of each file and item."""

from __future__ import annotations

from collections import Counter
from typing import Any

from pvc.core.capture.describe import ItemDescriber
from pvc.core.capture.hash import Hashed, ObjectSink
from pvc.project.layout import Dataset, Layout
from pvc.project.scan import FileInfo
from pvc.store.model import ChildRef, FileValue, ItemEntry, Manifest, Tree
from pvc.store.pages import build_pages

__all__ = ["build_manifest", "MAX_PROBLEMS", "file_value"]

MAX_PROBLEMS = 1000  # the manifest keeps the first ones; stats["problems"] counts them all


def file_value(f: FileInfo, h: Hashed) -> FileValue:
    return FileValue(h.oid, f.size, 0o755 if f.executable else 0o644)


def build_manifest(store: ObjectSink, layout: Layout, by_path: dict[str, FileInfo], hashed: dict[str, Hashed],
                   items: ItemDescriber, meta_summary: dict) -> tuple[bytes, dict[str, int]]:
    """Store the pages, trees and the manifest; return its id and its objects per class."""
    classes: Counter[str] = Counter()
    problems: list[dict] = []
    children = tuple(_build_tree(store, ds, by_path, hashed, items, classes, problems) for ds in layout.datasets)
    root_files = [(rel, file_value(by_path[rel], hashed[rel])) for rel in layout.root_files]
    root = store.put_object(Tree("", build_pages("files", root_files, store.put_object), (), children))
    datasets = layout.all_datasets()
    stats = {
        "project_type": layout.project_type,
        "layout": layout.kind,
        "datasets": len(datasets),
        "items": sum(len(ds.items) for ds in datasets),
        "files": len(by_path),
        "bytes": sum(f.size for f in by_path.values()),
        "classes": dict(sorted(classes.items())),
        "meta_classes": len(meta_summary.get("classes", {})),
        "meta_tags": len(meta_summary.get("tags", [])),
        "problems": len(problems),
    }
    manifest = Manifest(layout.project_type, layout.kind, root, stats, tuple(problems[:MAX_PROBLEMS]),
                        tuple(layout.warnings) or None)
    return store.put_object(manifest), stats["classes"]


def _build_tree(store: ObjectSink, ds: Dataset, by_path, hashed, items: ItemDescriber, classes: Counter,
                problems: list[dict]) -> ChildRef:
    """Store one dataset's tree (and its children's); return the reference its parent keeps."""
    children = tuple(_build_tree(store, child, by_path, hashed, items, classes, problems) for child in ds.children)
    files = [(rel, file_value(by_path[f"{ds.dir}/{rel}"], hashed[f"{ds.dir}/{rel}"])) for rel in ds.files]
    entries: list[tuple[str, Any]] = []
    for item in ds.items:
        media = items.media(ds, item)
        ann = hashed[f"{ds.dir}/{item.ann}"].info if item.ann else None
        if isinstance(ann, dict):
            classes.update(ann.get("objects", {}))
        flagged = items.problems(item, media, ann)
        problems.extend({"dataset": ds.name, "item": item.name, "problem": p} for p in flagged)
        entries.append((item.name, ItemEntry(item.kind, item.media[0] if item.media else None, item.ann,
                                             tuple(item.companions), media, ann,
                                             tuple(item.media) if len(item.media) > 1 else None,
                                             tuple(flagged) if flagged else None, sorted_values=True)))
    tree = Tree(ds.name, build_pages("files", files, store.put_object), build_pages("items", entries, store.put_object),
                children)
    return ChildRef(ds.dir, ds.name, store.put_object(tree))
