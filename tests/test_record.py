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


def test_what_is_not_supported_is_refused():
    @record(frozen=True)
    class Base:
        """A record."""

        a: int

    with pytest.raises(TypeError, match="inherit"):
        @record(frozen=True)
        class Derived(Base):
            b: int

    with pytest.raises(TypeError, match="__post_init__"):
        @record
        class Checked:
            a: int

            def __post_init__(self):
                pass

    for name in ("self", "_record_set", "_record_missing"):
        with pytest.raises(TypeError, match="cannot be a field name"):
            record(type("Named", (), {"__annotations__": {name: "int"}}))


@pytest.mark.parametrize("frozen", [False, True])
def test_an_eq_of_the_class_alone_gets_the_hash_dataclasses_gives(frozen):
    made = []
    for decorate in (dataclasses.dataclass, record):
        class Keyed:
            """Equal by key alone."""

            key: int
            note: str = ""

            def __eq__(self, other):
                return isinstance(other, type(self)) and other.key == self.key

        made.append(decorate(frozen=frozen)(Keyed))
    ref, ours = made
    assert ours(1, "a") == ours(1, "b") and ours(1) != ours(2)  # the class's own __eq__ is kept
    if frozen:  # generated from the fields, as dataclasses does
        assert hash(ours(1, "a")) == hash((1, "a")) == hash(ref(1, "a"))
    else:
        for cls in (ref, ours):
            with pytest.raises(TypeError):
                hash(cls(1))


def test_an_explicit_hash_none_and_match_args_are_kept():
    for decorate in (dataclasses.dataclass, record):
        class Unhashable:
            """Frozen, and still unhashable: the class says so."""

            a: int
            __hash__ = None
            __match_args__ = ("a", "nothing")

        cls = decorate(frozen=True)(Unhashable)
        with pytest.raises(TypeError):
            hash(cls(1))
        assert cls.__match_args__ == ("a", "nothing")


@pytest.mark.parametrize("slots", [False, True])
def test_frozen_with_or_without_slots_raises_frozen_instance_error(slots):
    _, ours = _both(frozen=True, slots=slots)
    point = ours(1)
    for act in (lambda: setattr(point, "x", 2), lambda: delattr(point, "y"), lambda: setattr(point, "other", 1)):
        with pytest.raises(FrozenInstanceError):
            act()


def test_kw_only_records_match_nothing_by_position():
    ref, ours = _both(kw_only=True)
    assert ours.__match_args__ == ref.__match_args__ == ()
    _, positional = _both()
    assert positional.__match_args__ == ("x", "y", "tags", "note")


def _pvc_records() -> list[type]:
    import importlib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "pvc"
    found = {}
    for path in sorted(root.rglob("*.py")):
        name = ".".join(("pvc", *path.relative_to(root).with_suffix("").parts)).removesuffix(".__init__")
        if name.endswith("__main__"):
            continue
        module = importlib.import_module(name)
        for value in vars(module).values():
            if isinstance(value, type) and "__record_fields__" in vars(value) and value.__module__ == name:
                found[f"{name}.{value.__qualname__}"] = value
    return [found[k] for k in sorted(found)]


def test_every_record_of_pvc_takes_the_arguments_its_dataclass_twin_takes():
    """Each record class of pvc, made again by dataclasses from the same fields: the same __init__ parameters
    (names, kinds, which have defaults and which defaults), repr fields and compared fields."""
    import inspect

    from pvc.record import MISSING

    records = _pvc_records()
    assert len(records) > 60  # every module imported: pvc has 70-odd records
    for cls in records:
        ns: dict = {"__annotations__": {}}
        for f in fields(cls):
            ns["__annotations__"][f.name] = "object"
            options = {"compare": f.compare, "repr": f.repr}
            if f.default_factory is not MISSING:
                options["default_factory"] = f.default_factory
            elif f.default is not MISSING:
                options["default"] = f.default
            ns[f.name] = dataclasses.field(**options)
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
        kw_only = bool(params) and all(p.kind is p.KEYWORD_ONLY for p in params)
        twin = dataclasses.dataclass(kw_only=kw_only)(type(cls.__name__, (), ns))
        theirs = list(inspect.signature(twin.__init__).parameters.values())[1:]
        assert [(p.name, p.kind) for p in params] == [(p.name, p.kind) for p in theirs], cls
        for mine, other in zip(params, theirs):
            assert (mine.default is mine.empty) == (other.default is other.empty), (cls, mine.name)
            plain = next(f for f in fields(cls) if f.name == mine.name).default_factory is MISSING
            if plain and mine.default is not mine.empty:
                assert mine.default == other.default, (cls, mine.name)
        assert [f.name for f in fields(cls) if f.compare] == [f.name for f in dataclasses.fields(twin) if f.compare]
        assert [f.name for f in fields(cls) if f.repr] == [f.name for f in dataclasses.fields(twin) if f.repr]


def test_eq_and_hash_are_compiled_on_first_use_and_take_the_stand_ins_place():
    """`__eq__` and `__hash__` start as stand-ins; the first comparison or hash compiles the class's own and puts
    them on the class (the slotted class too, which `slots` makes anew), with the same answers before and after."""
    nan = float("nan")
    for options in ({"frozen": True}, {"frozen": True, "slots": True}):
        @record(**options)
        class P:
            a: int
            b: float
            note: str = field(default="", compare=False)

        stand_ins = P.__dict__["__eq__"], P.__dict__["__hash__"]
        first = [P(1, 2.0) == P(1, 2.0, "other"), P(1, 2.0) == P(1, 3.0), P(1, 2.0) == (1, 2.0), P(1, float("nan")) == P(1, float("nan"))]
        assert first == [True, False, False, False]
        assert P.__dict__["__eq__"] is not stand_ins[0] and P.__dict__["__hash__"] is not stand_ins[1]
        again = [P(1, 2.0) == P(1, 2.0, "other"), P(1, 2.0) == P(1, 3.0), P(1, 2.0) == (1, 2.0), P(1, float("nan")) == P(1, float("nan"))]
        assert again == first
        assert P(1, nan) == P(1, nan)  # an element identical on both sides is equal, as in a tuple of the fields
        assert hash(P(1, 2.0)) == hash(P(1, 2.0, "x")) == hash((1, 2.0))
        assert {P(1, 2.0), P(1, 2.0, "x"), P(2, 2.0)} == {P(1, 2.0), P(2, 2.0)}
        assert P(1, 2.0).__eq__.__qualname__.endswith("P.__eq__")

    @record
    class M:
        a: int

    assert M.__hash__ is None and M(1) == M(1) and M(1) != M(2) and M.__hash__ is None  # mutable: unhashable still
    with pytest.raises(TypeError):
        hash(M(1))

    @record(frozen=True)
    class Nothing:
        pass

    assert Nothing() == Nothing() and hash(Nothing()) == hash(())
