"""Summaries of Supervisely annotations and of `meta.json`, computed from the parsed JSON.

The annotation bytes are stored as they are; these summaries feed `show`, `ls` and the stats.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from pvc.errors import BadInput

__all__ = ["image_annotation_summary", "project_meta_summary", "annotation_project_type", "PROJECT_TYPES"]

PROJECT_TYPES = ("images", "videos", "volumes", "point_clouds", "point_cloud_episodes", "meshes")


def _tag_names(tags: Any) -> list[str]:
    names = []
    for tag in tags if isinstance(tags, list) else []:
        name = tag.get("name") if isinstance(tag, dict) else tag
        if isinstance(name, str):
            names.append(name)
    return sorted(set(names))


def image_annotation_summary(doc: Any, path: Path | str) -> dict:
    """objects per class, geometry types, tag names and image size of one image annotation."""
    if not isinstance(doc, dict) or not isinstance(doc.get("objects"), list):
        raise BadInput(path, "not a Supervisely annotation (no 'objects' list)")
    classes: Counter[str] = Counter()
    geometries: Counter[str] = Counter()
    object_tags = 0
    for obj in doc["objects"]:
        if not isinstance(obj, dict):
            raise BadInput(path, "not a Supervisely annotation (an object is not a JSON object)")
        classes[str(obj.get("classTitle", "?"))] += 1
        geometries[str(obj.get("geometryType", obj.get("shape", "?")))] += 1
        object_tags += len(obj.get("tags") or [])
    summary: dict[str, Any] = {
        "objects": dict(sorted(classes.items())),
        "geometries": dict(sorted(geometries.items())),
        "tags": _tag_names(doc.get("tags")),
        "object_tags": object_tags,
    }
    size = doc.get("size")
    if isinstance(size, dict) and isinstance(size.get("width"), int) and isinstance(size.get("height"), int):
        summary["size"] = [size["width"], size["height"]]
    return summary


def project_meta_summary(doc: Any, path: Path | str) -> dict:
    """Project type (None when meta.json does not say: the SDK writes `projectType` only when told to), class
    titles with shapes, tag names of `meta.json` (which must have a `classes` list)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("classes"), list):
        raise BadInput(path, "not a Supervisely meta.json (no 'classes' list)")
    project_type = doc.get("projectType")
    if project_type is not None and project_type not in PROJECT_TYPES:
        raise BadInput(path, f"unknown projectType {project_type!r} (expected one of {', '.join(PROJECT_TYPES)})")
    classes = {}
    for cls in doc["classes"]:
        if not isinstance(cls, dict) or not isinstance(cls.get("title"), str):
            raise BadInput(path, "not a Supervisely meta.json (a class has no 'title')")
        classes[cls["title"]] = str(cls.get("shape", "any"))
    tags = doc.get("tags", [])
    return {"project_type": project_type, "classes": classes, "tags": _tag_names(tags)}


def annotation_project_type(doc: Any) -> str | None:
    """The project type an annotation's shape shows: `frames`/`framesCount` (videos), `volumeMeta`/`planes`
    (volumes), top-level `figures` without frames (point clouds), `objects` alone (images); None otherwise."""
    if not isinstance(doc, dict):
        return None
    if "frames" in doc or "framesCount" in doc:
        return "videos"
    if "volumeMeta" in doc or "planes" in doc:
        return "volumes"
    if "figures" in doc:
        return "point_clouds"
    return "images" if "objects" in doc else None


def volume_annotation_summary(doc: Any, path: Path | str) -> dict:
    """objects per class, figures per plane, spatial figures (with their keys, which name the
    `mask/<item>/<key>.nrrd` companions), geometry types and tags of one volume annotation."""
    if not isinstance(doc, dict) or not isinstance(doc.get("objects"), list):
        raise BadInput(path, "not a Supervisely volume annotation (no 'objects' list)")
    classes: Counter[str] = Counter()
    keys_to_class = {}
    for obj in doc["objects"]:
        if isinstance(obj, dict):
            classes[str(obj.get("classTitle", "?"))] += 1
            keys_to_class[obj.get("key")] = obj.get("classTitle")
    geometries: Counter[str] = Counter()
    planes: dict[str, int] = {}
    for plane in doc.get("planes") or []:
        if not isinstance(plane, dict):
            continue
        figures = [f for s in plane.get("slices") or [] if isinstance(s, dict) for f in s.get("figures") or []]
        planes[str(plane.get("name"))] = len(figures)
        geometries.update(str(f.get("geometryType", "?")) for f in figures if isinstance(f, dict))
    spatial = [f for f in doc.get("spatialFigures") or [] if isinstance(f, dict)]
    geometries.update(str(f.get("geometryType", "?")) for f in spatial)
    return {
        "objects": dict(sorted(classes.items())),
        "geometries": dict(sorted(geometries.items())),
        "figures_per_plane": planes,
        "spatial_figures": len(spatial),
        "spatial_figure_keys": sorted(str(f["key"]) for f in spatial if isinstance(f.get("key"), str)),
        "tags": _tag_names(doc.get("tags")),
    }
