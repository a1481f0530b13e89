"""Capture, stage 3: what each item is, beyond its files on their own: media metadata (a DICOM series' from all
its slices), and the problems `show` flags (annotation frames against the video, masks against spatial figures)."""

from __future__ import annotations

from typing import Any

from pvc.core.capture.hash import is_invalid, video_module, volume_module
from pvc.errors import BadInput
from pvc.project.annotation import annotation_project_type, project_meta_summary
from pvc.project.jsonfile import parse_json
from pvc.project.layout import Dataset, Item
from pvc.project.scan import FileInfo
from pvc.store.objects import canonical, encode, hash_bytes
from pvc.store.statcache import CacheEntry, StatCache

__all__ = ["ItemDescriber", "read_project_meta", "series_key", "series_uid", "sniff_annotation"]


def read_project_meta(meta: FileInfo | None, allow_invalid: bool) -> dict:
    """The summary of `meta.json` (project type, classes, tags); {} without one."""
    if meta is None:
        return {}
    try:
        data = meta.path.read_bytes()
    except OSError as exc:
        raise BadInput(meta.path, f"unreadable ({exc.strerror or exc})") from None
    try:
        return project_meta_summary(parse_json(data, meta.path), meta.path)
    except BadInput as exc:
        if not allow_invalid:
            raise
        return {"invalid": exc.reason}


def sniff_annotation(f: FileInfo) -> str | None:
    """The project type one annotation file's shape shows (for a meta.json without projectType and no media
    folder to tell); None when it cannot be read or says nothing."""
    try:
        return annotation_project_type(parse_json(f.path.read_bytes(), f.path))
    except (OSError, BadInput):
        return None


def series_key(slices: list[tuple[str, bytes]], dicom_tags: list[str]) -> bytes:
    """The stat cache's key for a DICOM series' metadata: its slices (path from the project root, blob id) and the
    tags copied, so the metadata is reused whenever the same slices come back, whatever their stat."""
    return hash_bytes(encode({"dicom": [[p, oid] for p, oid in slices], "tags": list(dicom_tags)}))


def series_uid(info: Any, rel: str) -> str:
    """A loose DICOM file's series (an unreadable one kept with --allow-invalid is a series of its own)."""
    return info["series"] if isinstance(info, dict) and "series" in info else f"unreadable:{rel}"


class ItemDescriber:
    """Per-item metadata and problems, from file infos; DICOM series metadata cached by slice ids."""

    def __init__(self, by_path: dict[str, FileInfo], hashed: dict[str, CacheEntry], cache: StatCache,
                 allow_invalid: bool, dicom_tags) -> None:
        self.by_path, self.hashed, self.cache = by_path, hashed, cache
        self.allow_invalid = allow_invalid
        self.dicom_tags = list(dicom_tags) if dicom_tags else None
        self.derived: dict[bytes, Any] = {}
        self.invalid: list[tuple[str, str]] = []  # (first slice, reason) of each DICOM series kept invalid

    def media(self, ds: Dataset, item: Item) -> dict:
        paths = [f"{ds.dir}/{rel}" for rel in item.media]
        if not paths:
            return {}
        if len(paths) == 1 and not self.is_series(ds, item):
            return self.hashed[paths[0]].info or {}
        return self._series(paths)

    def is_series(self, ds: Dataset, item: Item) -> bool:
        """Whether the item's media is (part of) a DICOM series, whose metadata comes from all its slices."""
        entry = self.hashed[f"{ds.dir}/{item.media[0]}"]
        if b"series" not in entry.raw:  # the info's bytes hold its keys: most are decoded only to build their page
            return False
        info = entry.info
        return isinstance(info, dict) and "series" in info

    def _series(self, paths: list[str]) -> dict:
        if self.dicom_tags is None:
            self.dicom_tags = list(volume_module().DEFAULT_DICOM_TAGS)
        key = series_key([(p, self.hashed[p].oid) for p in paths], self.dicom_tags)
        meta = self.cache.derived(key)
        if meta is None or (is_invalid(meta) and not self.allow_invalid):  # kept invalid before: refused again
            meta = self._read_series(paths)
        if is_invalid(meta):
            self.invalid.append((paths[0], meta["invalid"]))
        self.derived[key] = meta
        return meta

    def _read_series(self, paths: list[str]) -> dict:
        try:
            meta = volume_module().volume_meta([self.by_path[p].path for p in paths], dicom_tags=self.dicom_tags)
            return canonical(meta)  # sorted once here, so every encoding of it can take it as it is
        except BadInput as exc:
            if not self.allow_invalid:
                raise
            return {"invalid": exc.reason}

    def problems(self, item: Item, media: dict, ann: Any) -> list[str]:
        """Flags `show` reports: annotation frames vs the video, mask files vs spatial figures."""
        if not isinstance(ann, dict):
            return []
        if item.kind == "video":
            return list(ann.get("problems", [])) + video_module().media_problems(ann.get("extent", {}), media.get("frames"))
        if item.kind == "volume":
            keys = set(ann.get("spatial_figure_keys", []))
            masks = [c for c in item.companions if c.startswith("mask/")]
            return [f"{c} matches no spatialFigures key" for c in masks if c.rsplit("/", 1)[-1].split(".")[0] not in keys]
        return []
