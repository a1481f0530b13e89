"""annotation_diff answers for any parsed JSON, and as it always did wherever it answered before.

`pvc diff --stat` does not parse annotations (it prints nothing of their semantic diff), so that the CLI and the
entry point say the same, annotation_diff must never fail on what parse_json can give: before this, a committed
annotation whose tag was named by a list, or whose `objects` was a number, made `pvc diff` an internal error.
`_reference` below is annotation_diff as it was (4fc5dd3), to check that nothing else changed.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pvc.errors import BadInput
from pvc.project.anndiff import annotation_diff, match_objects
from pvc.project.jsonfile import parse_json

# -- annotation_diff of 4fc5dd3, unchanged -------------------------------------------------------------------
_VOLATILE = ("updatedAt", "createdAt", "labelerLogin")


def _canon(value: Any) -> str:
    if isinstance(value, dict):
        value = {k: v for k, v in value.items() if k not in _VOLATILE}
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _ident(obj: dict) -> Any:
    for key in ("id", "key"):
        if isinstance(obj.get(key), (str, int)):
            return (key, obj[key])
    return None


def _class(obj: dict) -> str:
    return str(obj.get("classTitle", obj.get("objectKey", "?")))


def _match(before: list, after: list) -> dict[str, int]:
    a = [o for o in before if isinstance(o, dict)]
    b = [o for o in after if isinstance(o, dict)]
    changed = 0
    by_id = {_ident(o): o for o in b if _ident(o) is not None}
    left_a, matched_b = [], set()
    for obj in a:
        twin = by_id.get(_ident(obj)) if _ident(obj) is not None else None
        if twin is not None and id(twin) not in matched_b:
            matched_b.add(id(twin))
            changed += _canon(obj) != _canon(twin)
        else:
            left_a.append(obj)
    left_b = [o for o in b if id(o) not in matched_b]
    pool = Counter(_canon(o) for o in left_b)
    rest_a = []
    for obj in left_a:
        c = _canon(obj)
        if pool[c]:
            pool[c] -= 1
        else:
            rest_a.append(obj)
    rest_b = []
    for obj in left_b:
        c = _canon(obj)
        if pool[c] > 0:
            pool[c] -= 1
            rest_b.append(obj)
    removed_by_class = Counter(_class(o) for o in rest_a)
    added_by_class = Counter(_class(o) for o in rest_b)
    paired = sum((removed_by_class & added_by_class).values())
    return {"added": len(rest_b) - paired, "removed": len(rest_a) - paired, "changed": changed + paired}


def _tag_names(tags: Any) -> set[str]:
    return {t.get("name") if isinstance(t, dict) else t for t in tags or [] if isinstance(t, (dict, str))} - {None}


def _figures(doc: dict, kind: str) -> list:
    if kind == "video":
        return [dict(f, _frame=fr.get("index")) for fr in doc.get("frames") or [] if isinstance(fr, dict)
                for f in fr.get("figures") or [] if isinstance(f, dict)]
    if kind == "volume":
        plane = [f for p in doc.get("planes") or [] if isinstance(p, dict) for s in p.get("slices") or []
                 if isinstance(s, dict) for f in s.get("figures") or [] if isinstance(f, dict)]
        return plane + [f for f in doc.get("spatialFigures") or [] if isinstance(f, dict)]
    return []


def _reference(kind: str, before: Any, after: Any) -> dict:
    a = before if isinstance(before, dict) else {}
    b = after if isinstance(after, dict) else {}
    objs_a, objs_b = a.get("objects") or [], b.get("objects") or []
    result: dict[str, Any] = {
        "objects": _match(objs_a, objs_b),
        "tags": {"added": sorted(_tag_names(b.get("tags")) - _tag_names(a.get("tags"))),
                 "removed": sorted(_tag_names(a.get("tags")) - _tag_names(b.get("tags")))},
    }
    before_cls = Counter(_class(o) for o in objs_a if isinstance(o, dict))
    after_cls = Counter(_class(o) for o in objs_b if isinstance(o, dict))
    result["classes"] = {c: {"before": before_cls[c], "after": after_cls[c]}
                         for c in sorted(set(before_cls) | set(after_cls)) if before_cls[c] != after_cls[c]}
    if kind in ("video", "volume"):
        result["figures"] = _match(_figures(a, kind), _figures(b, kind))
    if kind == "video":
        per_a = {f.get("index"): _canon(f.get("figures")) for f in a.get("frames") or [] if isinstance(f, dict)}
        per_b = {f.get("index"): _canon(f.get("figures")) for f in b.get("frames") or [] if isinstance(f, dict)}
        result["frames_changed"] = sum(1 for i in set(per_a) | set(per_b) if per_a.get(i) != per_b.get(i))
    return result
# -------------------------------------------------------------------------------------------------------------

_scalar = (st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False, width=16)
           | st.sampled_from(["", "car", "a", "b", "id"]))
_json = st.recursive(_scalar, lambda c: st.lists(c, max_size=3) | st.dictionaries(
    st.sampled_from(["id", "key", "classTitle", "objectKey", "name", "index", "figures", "tags", "x"]), c, max_size=4),
    max_leaves=10)
_object = st.fixed_dictionaries({}, optional={"id": _json, "key": _json, "classTitle": _json, "objectKey": _json,
                                               "points": _json, "tags": _json, "updatedAt": _json})
_frame = st.fixed_dictionaries({}, optional={"index": _json, "figures": st.lists(_object, max_size=3) | _json})
_doc = st.fixed_dictionaries({}, optional={
    "objects": st.lists(_object | _json, max_size=4) | _json, "tags": st.lists(_json, max_size=3) | _json,
    "frames": st.lists(_frame | _json, max_size=3) | _json, "planes": _json, "spatialFigures": _json}) | _json


@settings(max_examples=1500, deadline=None)
@given(st.sampled_from(["image", "video", "volume"]), _doc, _doc)
def test_any_json_gets_an_answer_and_the_old_answer_where_there_was_one(kind, before, after):
    got = annotation_diff(kind, before, after)
    assert json.loads(json.dumps(got)) is not None  # a JSON-ready answer
    try:
        expected = _reference(kind, before, after)
    except TypeError:  # what used to make `pvc diff` an internal error
        return
    assert got == expected


_numbers = st.integers(-2, 2) | st.sampled_from([0.0, 1.0, -1.0, 2.5]) | st.booleans()
_edited_object = st.fixed_dictionaries({}, optional={
    "id": st.integers(1, 4) | st.sampled_from(["a", "b"]) | st.none(), "key": st.sampled_from(["k1", "k2"]),
    "classTitle": st.sampled_from(["car", "road"]), "points": st.lists(st.lists(_numbers, max_size=2), max_size=3),
    "updatedAt": st.sampled_from(["t1", "t2"]), "tags": st.lists(st.sampled_from(["x", "y"]), max_size=2)})


def _edit(obj: dict, how: int) -> dict:
    """`obj` the same (a copy), with its keys in another order, a number of another type, a volatile key changed,
    or a point moved."""
    if how == 0:
        return json.loads(json.dumps(obj))
    if how == 1:
        return dict(reversed(list(obj.items())))
    if how == 2:
        return {k: ([[float(v) if type(v) is int else int(v) if type(v) is float and v == int(v) else v for v in p]
                     for p in val] if k == "points" else val) for k, val in obj.items()}
    if how == 3:
        return {**obj, "updatedAt": "t3"}
    return {**obj, "points": [[9, 9]]}


@settings(max_examples=1500, deadline=None)
@given(st.lists(_edited_object, max_size=6), st.data())
def test_objects_set_aside_as_unchanged_count_as_the_canonical_forms_count_them(before, data):
    # after: before's objects, some edited (or the same with keys reordered, ints as floats, a volatile key
    # changed), some dropped, moved or repeated, some new: what match_objects counts must be the reference's
    after = [_edit(o, data.draw(st.integers(0, 4))) for o in before if data.draw(st.booleans() | st.just(True))]
    after = data.draw(st.permutations(after)) if data.draw(st.booleans()) else after
    after += data.draw(st.lists(st.sampled_from(before) if before else _edited_object, max_size=2))
    after += data.draw(st.lists(_edited_object, max_size=2))
    assert match_objects(before, after) == _match(before, after)
    assert match_objects(after, before) == _match(after, before)


def test_an_object_whose_integers_became_floats_is_changed_and_one_whose_keys_moved_is_not():
    car = {"id": 1, "classTitle": "car", "points": [[1, 2]], "updatedAt": "t1"}
    road = {"classTitle": "road", "points": [[3, 4]]}
    assert match_objects([car, road], [{**car, "points": [[1.0, 2]]}, dict(reversed(road.items()))]) == \
        {"added": 0, "removed": 0, "changed": 1}
    assert match_objects([car, road], [{**car, "updatedAt": "t2"}, road]) == {"added": 0, "removed": 0, "changed": 0}


@pytest.mark.parametrize("before, after", [
    ({"objects": 5}, {"objects": [{"classTitle": "car"}]}),
    ({"tags": [{"name": ["x"]}, {"name": {"y": 1}}, "ok"]}, {"tags": 7}),
    ({"tags": [{"name": 5}, "a"]}, {"tags": []}),
    ({"frames": [{"index": [1], "figures": [{}]}]}, {"frames": True}),
])
def test_shapes_that_used_to_fail(before, after):
    with pytest.raises(TypeError):
        _reference("video", before, after)
    annotation_diff("video", before, after)


def test_a_document_nested_deeper_than_python_walks_counts_as_absent():
    deep: list = []
    inner = deep
    for _ in range(3000):
        inner.append([])
        inner = inner[0]
    before = {"objects": [{"classTitle": "car", "points": deep}]}
    assert annotation_diff("image", before, before) == annotation_diff("image", None, None)


def test_an_integer_too_long_for_python_is_malformed_json():
    with pytest.raises(BadInput, match="malformed JSON"):
        parse_json(b'{"size": ' + b"7" * 5000 + b"}", "ann/x.json")
