"""Capture, stage 4: the objects of a version — pages, a tree per dataset, the manifest — from the layout and
what the earlier stages learned of each file and item.

The build follows the change, not the project. Where a page ends depends on its keys alone
(`pages.page_runs`), so the pages of a dataset are known before any entry is made. Each page is named by a
digest of what its entries are made of: the items' names, kinds and files, and each file's stat as the stat cache
vouched for it (plus the capture settings and the format). The stat cache remembers, with its entries, the page
each such digest gave last time, with that page's objects per class and problems (`PageReuse`); a page whose
digest is remembered, all of whose files the stat cache vouched for, and whose object the store holds, is taken by
id — nothing of it is made, encoded or read. A page with a file hashed in this capture (new, changed, racy or
not vouched for), a DICOM series, or an unknown digest is built (and remembered, but for a series). Either way a page is a function of the same entries, so the manifest id is what a full build
gives (tests/test_incremental.py checks it on random edit sequences).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import blake3
import msgpack

from pvc.core.capture.describe import ItemDescriber
from pvc.core.capture.hash import ObjectSink
from pvc.project.layout import Dataset, Item, Layout
from pvc.project.scan import FileInfo
from pvc.store.formats import MANIFEST_FORMAT
from pvc.store.model import ChildRef, FileValue, ItemEntry, Manifest, Page, PageRef, Tree
from pvc.store.pages import page_runs
from pvc.store.statcache import CacheEntry

__all__ = ["build_manifest", "MAX_PROBLEMS", "file_value", "PageReuse"]

MAX_PROBLEMS = 1000  # the manifest keeps the first ones; stats["problems"] counts them all


def file_value(f: FileInfo, h: CacheEntry) -> FileValue:
    return FileValue(h.oid, f.size, 0o755 if f.executable else 0o644)


class PageReuse:
    """The pages an earlier capture built, by the digest of what they were built from; and the ones this capture
    builds or takes, to be remembered with the stat cache's entries."""

    def __init__(self, known: dict[bytes, list], settings: dict, fresh: set[str], by_path: dict[str, FileInfo]) -> None:
        self.known = known  # digest -> [first key, page id, entries, objects per class, problems]
        self.made: dict[bytes, list] = {}
        self.fresh, self.by_path = fresh, by_path  # files hashed by this capture (their stat vouches for nothing yet)
        self.salt = msgpack.packb([MANIFEST_FORMAT, settings], use_bin_type=True)
        self.reused = self.built = 0

    def digest(self, kind: str, dataset: str, parts: list) -> bytes:
        return blake3.blake3(self.salt + msgpack.packb([kind, dataset, parts], use_bin_type=True)).digest()

    def stats(self, paths: Sequence[str]) -> tuple[list, bool]:
        """The stats of these files as the walk saw them (what the stat cache records for them), and whether they
        all are as the stat cache vouched for them: else a page of them can be remembered, not taken."""
        out, vouched = [], True
        for rel in paths:
            f = self.by_path[rel]
            out.append([rel, f.size, f.mtime_ns, f.ino, f.ctime_ns, f.executable])
            vouched = vouched and rel not in self.fresh
        return out, vouched

    def take(self, digest: bytes | None, vouched: bool, has: Callable[[bytes], bool]) -> list | None:
        if digest is None or not vouched:
            return None
        known = self.known.get(digest)
        if known is None or not has(known[1]):
            return None
        self.made[digest] = known
        self.reused += 1
        return known

    def remember(self, digest: bytes | None, record: list) -> None:
        self.built += 1
        if digest is not None:
            self.made[digest] = record


def build_manifest(store: ObjectSink, layout: Layout, by_path: dict[str, FileInfo], hashed: dict[str, CacheEntry],
                   items: ItemDescriber, meta_summary: dict, reuse: PageReuse) -> tuple[bytes, dict[str, int]]:
    """Store the pages, trees and the manifest; return its id and its objects per class."""
    classes: Counter[str] = Counter()
    problems: list[dict] = []
    build = _Build(store, by_path, hashed, items, reuse, classes, problems)
    children = tuple(build.tree(ds) for ds in layout.datasets)
    root = store.put_object(Tree("", build.files("", "", layout.root_files), (), children))
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


class _Build:
    def __init__(self, store: ObjectSink, by_path, hashed, items: ItemDescriber, reuse: PageReuse, classes: Counter,
                 problems: list[dict]) -> None:
        self.store, self.by_path, self.hashed, self.items, self.reuse = store, by_path, hashed, items, reuse
        self.classes, self.problems = classes, problems

    def tree(self, ds: Dataset) -> ChildRef:
        """Store one dataset's tree (and its children's); return the reference its parent keeps."""
        children = tuple(self.tree(child) for child in ds.children)
        tree = Tree(ds.name, self.files(ds.name, ds.dir, ds.files), self.item_pages(ds), children)
        return ChildRef(ds.dir, ds.name, self.store.put_object(tree))

    def files(self, dataset: str, base: str, rels: list[str]) -> tuple[PageRef, ...]:
        """The pages of a files map (a dataset's extras, or the project's root files)."""
        prefix = f"{base}/" if base else ""
        refs = []
        for lo, hi in page_runs(rels):
            paths = [prefix + rel for rel in rels[lo:hi]]
            stats, vouched = self.reuse.stats(paths)
            digest = self.reuse.digest("files", dataset, stats)
            known = self.reuse.take(digest, vouched, self.store.has)
            if known is None:
                entries = tuple((rel, file_value(self.by_path[p], self.hashed[p])) for rel, p in zip(rels[lo:hi], paths))
                known = [entries[0][0], self.store.put_object(Page("files", entries)), len(entries), {}, []]
                self.reuse.remember(digest, known)
            refs.append(PageRef(known[0], known[1], known[2]))
        return tuple(refs)

    def item_pages(self, ds: Dataset) -> tuple[PageRef, ...]:
        refs = []
        for lo, hi in page_runs([item.name for item in ds.items]):
            run = ds.items[lo:hi]
            digest, vouched = self._items_digest(ds, run)
            known = self.reuse.take(digest, vouched, self.store.has)
            if known is None:
                known = self._item_page(ds, run)
                self.reuse.remember(digest, known)
            self.classes.update(known[3])
            self.problems.extend({"dataset": ds.name, "item": name, "problem": p} for name, p in known[4])
            refs.append(PageRef(known[0], known[1], known[2]))
        return tuple(refs)

    def _items_digest(self, ds: Dataset, run: list[Item]) -> tuple[bytes | None, bool]:
        parts, all_vouched = [], True
        for item in run:
            if len(item.media) > 1 or (item.media and self.items.is_series(ds, item)):
                return None, False  # a DICOM series' metadata comes from all its slices: described anew
            stats, vouched = self.reuse.stats([f"{ds.dir}/{rel}" for rel in item.files()])
            all_vouched = all_vouched and vouched
            parts.append([item.name, item.kind, list(item.media), item.ann, list(item.companions), stats])
        return self.reuse.digest("items", ds.name, parts), all_vouched

    def _item_page(self, ds: Dataset, run: list[Item]) -> list:
        classes: Counter[str] = Counter()
        problems: list[list[str]] = []
        entries = []
        for item in run:
            media = self.items.media(ds, item)
            ann = self.hashed[f"{ds.dir}/{item.ann}"].info if item.ann else None
            if isinstance(ann, dict):
                classes.update(ann.get("objects", {}))
            flagged = self.items.problems(item, media, ann)
            problems.extend([item.name, p] for p in flagged)
            entries.append((item.name, ItemEntry(item.kind, item.media[0] if item.media else None, item.ann,
                                                 tuple(item.companions), media, ann,
                                                 tuple(item.media) if len(item.media) > 1 else None,
                                                 tuple(flagged) if flagged else None, sorted_values=True)))
        oid = self.store.put_object(Page("items", tuple(entries)))
        return [entries[0][0], oid, len(entries), dict(classes), problems]
