"""pvc.record makes the methods dataclasses would: the same classes, made both ways, behave alike."""

from __future__ import annotations

import dataclasses
import pickle
from typing import ClassVar

import pytest

from pvc.record import FrozenInstanceError, field, fields, record, replace


def _both(frozen=False, slots=False, kw_only=False):
    """The same class body made by dataclasses and by pvc.record."""
    made = []
    for decorate, make_field in ((dataclasses.dataclass, dataclasses.field), (record, field)):
        class Point:
            """A point with a label."""

            x: int
            y: int = 0
            tags: list = make_field(default_factory=list)
            note: str = make_field(default="", compare=False, repr=False)
            kind: ClassVar[str] = "point"

            def norm(self) -> int:
                return abs(self.x) + abs(self.y)

        made.append(decorate(frozen=frozen, slots=slots, kw_only=kw_only)(Point))
    return made


@pytest.mark.parametrize("frozen", [False, True])
@pytest.mark.parametrize("slots", [False, True])
def test_init_repr_eq_and_hash_match_dataclasses(frozen, slots):
    ref, ours = _both(frozen, slots)
    for args, kwargs in [((1,), {}), ((1, 2), {}), ((1,), {"tags": [3], "note": "n"}), ((), {"x": 5, "y": -1})]:
        a, b = ref(*args, **kwargs), ours(*args, **kwargs)
        assert repr(a) == repr(b)
        assert [getattr(a, n) for n in ("x", "y", "tags", "note")] == [getattr(b, n) for n in ("x", "y", "tags", "note")]
        assert b.norm() == a.norm()
    assert ours(1, 2, note="a") == ours(1, 2, note="b")  # compare=False
    assert ours(1, 2) != ours(1, 3)
    assert ours(1, 2) != ref(1, 2)  # another class: never equal, as dataclasses has it
    assert ours(1).tags is not ours(1).tags  # a fresh default from the factory each time
    assert ours.kind == "point" and "kind" not in [f.name for f in fields(ours)]
    if frozen:
        # by the compared fields (not `note`), as dataclasses hashes
        assert hash(ours(1, 2, (), "a")) == hash(ours(1, 2, (), "b")) == hash(ref(1, 2, (), "c"))
        assert hash(ours(1, 2, ())) != hash(ours(2, 1, ()))
    else:
        with pytest.raises(TypeError):
            hash(ours(1))


def test_frozen_refuses_assignment_and_deletion():
    _, ours = _both(frozen=True)
    point = ours(1)
    with pytest.raises(FrozenInstanceError):
        point.x = 2
    with pytest.raises(AttributeError):  # FrozenInstanceError is one, as in dataclasses
        del point.y
    assert point.x == 1 and point.y == 0


@record(frozen=True, slots=True)
class Pickled:
    """A frozen record with slots, at module level so that pickle finds it."""

    x: int
    tags: tuple = ()
    note: str = field(default="", compare=False)


def test_slots_leave_no_instance_dict_and_pickle_by_fields():
    _, ours = _both(frozen=True, slots=True)
    assert not hasattr(ours(1), "__dict__")
    assert ours.__slots__ == ("x", "y", "tags", "note")
    point = Pickled(1, ("t",), "n")
    copy = pickle.loads(pickle.dumps(point))
    assert copy == point and copy.note == "n" and type(copy) is Pickled


def test_kw_only_takes_keywords_alone():
    ref, ours = _both(kw_only=True)
    with pytest.raises(TypeError):
        ours(1)
    assert repr(ours(x=1)) == repr(ref(x=1))


def test_replace_changes_the_named_fields_and_refuses_others():
    _, ours = _both(frozen=True, slots=True)
    point = ours(1, 2, ["a"], "n")
    moved = replace(point, y=9)
    assert (moved.x, moved.y, moved.tags, moved.note) == (1, 9, ["a"], "n") and point.y == 2
    with pytest.raises(TypeError):
        replace(point, z=1)


def test_definitions_dataclasses_refuses_are_refused():
    with pytest.raises(ValueError):
        @record
        class Shared:
            items: list = []  # noqa: RUF012 - the mistake under test

    with pytest.raises(TypeError):
        @record
        class Order:
            a: int = 0
            b: int


def test_a_class_hash_or_eq_of_its_own_is_kept():
    @record(frozen=True)
    class ById:
        """Equal by id alone."""

        id: int
        name: str

        def __eq__(self, other):
            return isinstance(other, ById) and other.id == self.id

        def __hash__(self):
            return hash(self.id)

    assert ById(1, "a") == ById(1, "b") and hash(ById(1, "a")) == hash(ById(1, "b"))
