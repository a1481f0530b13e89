"""Records: classes of named fields, with the methods `dataclasses` would give them, made at a fraction of the cost.

Every command pays at start for the classes it imports, and pvc has over seventy of them. `dataclasses` costs
twice there:

- its import pulls in `inspect` (with ast, dis and tokenize): ~9 ms;
- it compiles five to seven functions per class, and asks `inspect.signature` for a class with no docstring: 0.8
  ms for a frozen class of eight fields.

`pvc log` imported eighteen such classes, so it spent more on them than on reading 1,000 version records.
`record` imports nothing and compiles one function per class, `__init__`. `__eq__` and `__hash__` are compiled the
first time an instance is compared or hashed (then as fast as dataclasses'), and `__repr__` is a closure: a short
command compares few of the classes it imports. On the bench history, `log`, `show` and `diff 1 1000 --stat` spent
5.0–7.3 ms making their 18–25 classes with all four compiled at once, 3.1–3.9 ms now.

It takes the subset of `dataclasses.dataclass` pvc uses, with the same meaning:

- `frozen`: assigning to or deleting an attribute raises FrozenInstanceError (an AttributeError);
- `slots`: the class is remade with `__slots__`, pickled by its fields;
- `kw_only`: every field is keyword-only;
- `eq` (on by default): `==` compares the fields of two instances of the same class, in order; a frozen record
  hashes by the same fields, a mutable one is unhashable;
- `field(default=..., default_factory=..., compare=..., repr=...)`, `ClassVar` annotations (not fields).

`replace(obj, **changes)` makes a copy with some fields changed. A field without a default after one with a
default, or a list, dict or set as a default, is a TypeError / ValueError, as there. What pvc does not use is
refused with a TypeError rather than done differently: a record inheriting from a record, `__post_init__`, a
field named `self` or `_record_...` (the generated code's own names).
"""

from __future__ import annotations

__all__ = ["record", "field", "replace", "fields", "FrozenInstanceError"]


class FrozenInstanceError(AttributeError):
    """An assignment to a field of a frozen record."""


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()


class Field:
    """One field of a record: its name, default (or factory) and whether it is compared and shown."""

    __slots__ = ("name", "default", "default_factory", "compare", "repr")

    def __init__(self, default=MISSING, default_factory=MISSING, compare=True, repr=True) -> None:  # noqa: A002
        if default is not MISSING and default_factory is not MISSING:
            raise ValueError("cannot specify both default and default_factory")
        self.name = ""
        self.default = default
        self.default_factory = default_factory
        self.compare = compare
        self.repr = repr

    def __repr__(self) -> str:
        return f"Field(name={self.name!r})"


def field(*, default=MISSING, default_factory=MISSING, compare: bool = True, repr: bool = True):  # noqa: A002
    """A field with a default or a factory of defaults, or left out of comparisons and the repr."""
    return Field(default, default_factory, compare, repr)


def fields(obj_or_class) -> tuple[Field, ...]:
    """The fields of a record (or its class), in order."""
    return getattr(obj_or_class, "__record_fields__")


def replace(obj, /, **changes):
    """A copy of the record `obj` with `changes` made; a name that is not one of its fields is a TypeError."""
    cls = obj.__class__
    for f in cls.__record_fields__:
        if f.name not in changes:
            changes[f.name] = getattr(obj, f.name)
    return cls(**changes)


def record(cls=None, /, *, frozen: bool = False, slots: bool = False, kw_only: bool = False, eq: bool = True):
    """Give `cls` an `__init__`, `__repr__` and, with `eq`, `__eq__` (and `__hash__`) from its annotated fields."""

    def wrap(cls):
        return _process(cls, frozen, slots, kw_only, eq)

    return wrap if cls is None else wrap(cls)


def _is_classvar(annotation) -> bool:
    if isinstance(annotation, str):
        return annotation.startswith(("ClassVar", "typing.ClassVar"))
    return repr(annotation).startswith("typing.ClassVar")


_INTERNAL = "_record_"  # the prefix of the generated code's own names, which no field may take


def _process(cls, frozen: bool, slots: bool, kw_only: bool, eq: bool):
    body = cls.__dict__
    if any(hasattr(base, "__record_fields__") for base in cls.__mro__[1:]):
        raise TypeError(f"{cls.__qualname__}: a record cannot inherit from a record (pvc.record does not merge fields)")
    if "__post_init__" in body:
        raise TypeError(f"{cls.__qualname__}: __post_init__ is not supported by pvc.record")
    found: list[Field] = []
    for name, annotation in body.get("__annotations__", {}).items():
        if _is_classvar(annotation):
            continue
        if name == "self" or name.startswith(_INTERNAL):
            raise TypeError(f"{cls.__qualname__}: {name!r} cannot be a field name (pvc.record uses it)")
        value = body.get(name, MISSING)
        f = value if isinstance(value, Field) else Field(default=value)
        f.name = name
        if f.default.__class__.__hash__ is None:  # a list, dict or set shared by every instance
            raise ValueError(f"mutable default {type(f.default)} for field {name} is not allowed: use default_factory")
        found.append(f)
        if isinstance(value, Field):  # the class attribute is the default itself, or nothing
            if f.default is MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, f.default)
    names = [f.name for f in found]
    namespace: dict = {"_record_missing": MISSING, "_record_set": object.__setattr__}
    params, kw_params, lines = [], [], []
    defaulted = False
    for f in found:
        if f.default_factory is not MISSING:
            namespace[f"_record_factory_{f.name}"] = f.default_factory
            param = f"{f.name}=_record_missing"
            value = f"_record_factory_{f.name}() if {f.name} is _record_missing else {f.name}"
        elif f.default is not MISSING:
            namespace[f"_record_default_{f.name}"] = f.default
            param, value = f"{f.name}=_record_default_{f.name}", f.name
        else:
            if defaulted and not kw_only:
                raise TypeError(f"non-default argument {f.name!r} follows default argument")
            param, value = f.name, f.name
        defaulted = defaulted or param != f.name
        (kw_params if kw_only else params).append(param)
        lines.append(f"        _record_set(self, {f.name!r}, {value})" if frozen else f"        self.{f.name} = {value}")
    signature = ", ".join(["self", *params, *(["*", *kw_params] if kw_params else [])])
    source = ["def _record_make():", f"    def __init__({signature}):", *(lines or ["        pass"]), "    return __init__"]
    exec("\n".join(source), namespace)  # noqa: S102 - made above from field names, none `self` or `_record_*`
    init = namespace["_record_make"]()
    owner: list = []  # the class, once made (with slots, another class): where the first comparison puts its methods
    rep = _repr(tuple(f.name for f in found if f.repr))
    equal, hashed = _compared_on_first_use(owner, tuple(f.name for f in found if f.compare))
    qualname = cls.__qualname__
    for function, name in ((init, "__init__"), (rep, "__repr__"), (equal, "__eq__"), (hashed, "__hash__")):
        function.__qualname__, function.__module__ = f"{qualname}.{name}", cls.__module__
    methods = {"__init__": init, "__repr__": rep}
    if eq:
        methods["__eq__"] = equal
        methods["__hash__"] = hashed if frozen else None
    if frozen:
        methods["__setattr__"] = _frozen_setattr
        methods["__delattr__"] = _frozen_delattr
    # __hash__ None beside an __eq__ of the body is Python's doing, not the class's: replaced, as dataclasses does
    # (decided before any method is set: `body` is the class's live namespace)
    own = {name for name in methods if name in body and not (name == "__hash__" and body[name] is None
                                                              and "__eq__" in body)}
    for name, function in methods.items():
        if name not in own:
            setattr(cls, name, function)
    cls.__record_fields__ = tuple(found)
    if "__match_args__" not in body:
        cls.__match_args__ = tuple(names) if not kw_only else ()
    if slots:
        cls = _with_slots(cls, names, frozen)
    owner.append(cls)
    return cls


def _repr(shown: tuple[str, ...]):
    """`__repr__` over the fields named, as a closure (it is never in a hot loop)."""
    def __repr__(self):
        return f"{self.__class__.__qualname__}({', '.join(f'{name}={getattr(self, name)!r}' for name in shown)})"

    return __repr__


def _compared_on_first_use(owner: list, compared: tuple[str, ...]):
    """`__eq__` and `__hash__` that, the first time either is called, compile the class's own (the fields' tuples
    written out, as fast as dataclasses' are: a diff compares thousands of entries), put them on the class
    (`owner[0]`) in their place, and answer with them. A class never compared or hashed in a process (most, in a
    short command) costs no compilation."""

    def compiled(name: str):
        cls = owner[0]
        mine = ", ".join(f"self.{n}" for n in compared) + ("," if len(compared) == 1 else "")
        theirs = ", ".join(f"other.{n}" for n in compared) + ("," if len(compared) == 1 else "")
        source = [
            "def __eq__(self, other):",
            "    if other.__class__ is self.__class__:",
            f"        return ({mine}) == ({theirs})",
            "    return NotImplemented",
            "def __hash__(self):",
            f"    return hash(({mine}))",
        ]
        namespace: dict = {}
        exec("\n".join(source), namespace)  # noqa: S102 - from the field names `_process` checked
        for method in ("__eq__", "__hash__"):
            function = namespace[method]
            function.__qualname__, function.__module__ = f"{cls.__qualname__}.{method}", cls.__module__
            if cls.__dict__.get(method) in (__eq__, __hash__):  # still the stand-in (not None, not the body's own)
                setattr(cls, method, function)
        return namespace[name]

    def __eq__(self, other):
        return compiled("__eq__")(self, other)

    def __hash__(self):
        return compiled("__hash__")(self)

    return __eq__, __hash__


def _frozen_setattr(self, name, value):
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self, name):
    raise FrozenInstanceError(f"cannot delete field {name!r}")


def _getstate(self):
    return [getattr(self, f.name) for f in self.__record_fields__]


def _setstate(self, state):
    for f, value in zip(self.__record_fields__, state):
        object.__setattr__(self, f.name, value)


def _with_slots(cls, names: list[str], frozen: bool):
    """`cls` made again with `__slots__` for its fields (a class's slots are fixed when it is made)."""
    namespace = dict(cls.__dict__)
    for name in names:
        namespace.pop(name, None)  # a default as a class attribute would shadow the slot
    namespace.pop("__dict__", None)
    namespace.pop("__weakref__", None)
    namespace["__slots__"] = tuple(names)
    if frozen:  # pickle by the fields: the default way sets attributes, which a frozen record refuses
        namespace.setdefault("__getstate__", _getstate)
        namespace.setdefault("__setstate__", _setstate)
    made = type(cls)(cls.__name__, cls.__bases__, namespace)
    made.__qualname__ = cls.__qualname__
    return made
