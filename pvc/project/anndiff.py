"""Semantic differences between two versions of one annotation: objects, tags, figures.

Objects are matched by `id` (image annotations downloaded from the server) or `key` (videos, volumes)
when both sides have one; the rest by class and geometry; what is still unmatched is paired by class
as "changed" (an edited polygon keeps its class), and only the remainder counts as added or removed.

`annotation_diff` answers for any parsed JSON on either side: what is not of the shape it reads (a
non-list `objects`, a tag named by a list, a document nested deeper than Python walks) counts as absent,
as an annotation that does not parse does, never as an error (`pvc diff --stat` relies on it: it does not
read the annotations' contents, only their bytes).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from msgpack import packb

__all__ = ["annotation_diff"]

_VOLATILE = ("updatedAt", "createdAt", "labelerLogin")
# what json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False) does, without making an encoder a call
_ENCODE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def _canon(value: Any) -> str:
    if isinstance(value, dict):
        value = {k: v for k, v in value.items() if k not in _VOLATILE}
    return _ENCODE(value)


def _ident(obj: dict) -> Any:
    for key in ("id", "key"):
        if isinstance(obj.get(key), (str, int)):
            return (key, obj[key])
    return None


def _class(obj: dict) -> str:
    return str(obj.get("classTitle", obj.get("objectKey", "?")))


def match_objects(before: list, after: list) -> dict[str, int]:
    """Counts of added, removed and changed objects between two lists of annotation objects.

    Where no id repeats on either side, the answer is found with fewer canonical forms, and is the same: objects the
    same at the same place are set aside as unchanged (`_set_aside_unchanged`), and an object with an id that the
    other side lacks is unmatched without its form being made (an object whose form equals its own holds that id)."""
    a = [o for o in before if isinstance(o, dict)]
    b = [o for o in after if isinstance(o, dict)]
    ident = {id(o): _ident(o) for o in (*a, *b)}  # (the objects live through the call)
    unique = all(len(k) == len(set(k)) for k in ([ident[id(o)] for o in side if ident[id(o)] is not None]
                                                 for side in (a, b)))
    if unique and a and b:
        a, b = _set_aside_unchanged(a, b)
    forms: dict[int, str] = {}  # id(object) -> its canonical form, made once

    def canon(obj: dict) -> str:
        form = forms.get(id(obj))
        if form is None:
            form = forms[id(obj)] = _canon(obj)
        return form

    changed = 0
    by_id = {k: o for o in b if (k := ident[id(o)]) is not None}
    left_a, matched_b = [], set()
    for obj in a:
        k = ident[id(obj)]
        twin = by_id.get(k) if k is not None else None
        if twin is not None and id(twin) not in matched_b:
            matched_b.add(id(twin))
            changed += not _same(obj, twin) and canon(obj) != canon(twin)
        else:
            left_a.append(obj)
    left_b = [o for o in b if id(o) not in matched_b]
    rest_a, rest_b = [], []
    if unique:  # what is left with an id has no twin on the other side: only the objects without one are pooled
        rest_a = [o for o in left_a if ident[id(o)] is not None]
        rest_b = [o for o in left_b if ident[id(o)] is not None]
        left_a = [o for o in left_a if ident[id(o)] is None]
        left_b = [o for o in left_b if ident[id(o)] is None]
    pool = Counter(canon(o) for o in left_b)
    for obj in left_a:  # same content, no id: unchanged
        c = canon(obj)
        if pool[c]:
            pool[c] -= 1
        else:
            rest_a.append(obj)
    for obj in left_b:  # what no object of `before` accounted for
        c = canon(obj)
        if pool[c] > 0:
            pool[c] -= 1
            rest_b.append(obj)
    removed_by_class = Counter(_class(o) for o in rest_a)
    added_by_class = Counter(_class(o) for o in rest_b)
    paired = sum((removed_by_class & added_by_class).values())  # same class on both sides: an edit
    return {"added": len(rest_b) - paired, "removed": len(rest_a) - paired, "changed": changed + paired}


def _same(x: dict, y: dict) -> bool:
    """True when `x` and `y` are the same JSON, to the key order and the type of every number (so their canonical
    forms are equal); False says nothing. Several times cheaper than the canonical forms: most objects of an edited
    annotation are not edited."""
    try:
        return x == y and packb(x) == packb(y)  # (== alone holds 1 == 1.0 == True, which JSON tells apart)
    except (ValueError, TypeError, OverflowError, RecursionError):  # too deep or too large for msgpack
        return False


def _set_aside_unchanged(a: list[dict], b: list[dict]) -> tuple[list[dict], list[dict]]:
    """`a` and `b` without the objects that are the same at the same place on both sides. Where no id repeats on
    either side, these are unchanged however the rest pairs up (matched by their id, or both taken out of the pool of
    canonical forms, whose difference keeps), so the counts are those of the lists as given."""
    keep_a, keep_b = [], []
    for x, y in zip(a, b):
        if not _same(x, y):
            keep_a.append(x)
            keep_b.append(y)
    if len(keep_a) == len(a):
        return a, b
    return keep_a + a[len(b):], keep_b + b[len(a):]


def _listed(value: Any) -> list:
    """The elements of a JSON list; none for anything else (which holds no JSON objects to diff)."""
    return value if isinstance(value, list) else []


def _tag_names(tags: Any) -> set:
    names = (t.get("name") if isinstance(t, dict) else t for t in (tags if isinstance(tags, (list, str, dict)) else ())
             if isinstance(t, (dict, str)))
    return {n for n in names if not isinstance(n, (list, dict))} - {None}


def _sorted(names: set) -> list:
    """Tag names in order; names of several JSON types (a string and a number) by type first."""
    try:
        return sorted(names)
    except TypeError:
        return sorted(names, key=lambda n: (type(n).__name__, n))


def _figures(doc: dict, kind: str) -> list:
    if kind == "video":
        return [dict(f, _frame=fr.get("index")) for fr in _listed(doc.get("frames")) if isinstance(fr, dict)
                for f in _listed(fr.get("figures")) if isinstance(f, dict)]
    if kind == "volume":
        plane = [f for p in _listed(doc.get("planes")) if isinstance(p, dict) for s in _listed(p.get("slices"))
                 if isinstance(s, dict) for f in _listed(s.get("figures")) if isinstance(f, dict)]
        return plane + [f for f in _listed(doc.get("spatialFigures")) if isinstance(f, dict)]
    return []


def annotation_diff(kind: str, before: Any, after: Any) -> dict:
    """What changed in an annotation: objects, tags (added/removed names), objects per class, figures."""
    try:
        return _annotation_diff(kind, before, after)
    except RecursionError:  # nested deeper than Python walks: as documents that do not parse
        return _annotation_diff(kind, None, None)


def _annotation_diff(kind: str, before: Any, after: Any) -> dict:
    a = before if isinstance(before, dict) else {}
    b = after if isinstance(after, dict) else {}
    objs_a, objs_b = _listed(a.get("objects")), _listed(b.get("objects"))
    result: dict[str, Any] = {
        "objects": match_objects(objs_a, objs_b),
        "tags": {"added": _sorted(_tag_names(b.get("tags")) - _tag_names(a.get("tags"))),
                 "removed": _sorted(_tag_names(a.get("tags")) - _tag_names(b.get("tags")))},
    }
    before_cls = Counter(_class(o) for o in objs_a if isinstance(o, dict))
    after_cls = Counter(_class(o) for o in objs_b if isinstance(o, dict))
    result["classes"] = {c: {"before": before_cls[c], "after": after_cls[c]}
                         for c in sorted(set(before_cls) | set(after_cls)) if before_cls[c] != after_cls[c]}
    if kind in ("video", "volume"):
        result["figures"] = match_objects(_figures(a, kind), _figures(b, kind))
    if kind == "video":
        per_a, per_b = _figures_per_frame(a), _figures_per_frame(b)
        result["frames_changed"] = sum(1 for i in set(per_a) | set(per_b) if per_a.get(i) != per_b.get(i))
    return result


def _figures_per_frame(doc: dict) -> dict[Any, str]:
    """Frame index -> the canonical form of its figures, to count frames whose figures changed (an index that
    is a list or an object stands for itself by its canonical form)."""
    return {(("unhashable", _canon(index)) if isinstance(index := f.get("index"), (list, dict)) else index):
            _canon(f.get("figures")) for f in _listed(doc.get("frames")) if isinstance(f, dict)}
