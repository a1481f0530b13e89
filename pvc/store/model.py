"""The typed objects of a version: Manifest, Tree, Page (of ItemEntry or FileValue), each with encode/decode.

Every structured object is a canonical msgpack map (pvc/store/objects.py); these classes own its shape. `decode`
validates once, where the bytes come in, so that the code above them handles values, never raw maps: a
crafted or damaged object is a `CorruptObject` naming it, at the place it is read. `encode` gives exactly the
bytes the format specifies (docs/format.md, "Structured objects"), so ids are stable across pvc versions.

The manifest format number and the definition of "the files of an item" live here.
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgpack

from pvc.errors import CorruptObject
from pvc.record import field, record
from pvc.store.formats import MANIFEST_FORMAT
from pvc.store.objects import canonical
from pvc.store.objects import decode as decode_map

__all__ = ["MANIFEST_FORMAT", "FileValue", "ItemEntry", "PageRef", "Page", "ChildRef", "Tree", "Manifest",
           "safe_relpath", "check_part_path", "check_stats"]

PAGE_KINDS = ("files", "items")
_STAT_COUNTS = ("datasets", "items", "files", "bytes", "meta_classes", "meta_tags", "problems")
_PROBLEM_KEYS = ("dataset", "item", "problem")


def check_part_path(path: Any, where: str) -> str:
    """`path` if it is a harmless relative posix path (no `..`, `.`, empty parts, NUL, backslash, leading `/`)."""
    if (type(path) is not str or not path or "\x00" in path or "\\" in path or path[0] == "/" or path[-1] == "/"
            or "//" in path or ("." in path and _dot_part(path))):
        raise CorruptObject(f"{where}: unsafe path {str(path)[:120]!r}")
    return path


def _dot_part(path: str) -> bool:
    """Whether some part of `path` is `.` or `..` (only asked of paths holding a dot: most do, as names have
    suffixes, so the common case is decided by string searches, not a split)."""
    wrapped = f"/{path}/"
    return "/./" in wrapped or "/../" in wrapped


def safe_relpath(path: Any, where: str) -> str:
    """A path from the project root: harmless, and never inside `.pvc/`."""
    check_part_path(path, where)
    if path == ".pvc" or path.startswith(".pvc/"):
        raise CorruptObject(f"{where}: unsafe path {path[:120]!r}")
    return path


def _pack(obj: dict) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def _is_id(value: Any) -> bool:
    return isinstance(value, bytes) and len(value) == 32


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def check_stats(stats: Any, where: str) -> dict:
    """A version's statistics (in its manifest and in its refs record): the counts pvc writes are counts, the
    names are strings; keys a newer pvc adds are kept as they are."""
    if type(stats) is dict and _plain_stats(stats):  # what pvc writes, checked with fewer calls (refs: 1,000 records)
        return stats
    if not isinstance(stats, dict):
        raise CorruptObject(f"{where}: malformed stats")
    bad = [k for k in _STAT_COUNTS if k in stats and not _is_count(stats[k])]
    bad += [k for k in ("project_type", "layout") if k in stats and not isinstance(stats[k], str)]
    classes = stats.get("classes", {})
    if not isinstance(classes, dict) or not all(isinstance(c, str) and _is_count(n) for c, n in classes.items()):
        bad.append("classes")
    if bad:
        raise CorruptObject(f"{where}: malformed stats ({', '.join(bad)})")
    return stats


def _plain_stats(stats: dict) -> bool:
    """True if `check_stats` would pass `stats` (False says nothing: it then looks again, to name what is wrong)."""
    for key in _STAT_COUNTS:
        value = stats.get(key, 0)
        if type(value) is not int or value < 0:
            return False
    if type(stats.get("project_type", "")) is not str or type(stats.get("layout", "")) is not str:
        return False
    classes = stats.get("classes", {})
    if type(classes) is not dict:
        return False
    for name, count in classes.items():
        if type(name) is not str or type(count) is not int or count < 0:
            return False
    return True


def _str_list(value: Any, what: str, where: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise CorruptObject(f"{where}: {what} is not a list")
    return tuple(check_part_path(v, where) for v in value)


@record(frozen=True, slots=True)
class FileValue:
    """A file of a tree: its blob, size and mode (0o644 or 0o755)."""

    oid: bytes
    size: int
    mode: int

    def encode(self) -> list:
        return [self.oid, self.size, self.mode]

    @classmethod
    def decode(cls, value: Any, where: str) -> FileValue:
        if not (isinstance(value, list) and len(value) == 3 and _is_id(value[0]) and _is_count(value[1])
                and isinstance(value[2], int) and not isinstance(value[2], bool)):
            raise CorruptObject(f"{where}: malformed file entry")
        return cls(value[0], value[1], value[2] & 0o777)


@record(frozen=True, slots=True)
class ItemEntry:
    """What pvc understands of one item: its files (relative to the dataset folder) and their meaning."""

    kind: str
    media: str | None  # the media file (a DICOM series: its first slice), None for an annotation-only item
    ann: str | None
    companions: tuple[str, ...] = ()
    meta: dict | None = None  # media metadata; {} when there is none
    annotation: dict | None = None  # annotation summary
    media_files: tuple[str, ...] | None = None  # set only when the media is several files (a DICOM series)
    problems: tuple[str, ...] | None = None  # set only when not empty
    # `meta` and `annotation` are canonical already (every map's keys sorted, at every depth): encode takes them
    # as they are. True for decoded entries and for what capture builds (it canonicalises what it computes).
    sorted_values: bool = field(default=False, compare=False, repr=False)

    def media_paths(self) -> tuple[str, ...]:
        """The media files: the slices of a DICOM series, else the one media file (or none)."""
        return self.media_files or ((self.media,) if self.media else ())

    def files(self) -> tuple[str, ...]:
        """Every file the item claims: media, annotation, companions. The one definition of an item's files:
        restore leaves them out together, verify blames them together, diff compares them."""
        return (*self.media_paths(), *((self.ann,) if self.ann else ()), *self.companions)

    def encode(self) -> dict:
        sort = (lambda value: value) if self.sorted_values else canonical
        out = {"ann": self.ann, "annotation": sort(self.annotation), "companions": list(self.companions),
               "kind": self.kind, "media": self.media}
        if self.media_files is not None:
            out["media_files"] = list(self.media_files)
        out["meta"] = sort(self.meta if self.meta is not None else {})
        if self.problems is not None:
            out["problems"] = list(self.problems)
        return out

    @classmethod
    def decode(cls, value: Any, where: str) -> ItemEntry:
        if not isinstance(value, dict) or not isinstance(value.get("kind"), str):
            raise CorruptObject(f"{where}: malformed item entry")
        media, ann = value.get("media"), value.get("ann")
        for name, path in (("media", media), ("ann", ann)):
            if path is not None:
                check_part_path(path, f"{where} ({name})")
        meta, annotation = value.get("meta"), value.get("annotation")
        if not isinstance(meta, dict) or not (annotation is None or isinstance(annotation, dict)):
            raise CorruptObject(f"{where}: malformed item entry (meta or annotation)")
        media_files = value.get("media_files")
        problems = value.get("problems")
        if problems is not None and not (isinstance(problems, list) and all(isinstance(p, str) for p in problems)):
            raise CorruptObject(f"{where}: malformed item entry (problems)")
        return cls(value["kind"], media, ann, _str_list(value.get("companions") or [], "companions", where), meta,
                   annotation, None if media_files is None else _str_list(media_files, "media_files", where),
                   None if problems is None else tuple(problems), sorted_values=True)


@record(frozen=True, slots=True)
class PageRef:
    """One page of a paged map, as its root lists it: first key, page id, number of entries."""

    first: str
    oid: bytes
    count: int

    def encode(self) -> list:
        return [self.first, self.oid, self.count]

    @classmethod
    def decode(cls, value: Any, where: str) -> PageRef:
        if not (isinstance(value, list) and len(value) == 3 and isinstance(value[0], str) and _is_id(value[1])
                and _is_count(value[2])):
            raise CorruptObject(f"{where}: malformed page reference")
        return cls(value[0], value[1], value[2])


def _decode_root(value: Any, kind: str, where: str) -> tuple[PageRef, ...]:
    if not isinstance(value, list):
        raise CorruptObject(f"{where}: {kind} is not a list")
    return tuple(PageRef.decode(ref, f"{where} ({kind})") for ref in value)


@record(frozen=True, slots=True)
class Page:
    """One run of a paged map: sorted (key, value) entries; values are FileValue (files) or ItemEntry (items)."""

    kind: str
    entries: tuple[tuple[str, Any], ...]

    def encode(self) -> bytes:
        return _pack({"entries": [[k, v.encode()] for k, v in self.entries], "kind": self.kind, "type": "page"})

    @classmethod
    def decode(cls, data: bytes, oid: bytes, kind: str | None = None) -> Page:
        where = f"page {oid.hex()}"
        obj = decode_map(data, where)
        if obj.get("type") != "page" or obj.get("kind") not in PAGE_KINDS or not isinstance(obj.get("entries"), list):
            raise CorruptObject(f"{where}: not a page")
        if kind is not None and obj["kind"] != kind:
            raise CorruptObject(f"{where}: not a {kind} page")
        value_cls = FileValue if obj["kind"] == "files" else ItemEntry
        entries = []
        previous = None
        for entry in obj["entries"]:
            if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)):
                raise CorruptObject(f"{where}: malformed entry")
            key = entry[0]
            if previous is not None and key <= previous:
                raise CorruptObject(f"{where}: lists {key[:120]!r} twice or out of order")
            if obj["kind"] == "files":
                check_part_path(key, where)
            entries.append((key, value_cls.decode(entry[1], f"{where}: {key[:120]!r}")))
            previous = key
        return cls(obj["kind"], tuple(entries))


@record(frozen=True, slots=True)
class ChildRef:
    """A child dataset of a tree: its folder (from the project root), full name and tree id."""

    folder: str
    name: str
    oid: bytes

    def encode(self) -> list:
        return [self.folder, self.name, self.oid]


@record(frozen=True, slots=True)
class Tree:
    """One dataset (or the project root, name ""): its files, its items and its child datasets."""

    name: str
    files: tuple[PageRef, ...]
    items: tuple[PageRef, ...]
    children: tuple[ChildRef, ...]

    def encode(self) -> bytes:
        return _pack({"children": [c.encode() for c in self.children], "files": [r.encode() for r in self.files],
                      "items": [r.encode() for r in self.items], "name": self.name, "type": "tree"})

    @classmethod
    def decode(cls, data: bytes, oid: bytes) -> Tree:
        where = f"tree {oid.hex()}"
        obj = decode_map(data, where)
        if obj.get("type") != "tree" or not isinstance(obj.get("name"), str) or not isinstance(obj.get("children"), list):
            raise CorruptObject(f"{where}: not a tree")
        children = []
        for child in obj["children"]:
            if not (isinstance(child, list) and len(child) == 3 and isinstance(child[1], str) and _is_id(child[2])):
                raise CorruptObject(f"{where}: malformed dataset entry")
            children.append(ChildRef(safe_relpath(child[0], f"{where}: dataset {child[1][:120]!r}"), child[1], child[2]))
        return cls(obj["name"], _decode_root(obj.get("files"), "files", where),
                   _decode_root(obj.get("items"), "items", where), tuple(children))


@record(frozen=True, slots=True)
class Manifest:
    """The root of a version: project type and layout, the root tree, statistics, item problems, and warnings
    about the project as a whole (where its layout disagrees with its meta.json)."""

    project_type: str
    layout: str
    root: bytes
    stats: dict
    problems: tuple[dict, ...] | None = None  # None only in manifests written before problems were recorded
    warnings: tuple[str, ...] | None = None  # set only when not empty
    format: int = MANIFEST_FORMAT

    type: ClassVar[str] = "manifest"

    def encode(self) -> bytes:
        out: dict[str, Any] = {"format": self.format, "layout": self.layout}
        if self.problems is not None:
            out["problems"] = canonical(list(self.problems))
        out |= {"project_type": self.project_type, "root": self.root, "stats": canonical(self.stats), "type": "manifest"}
        if self.warnings is not None:
            out["warnings"] = list(self.warnings)
        return _pack(out)

    @property
    def classes(self) -> dict[str, int]:
        return dict(self.stats.get("classes") or {})

    @classmethod
    def decode(cls, data: bytes, oid: bytes) -> Manifest:
        where = f"manifest {oid.hex()}"
        obj = decode_map(data, where)
        if obj.get("type") != "manifest" or not _is_id(obj.get("root")):
            raise CorruptObject(f"{where}: not a manifest")
        if obj.get("format") != MANIFEST_FORMAT:
            raise CorruptObject(f"{where}: manifest format {obj.get('format')!r} is not {MANIFEST_FORMAT} "
                                "(written by a newer pvc?)")
        stats, problems = check_stats(obj.get("stats", {}), where), obj.get("problems")
        if problems is not None and not (isinstance(problems, list) and all(
                isinstance(p, dict) and all(isinstance(p.get(k), str) for k in _PROBLEM_KEYS) for p in problems)):
            raise CorruptObject(f"{where}: malformed problems")
        if not all(isinstance(obj.get(k, "?"), str) for k in ("project_type", "layout")):
            raise CorruptObject(f"{where}: malformed project type or layout")
        warnings = obj.get("warnings")
        if warnings is not None and not (isinstance(warnings, list) and all(isinstance(w, str) for w in warnings)):
            raise CorruptObject(f"{where}: malformed warnings")
        return cls(obj.get("project_type", "?"), obj.get("layout", "?"), obj["root"], stats,
                   None if problems is None else tuple(problems), None if warnings is None else tuple(warnings))
