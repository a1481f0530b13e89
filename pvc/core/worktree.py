"""The working tree as a version would record it: scan, layout, hash (via the stat cache), build objects.

`capture` is shared by `commit` (objects go to the store) and by `status` / `diff` / `discard`, which
pass an overlay store that keeps the new objects in memory and writes nothing.
"""

from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pvc.errors import BadInput
from pvc.project.annotation import image_annotation_summary, project_meta_summary, volume_annotation_summary
from pvc.project.image import image_meta
from pvc.project.jsonfile import parse_json
from pvc.project.layout import Dataset, Item, Layout, add_dicom_series, classify
from pvc.core.fastpath import MANIFEST_FORMAT, capture_settings, untouched
from pvc.project.scan import FileInfo, Ignore, files_from_walk, scan
from pvc.project.walk import native_walk, stat_records, tree_digest
from pvc.store.objects import encode, hash_bytes
from pvc.store.pages import build_pages
from pvc.store.repository import Repository
from pvc.store.statcache import CacheEntry, StatCache, StatKey, fs_clock

__all__ = ["Capture", "capture", "MANIFEST_FORMAT", "ObjectSink"]

_MAX_PROBLEMS = 1000  # the manifest keeps the first ones; stats["problems"] counts them all


class ObjectSink(Protocol):
    """What capture needs of a store: the ObjectStore, or an overlay that writes nothing."""

    def has(self, oid: bytes) -> bool: ...
    def put_file(self, path: Path, size: int, on_data: Any = None) -> bytes: ...
    def put_object(self, obj: dict) -> bytes: ...
    def get_object(self, oid: bytes, what: str = "object") -> dict: ...


@dataclass(frozen=True)
class _Hashed:
    oid: bytes
    info: Any


@dataclass
class Capture:
    """One capture of the working tree: its manifest id and what the stat cache should remember."""

    manifest_id: bytes
    layout: Layout | None  # None when `unchanged`
    files_hashed: int
    bytes_hashed: int
    _cache: StatCache
    _entries: dict[str, CacheEntry]
    _scan_started: int
    _derived: dict[bytes, Any]
    _settings: dict
    unchanged: bool = False  # the stat cache vouched for the whole tree: nothing was read
    _files: list[FileInfo] | None = None
    _classes: dict[str, int] | None = None
    _records: bytes | None = None  # the stat records of `_files`, when the C walk produced them

    def save_cache(self) -> None:
        """Remember the hashes (call with the repository lock held), and the digest of this scan's stat
        records when none of them is racy, so that the next scan of an untouched tree reads nothing."""
        files = self._files or []
        if self.unchanged:  # proven by the entries (then `_files` is set), or by the tree record
            if self._files is not None and self._classes is not None:
                self._cache.save_tree(self._tree_digest(), self.manifest_id, self._settings, self._classes)
            return
        if self.files_hashed == 0 and self._cache.holds(self._entries, self.manifest_id, self._settings):
            return  # every entry came from the cache, which already says all this (a 10 MB write spared)
        settled = all(f.mtime_ns < self._scan_started for f in files)
        tree = self._tree_digest() if settled else None
        self._cache.save(self._entries, self._scan_started, self._derived, self.manifest_id, self._settings,
                         tree=tree, classes=self._classes)

    def _tree_digest(self) -> bytes:
        return tree_digest(self._records if self._records is not None else stat_records(self._files or []))


def capture(repo: Repository, store: ObjectSink, *, allow_invalid: bool = False, progress=None,
            expect: bytes | None = None) -> Capture:
    """Scan the project, hash what the stat cache cannot vouch for, and build its manifest in `store`.

    `expect` (the latest version's manifest) enables the fast path: when every file's stat is what the
    cache recorded along with that manifest, the project is that manifest, and nothing is read or built.
    """
    root = repo.project_root
    cache = repo.stat_cache()
    settings = capture_settings(repo, allow_invalid)
    ignore = Ignore.load(root)
    scan_started = fs_clock(repo.dir / "tmp")  # before the first stat
    walked = native_walk(root, ignore)  # the C walk: one stat a file, in threads
    if expect is not None and untouched(cache, expect, settings, walked[0] if walked else None):
        return Capture(expect, None, 0, 0, cache, {}, 0, {}, settings, unchanged=True)
    files = files_from_walk(root, *walked) if walked else None
    records = walked[0] if files is not None else None
    if files is None:  # no C walk, or it declined: the Python scan (which reports what it refuses)
        files = scan(root, ignore)
    if expect is not None and cache.manifest == expect and cache.unchanged(files, settings):
        # the tree record was missing or stale: write it (if the C walk ran here, it will next time) so the
        # next scan stops at the walk
        record = records is not None and not cache.may_vouch_for(expect, settings)
        classes = store.get_object(expect).get("stats", {}).get("classes", {}) if record else None
        return Capture(expect, None, 0, 0, cache, {}, scan_started, {}, settings, unchanged=True,
                       _files=files if record else None, _classes=classes, _records=records)
    by_path = {f.relpath: f for f in files}
    meta_summary = _read_meta(by_path.get("meta.json"), allow_invalid)
    project_type = meta_summary.get("project_type", "images") if "meta.json" in by_path else None
    layout = classify([f.relpath for f in files], project_type)
    hashed, entries, (files_hashed, bytes_hashed) = _hash_all(cache, store, files, layout, allow_invalid, progress)
    for ds in layout.all_datasets():
        if ds.loose_dicom:
            add_dicom_series(ds, {rel: _series_uid(hashed[f"{ds.dir}/{rel}"].info, rel) for rel in ds.loose_dicom})
    items = _ItemInfo(by_path, hashed, cache, allow_invalid, repo.config.get("dicom_tags"))
    manifest_id, classes = _build_manifest(store, layout, by_path, hashed, items, meta_summary)
    return Capture(manifest_id, layout, files_hashed, bytes_hashed, cache, entries, scan_started, items.derived,
                   settings, _files=files, _classes=classes, _records=records)


def _read_meta(meta: FileInfo | None, allow_invalid: bool) -> dict:
    if meta is None:
        return {}
    try:
        data = meta.path.read_bytes()
    except OSError as exc:
        raise BadInput(meta.path, f"unreadable ({exc.strerror or exc})") from None
    try:
        return project_meta_summary(parse_json(data, meta.path), meta.path)
    except BadInput:
        if not allow_invalid:
            raise
        return {"invalid": True}


def _hash_all(cache, store: ObjectSink, files: list[FileInfo], layout: Layout, allow_invalid: bool, progress):
    """Blob id and role info of every file: from the stat cache when its stat is unchanged, else read."""
    hashed: dict[str, _Hashed] = {}
    entries: dict[str, CacheEntry] = {}
    todo: list[tuple[FileInfo, StatKey, str]] = []
    for f in files:
        key = StatKey(f.size, f.mtime_ns, f.ino, f.ctime_ns)
        role = layout.roles[f.relpath]
        cached = cache.get(f.relpath, key, role)
        if cached is None or not store.has(cached.oid) or (_is_invalid(cached.info) and not allow_invalid):
            # not vouched for, object lost from the store (stored again from the file), or kept with
            # --allow-invalid before and now to be refused again
            todo.append((f, key, role))
        else:
            hashed[f.relpath] = _Hashed(cached.oid, cached.info)
            entries[f.relpath] = cached
    total_bytes = sum(f.size for f, _, _ in todo)
    done = 0
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) * 2)) as pool:
        for (f, key, role), result in zip(todo, pool.map(lambda t: _hash_one(store, t[0], t[2], allow_invalid), todo)):
            hashed[f.relpath] = result
            entries[f.relpath] = CacheEntry(key, result.oid, role, result.info)
            done += f.size
            if progress:
                progress("hashing", done, total_bytes)
    return hashed, entries, (len(todo), total_bytes)


def _hash_one(store: ObjectSink, f: FileInfo, role: str, allow_invalid: bool) -> _Hashed:
    seen: dict[str, bytes] = {}
    oid = store.put_file(f.path, f.size, on_data=lambda data: seen.setdefault("data", data))
    data = seen.get("data")
    try:
        info = _role_info(role, data, f.path)
    except BadInput as exc:
        if not allow_invalid:
            raise
        info = {"invalid": exc.reason}
    return _Hashed(oid, info)


def _role_info(role: str, data: bytes | None, path: Path) -> Any:
    """What pvc understands of one file on its own: media header, annotation summary, or nothing."""
    if role == "image":
        return image_meta(data, path)
    if role == "video":
        return _video().video_meta(path)
    if role == "volume":
        return _volume().volume_meta([path])
    if role == "dicom":
        return {"series": next(iter(_volume().group_dicom_series([path])))}
    if role in ("ann", "video_ann", "volume_ann"):
        doc = parse_json(data if data is not None else path.read_bytes(), path)
        if role == "ann":
            return image_annotation_summary(doc, path)
        if role == "volume_ann":
            return volume_annotation_summary(doc, path)
        if not isinstance(doc, dict):
            raise BadInput(path, "not a Supervisely video annotation (not a JSON object)")
        video = _video()
        return video.video_annotation_summary(doc, None) | {"extent": video.annotation_frame_extent(doc)}
    return None


def _is_invalid(info: Any) -> bool:
    return isinstance(info, dict) and "invalid" in info


def _video():
    """The video module, imported on first use: PyAV costs ~0.1 s to load and image projects never need it."""
    from pvc.project import video

    return video


def _volume():
    """The volume module, imported on first use (NumPy, pydicom, pynrrd, nibabel)."""
    from pvc.project import volume

    return volume


def _series_uid(info: Any, rel: str) -> str:
    """A loose DICOM file's series (an unreadable one kept with --allow-invalid is a series of its own)."""
    return info["series"] if isinstance(info, dict) and "series" in info else f"unreadable:{rel}"


class _ItemInfo:
    """Per-item metadata and problems, from file infos; DICOM series metadata cached by slice ids."""

    def __init__(self, by_path, hashed, cache, allow_invalid: bool, dicom_tags) -> None:
        self.by_path, self.hashed, self.cache = by_path, hashed, cache
        self.allow_invalid = allow_invalid
        self.dicom_tags = list(dicom_tags) if dicom_tags else None
        self.derived: dict[bytes, Any] = {}

    def media(self, ds: Dataset, item: Item) -> dict:
        paths = [f"{ds.dir}/{rel}" for rel in item.media]
        if not paths:
            return {}
        info = self.hashed[paths[0]].info
        if len(paths) == 1 and not (isinstance(info, dict) and "series" in info):
            return info or {}
        return self._series(paths)

    def _series(self, paths: list[str]) -> dict:
        if self.dicom_tags is None:
            self.dicom_tags = list(_volume().DEFAULT_DICOM_TAGS)
        key = hash_bytes(encode({"dicom": [[p, self.hashed[p].oid] for p in paths], "tags": self.dicom_tags}))
        meta = self.cache.derived(key)
        if meta is None:
            try:
                meta = _volume().volume_meta([self.by_path[p].path for p in paths], dicom_tags=self.dicom_tags)
            except BadInput as exc:
                if not self.allow_invalid:
                    raise
                meta = {"invalid": exc.reason}
        self.derived[key] = meta
        return meta

    def problems(self, item: Item, media: dict, ann: Any) -> list[str]:
        """Flags `show` reports: annotation frames vs the video, mask files vs spatial figures."""
        if not isinstance(ann, dict):
            return []
        if item.kind == "video":
            return list(ann.get("problems", [])) + _video().media_problems(ann.get("extent", {}), media.get("frames"))
        if item.kind == "volume":
            keys = set(ann.get("spatial_figure_keys", []))
            masks = [c for c in item.companions if c.startswith("mask/")]
            return [f"{c} matches no spatialFigures key" for c in masks if c.rsplit("/", 1)[-1].split(".")[0] not in keys]
        return []


def _build_manifest(store: ObjectSink, layout: Layout, by_path, hashed, items: _ItemInfo,
                    meta_summary: dict) -> tuple[bytes, dict[str, int]]:
    """Store the trees and the manifest; return its id and its objects per class."""
    classes: Counter[str] = Counter()
    problems: list[dict] = []
    children = [_build_tree(store, ds, by_path, hashed, items, classes, problems) for ds in layout.datasets]
    root_files = [(rel, _file_entry(by_path[rel], hashed[rel])) for rel in layout.root_files]
    root = store.put_object({
        "type": "tree",
        "name": "",
        "files": build_pages("files", root_files, store.put_object),
        "items": [],
        "children": children,
    })
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
    manifest = {"type": "manifest", "format": MANIFEST_FORMAT, "project_type": layout.project_type,
                "layout": layout.kind, "root": root, "stats": stats, "problems": problems[:_MAX_PROBLEMS]}
    return store.put_object(manifest), stats["classes"]


def _build_tree(store: ObjectSink, ds: Dataset, by_path, hashed, items: _ItemInfo, classes: Counter,
                problems: list[dict]) -> list:
    """Store one dataset's tree (and its children's); return its [folder, name, tree id] entry."""
    children = [_build_tree(store, child, by_path, hashed, items, classes, problems) for child in ds.children]
    files = [(rel, _file_entry(by_path[f"{ds.dir}/{rel}"], hashed[f"{ds.dir}/{rel}"])) for rel in ds.files]
    entries = []
    for item in ds.items:
        media = items.media(ds, item)
        ann = hashed[f"{ds.dir}/{item.ann}"].info if item.ann else None
        if isinstance(ann, dict):
            classes.update(ann.get("objects", {}))
        entry = {"kind": item.kind, "media": item.media[0] if item.media else None, "ann": item.ann,
                 "companions": list(item.companions), "meta": media, "annotation": ann}
        if len(item.media) > 1:
            entry["media_files"] = list(item.media)
        flagged = items.problems(item, media, ann)
        if flagged:
            entry["problems"] = flagged
            problems.extend({"dataset": ds.name, "item": item.name, "problem": p} for p in flagged)
        entries.append((item.name, entry))
    tree_id = store.put_object({
        "type": "tree",
        "name": ds.name,
        "files": build_pages("files", files, store.put_object),
        "items": build_pages("items", entries, store.put_object),
        "children": children,
    })
    return [ds.dir, ds.name, tree_id]


def _file_entry(f: FileInfo, h: _Hashed) -> list:
    return [h.oid, f.size, 0o755 if f.executable else 0o644]
