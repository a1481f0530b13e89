"""`render.indented_json`, the text of every `--json` answer, is json.dumps(indent=2, ensure_ascii=False, default=str)."""

from __future__ import annotations

import json
import math
from pathlib import PurePosixPath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pvc.render import indented_json

scalars = (st.none() | st.booleans() | st.integers() | st.integers(min_value=-(10**40), max_value=10**40)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text())
keys = st.text() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.booleans() | st.none()
documents = st.recursive(
    scalars | st.builds(PurePosixPath, st.text(alphabet="abc/", max_size=8)),  # not JSON: written as str() writes it
    lambda inner: st.lists(inner, max_size=5) | st.lists(inner, max_size=3).map(tuple)
    | st.dictionaries(keys, inner, max_size=5),
    max_leaves=40)


def _json(doc: object) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=2, default=str)


@settings(max_examples=800, deadline=None)
@given(documents)
def test_the_text_is_json_dumps_text(doc):
    assert indented_json(doc) == _json(doc)


def test_a_status_shaped_report_and_its_corners():
    doc = {"from": 1, "to": "working", "clean": False, "datasets": {"added": [], "removed": []},
           "items": {"added": [{"dataset": "ds0", "item": "é \"q\" \\ \n\u2028.jpg"}], "changed": ()},
           "classes": {"car": {"before": 3, "after": 4}}, "ratio": 0.1, "nan": math.nan, "inf": -math.inf,
           1: "int key", 2.5: "float key", True: "bool key", None: "null key", "empty": {}, "big": 2**70}
    assert indented_json(doc) == _json(doc)
    assert json.loads(indented_json(doc))["items"]["added"][0]["item"] == "é \"q\" \\ \n\u2028.jpg"


def test_a_key_json_refuses_is_refused_alike():
    with pytest.raises(TypeError):
        json.dumps({(1, 2): 0}, indent=2)
    with pytest.raises(TypeError):
        indented_json({(1, 2): 0})
