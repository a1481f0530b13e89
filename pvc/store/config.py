"""The store's settings, `.pvc/config`: one table of the known keys, each with its type, range and default.

The table is the whole definition: reading the file, `pvc config` (get, set, unset, list) and `pvc verify` all
go through it, so a key or a section is added in one place. A *setting* is one value at the top level
(`chunk_threshold`); a *section* is a map of names to objects of known fields (`remotes.<name>.url`). A key the
table does not know, a value of the wrong type or out of range, is a problem naming the key, with the nearest
known key suggested: a typo never silently falls back to the default.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from pvc.errors import UsageError
from pvc.record import record
from pvc.store.formats import READ_STORE_FORMATS, STORE_FORMAT

__all__ = ["Setting", "Section", "SETTINGS", "SECTIONS", "defaults", "problems", "effective", "lookup", "parse_value",
           "with_value", "without_key", "KEY_PATTERN"]

Check = Callable[[Any], "str | None"]  # None when the value is acceptable, else what is wrong with it


def _integer(low: int, high: int) -> Check:
    def check(value: Any) -> str | None:
        if not isinstance(value, int) or isinstance(value, bool):
            return f"must be an integer, not {_json(value)}"
        if not low <= value <= high:
            return f"must be between {low} and {high}, not {value}"
        return None
    return check


def _format(value: Any) -> str | None:
    return None if value in READ_STORE_FORMATS else (f"unsupported store format {_json(value)} (this pvc reads "
                                                     f"{' and '.join(map(str, READ_STORE_FORMATS))})")


def _dicom_tags(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v.isidentifier() for v in value):
        return f"must be a list of DICOM keywords (e.g. [\"Modality\", \"Rows\"]), not {_json(value)}"
    if len(set(value)) != len(value):
        return "lists a keyword twice"
    return None


def _store_id(value: Any) -> str | None:
    from pvc.store.links import is_store_id

    return None if value is None or is_store_id(value) else f"must be 32 lowercase hex digits, not {_json(value)}"


def _text(value: Any) -> str | None:
    return None if isinstance(value, str) and value else f"must be a non-empty string, not {_json(value)}"


def _remote_url(value: Any) -> str | None:
    from pvc.store.remote.url import parse_remote  # the one definition of what a remote address may be

    if not isinstance(value, str) or not value:
        return f"must be a non-empty string, not {_json(value)}"
    try:
        parse_remote(value)
    except UsageError as exc:
        return str(exc)
    return None


def _number(low: float, high: float) -> Check:
    def check(value: Any) -> str | None:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return f"must be a number, not {_json(value)}"
        if not low <= value <= high:
            return f"must be between {low:g} and {high:g}, not {value}"
        return None
    return check


def _text_or_null(value: Any) -> str | None:
    return None if value is None or isinstance(value, str) else f"must be a string or null, not {_json(value)}"


_UNITS = {"": 1, "k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gib": 1 << 30}
_SIZE = re.compile(r"\s*(\d+)\s*([a-z]*)\s*", re.IGNORECASE)


def _parse_size(text: str) -> Any:
    """`8388608`, `8MiB`, `512k`: bytes (K, M, G are binary units); anything else is passed on as it is, for
    the check to say what is wrong with it."""
    match = _SIZE.fullmatch(text)
    if match and match.group(2).lower() in _UNITS:
        return int(match.group(1)) * _UNITS[match.group(2).lower()]
    return text


def _parse_list(text: str) -> Any:
    """A JSON list, or names separated by commas."""
    if text.lstrip().startswith("["):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return [part.strip() for part in text.split(",") if part.strip()]


@record(frozen=True)
class Setting:
    """One known value: what it means, its default, how to check it and how to read it from a command line."""

    help: str
    default: Any
    check: Check
    parse: Callable[[str], Any] = str
    settable: bool = True  # False: written by `pvc init` only
    required: bool = False  # in a section's object: the object is incomplete without it


@record(frozen=True)
class Section:
    """A map of names to objects whose fields are settings (e.g. `remotes`: name -> url, endpoint, region)."""

    help: str
    fields: dict[str, Setting]


SETTINGS: dict[str, Setting] = {
    "format": Setting("store format, written by `pvc init`", STORE_FORMAT, _format, int, settable=False),
    "id": Setting("this store's identity (32 hex), written by `pvc init`; how linked projects name it", None,
                  _store_id, settable=False),
    "chunk_threshold": Setting("files of this many bytes or more are stored as content-defined chunks",
                               8 << 20, _integer(256 << 10, 1 << 40), _parse_size),
    "pack_size": Setting("a pack file is closed once it holds this many bytes", 16 << 20,
                         _integer(64 << 10, 4 << 30), _parse_size),
    "dicom_tags": Setting("DICOM keywords copied into a DICOM volume's metadata (null: pvc's list)", None,
                          _dicom_tags, _parse_list),
}
SECTIONS: dict[str, Section] = {
    "remotes": Section("object stores to push to and pull from, by name", {
        "url": Setting("where the remote store is: s3://bucket/prefix, file:///path", None, _remote_url, required=True),
        "endpoint": Setting("the object store's endpoint URL (null: the provider's default)", None, _text_or_null),
        "region": Setting("the object store's region (null: the provider's default)", None, _text_or_null),
        "timeout": Setting("seconds one request may take, its retries included", 60.0, _number(1, 3600), float),
        "retries": Setting("retries of a request that failed on a 5xx, a timeout or a reset", 5, _integer(0, 20), int),
    }),
}
KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]+")  # a section entry's name: usable as one part of a dotted key


def defaults() -> dict[str, Any]:
    """What `pvc init` writes: the settings a store needs to say explicitly."""
    return {k: SETTINGS[k].default for k in ("format", "chunk_threshold", "pack_size")}


def effective(doc: dict) -> dict[str, Any]:
    """Every setting and section, from `doc` where it holds an acceptable value, else the default."""
    values = {k: (doc[k] if k in doc and s.check(doc[k]) is None else s.default) for k, s in SETTINGS.items()}
    for name, section in SECTIONS.items():
        entries = doc.get(name)
        values[name] = entries if isinstance(entries, dict) and not _section_problems(name, section, entries) else {}
    return values


def problems(doc: Any) -> list[tuple[str, str]]:
    """(key, what is wrong) for every problem of a config document; [] when it is sound."""
    if not isinstance(doc, dict):
        return [("", f"must be a JSON object, not {_json(doc)}")]
    found = []
    for key, value in doc.items():
        if key in SETTINGS:
            why = SETTINGS[key].check(value)
            found += [(key, why)] if why else []
        elif key in SECTIONS:
            found += _section_problems(key, SECTIONS[key], value)
        else:
            found.append((key, _unknown(key, [*SETTINGS, *SECTIONS])))
    return found


def _section_problems(name: str, section: Section, entries: Any) -> list[tuple[str, str]]:
    if not isinstance(entries, dict):
        return [(name, f"must be an object of {name} by name, not {_json(entries)}")]
    found = []
    for entry, fields in entries.items():
        where = f"{name}.{entry}"
        if not KEY_PATTERN.fullmatch(entry):
            found.append((where, "a name may hold only letters, digits, '_' and '-'"))
        elif not isinstance(fields, dict):
            found.append((where, f"must be an object, not {_json(fields)}"))
        else:
            found += _fields_problems(where, section, fields)
    return found


def _fields_problems(where: str, section: Section, fields: dict) -> list[tuple[str, str]]:
    found = []
    for field, value in fields.items():
        setting = section.fields.get(field)
        why = setting.check(value) if setting else _unknown(field, list(section.fields))
        found += [(f"{where}.{field}", why)] if why else []
    found += [(f"{where}.{f}", "is required") for f, s in section.fields.items() if s.required and f not in fields]
    return found


def _unknown(key: str, known: list[str]) -> str:
    import difflib  # only to suggest a key for a wrong one

    close = difflib.get_close_matches(key, known, n=1)
    return "unknown key" + (f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(known)})")


def lookup(doc: dict, key: str) -> tuple[Any, Any, bool]:
    """(value, default, whether the file sets it) of a dotted key: `chunk_threshold`, `remotes`,
    `remotes.origin`, `remotes.origin.url`; UsageError for a key the table does not know."""
    parts = key.split(".")
    values = effective(doc)
    if parts[0] in SETTINGS and len(parts) == 1:
        return values[key], SETTINGS[key].default, key in doc
    section = SECTIONS.get(parts[0])
    if section is None or len(parts) > 3 or (len(parts) == 3 and parts[2] not in section.fields):
        raise UsageError(f"{key}: {_unknown(key, _known_keys(doc))}")
    node: Any = values[parts[0]]
    present = parts[0] in doc
    for part in parts[1:]:
        present = present and isinstance(node, dict) and part in node
        node = node.get(part) if isinstance(node, dict) else None
    default = {} if len(parts) == 1 else None if len(parts) == 2 else section.fields[parts[2]].default
    return (node if present or len(parts) == 1 else default), default, present


def _known_keys(doc: dict) -> list[str]:
    keys = [*SETTINGS, *SECTIONS]
    for name, section in SECTIONS.items():
        entries = doc.get(name) if isinstance(doc.get(name), dict) else {}
        keys += [f"{name}.<name>.{f}" for f in section.fields] + [f"{name}.{e}.{f}" for e in entries for f in section.fields]
    return keys


def parse_value(key: str, text: str) -> Any:
    """The value a command-line `text` stands for at `key` (sizes like `16MiB` for byte counts)."""
    setting = _setting_of(key)
    return setting.parse(text) if setting else text


def _setting_of(key: str) -> Setting | None:
    parts = key.split(".")
    if len(parts) == 1:
        return SETTINGS.get(key)
    section = SECTIONS.get(parts[0])
    return section.fields.get(parts[-1]) if section and len(parts) == 3 else None


def with_value(doc: dict, key: str, value: Any) -> dict:
    """`doc` with `key` set to `value` (a section entry is created as needed); UsageError for a key that
    cannot be set or a value that makes a new problem."""
    parts = key.split(".")
    setting = _setting_of(key)
    if setting is None:
        lookup(doc, key)  # raises for an unknown key
        raise UsageError(f"{key}: set one field at a time, e.g. {parts[0]}.<name>.{next(iter(SECTIONS[parts[0]].fields))}")
    if not setting.settable:
        raise UsageError(f"{key}: cannot be set ({setting.help})")
    new = json.loads(json.dumps(doc))
    if len(parts) == 1:
        new[key] = value
    else:
        section = new.setdefault(parts[0], {})
        if not isinstance(section, dict):
            raise UsageError(f"{parts[0]}: is not an object in the file; unset it first")
        entry = section.setdefault(parts[1], {})
        if not isinstance(entry, dict):
            raise UsageError(f"{parts[0]}.{parts[1]}: is not an object in the file; unset it first")
        entry[parts[2]] = value
    _refuse_new_problems(doc, new)
    return new


def without_key(doc: dict, key: str) -> dict:
    """`doc` without `key` (a top-level key, a section, a section entry or one of its fields), so that it
    takes its default; any key the file holds can be removed, a misspelt one too."""
    parts = key.split(".")
    new = json.loads(json.dumps(doc))
    node = new
    for part in parts[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    if not isinstance(node, dict) or parts[-1] not in node:
        lookup(doc, key)  # an unknown key that the file does not hold either: say so
        raise UsageError(f"{key}: not set in the config file (it has its default)")
    if key == "format":
        raise UsageError("format: cannot be unset (it is the store's format)")
    del node[parts[-1]]
    _refuse_new_problems(doc, new)
    return new


def _refuse_new_problems(old: dict, new: dict) -> None:
    """Changes may fix problems one at a time, never add one."""
    before = set(problems(old))
    for key, why in problems(new):
        if (key, why) not in before:
            raise UsageError(f"{key}: {why}")


def _json(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."
