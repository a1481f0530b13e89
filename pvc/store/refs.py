"""The refs file `.pvc/versions`: version number -> manifest id, with each version's record, and the tags.

It is JSON (readable with any tool) carrying a blake3 checksum of its content, rewritten atomically under the
repository lock; the previous content is kept in `versions.bak` first, so a damaged file can always be replaced
by the last good one.

Refs format 2 (format 1 is read too, and written as 2 on the next rewrite). Fields a newer pvc adds, in a record
or at the top level, are kept as they are through every rewrite, so two pvc versions can share a store without
one silently dropping what the other wrote; a file of a format this pvc does not know is refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import blake3

from pvc.errors import CorruptObject
from pvc.record import field, record, replace
from pvc.store.atomic import atomic_write
from pvc.store.model import check_stats

__all__ = ["REFS_FORMAT", "VersionRecord", "RefsDoc", "Refs", "read_versions", "write_versions", "read_refs",
           "write_refs", "record_id"]

REFS_FORMAT = 2
_READABLE = (1, 2)


@record(frozen=True)
class VersionRecord:
    """One version: what the user said about it and which manifest it points at."""

    number: int
    manifest: str
    title: str
    description: str | dict | None
    created_at: str
    author: str
    parent: int | None
    stats: dict[str, Any] = field(default_factory=dict)
    origin: dict[str, Any] | None = None
    id: str = ""  # stable identity across stores (remotes): set when the record is first written
    edited_at: str | None = None
    deleted_at: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # fields of a newer pvc, kept as they are

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    def to_json(self) -> dict[str, Any]:
        doc = {k: getattr(self, k) for k in _KNOWN}
        for optional in ("edited_at", "deleted_at"):
            if doc[optional] is None:
                del doc[optional]
        return self.extra | doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> VersionRecord:
        if doc.keys() <= _KNOWN_SET:  # what this pvc writes: no field of a newer one
            record = cls(**doc)
        else:
            record = cls(**{k: doc[k] for k in _KNOWN if k in doc}, extra={k: v for k, v in doc.items() if k not in _KNOWN})
        _check_record(record)
        return record if record.id else replace(record, id=record_id(record))


_KNOWN = ("number", "manifest", "title", "description", "created_at", "author", "parent", "stats", "origin", "id",
          "edited_at", "deleted_at")
_KNOWN_SET = frozenset(_KNOWN)
_REQUIRED = ("number", "manifest", "title", "description", "created_at", "author", "parent")


def record_id(record: VersionRecord) -> str:
    """The identity a record gets when it is first written (and a format-1 record when it is first read): the
    blake3 of what it said then, so copies of one store agree on it without talking to each other."""
    doc = {k: getattr(record, k) for k in _REQUIRED}
    return blake3.blake3(_canonical(doc).encode()).hexdigest()[:32]


def _check_record(r: VersionRecord) -> None:
    if not (isinstance(r.number, int) and isinstance(r.manifest, str) and len(r.manifest) == 64
            and isinstance(r.title, str) and isinstance(r.created_at, str) and isinstance(r.author, str)
            and (r.parent is None or isinstance(r.parent, int)) and isinstance(r.stats, dict)
            and (r.origin is None or isinstance(r.origin, dict)) and isinstance(r.id, str)
            and (r.description is None or isinstance(r.description, (str, dict)))):
        raise TypeError("malformed version record")
    try:
        check_stats(r.stats, "version record")
    except CorruptObject:
        raise TypeError("malformed version record") from None


@record(frozen=True)
class RefsDoc:
    """Everything the refs file says: the version records (oldest first) and the tags."""

    versions: tuple[VersionRecord, ...] = ()
    tags: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # top-level fields of a newer pvc, kept as they are

    def to_json(self) -> dict[str, Any]:
        body = self.extra | {"versions": [r.to_json() for r in self.versions], "tags": dict(sorted(self.tags.items()))}
        return {"format": REFS_FORMAT, "checksum": _checksum_v2(body)} | body


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _checksum(versions: list[dict]) -> str:
    """Format 1: blake3 of the canonical JSON of the version list."""
    return blake3.blake3(_canonical(versions).encode()).hexdigest()


def _checksum_v2(body: dict) -> str:
    """Format 2: blake3 of the canonical JSON of everything but `format` and `checksum`."""
    return blake3.blake3(_canonical(body).encode()).hexdigest()


# How pvc writes format 2 (see `_text`): this prefix, the checksum, `",` and a newline, then the body's canonical JSON
# from its first key on, with a newline after `[` of the version list, after each record, and before the last `}`.
_PREFIX = b'{"format":%d,"checksum":"' % REFS_FORMAT
_AFTER = len(_PREFIX) + 64


def _written_body(raw: bytes) -> dict | None:
    """The body of a refs file laid out as pvc writes it, when its bytes without their newlines are the canonical JSON
    the checksum was made of: the checksum is checked by one hash of the file, not by serialising it again. The file
    itself must parse: then every newline in it lies between two tokens (JSON has none inside a string, a number or
    a keyword), and it says what its bytes without them say. None for any other file (the caller checks it the
    long way)."""
    if not raw.startswith(_PREFIX) or raw[_AFTER:_AFTER + 3] != b'",\n':
        return None
    checksum = raw[len(_PREFIX):_AFTER]
    if blake3.blake3(b"{" + raw[_AFTER + 3:].replace(b"\n", b"")).hexdigest().encode() != checksum:
        return None
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(doc, dict) or doc.get("format") != REFS_FORMAT or doc.get("checksum") != checksum.decode():
        return None
    return {k: v for k, v in doc.items() if k not in ("format", "checksum")}


def read_refs(path: Path) -> RefsDoc:
    """The refs; a missing file means no versions yet."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return RefsDoc()
    hint = f"{path} is damaged; its previous copy is {path.name}.bak (see docs/format.md, 'Recovering refs')"
    body = _written_body(raw)  # None: not laid out as pvc writes it, or not its checksum; checked the long way
    if body is None:
        try:
            doc = json.loads(raw)
            fmt = doc.get("format")
        except (ValueError, AttributeError):
            raise CorruptObject(hint) from None
        if isinstance(fmt, int) and fmt > REFS_FORMAT:
            raise CorruptObject(f"{path}: refs format {fmt} was written by a newer pvc, which this one cannot read "
                                f"(it reads formats {', '.join(map(str, _READABLE))}): upgrade pvc; if no newer pvc "
                                f"wrote it, the file is damaged and its previous copy is {path.name}.bak")
    try:
        refs = _records(body) if body is not None else _parse(doc)
    except (ValueError, KeyError, TypeError, AttributeError):
        refs = None
    if refs is None:
        raise CorruptObject(hint)
    if [r.number for r in refs.versions] != list(range(1, len(refs.versions) + 1)):
        raise CorruptObject(f"{hint} (version numbers are not 1..{len(refs.versions)})")
    return refs


def _parse(doc: dict) -> RefsDoc | None:
    fmt = doc.get("format")
    if fmt == 1:
        versions = doc["versions"]
        if doc.get("checksum") != _checksum(versions):
            return None
        for v in versions:
            if set(v) - set(_KNOWN[:9]) or not set(_REQUIRED) <= set(v):
                return None
        return RefsDoc(tuple(VersionRecord.from_json(v) for v in versions))
    if fmt != 2:
        return None
    body = {k: v for k, v in doc.items() if k not in ("format", "checksum")}
    if doc.get("checksum") != _checksum_v2(body):
        return None
    return _records(body)


def _records(body: dict) -> RefsDoc | None:
    """The refs a format-2 body (checksum checked) holds; None if it is malformed."""
    body = dict(body)
    versions = body.pop("versions")
    tags = body.pop("tags", {})
    if not isinstance(tags, dict) or not all(isinstance(k, str) and isinstance(n, int) for k, n in tags.items()):
        return None
    if not all(set(_REQUIRED) <= set(v) for v in versions):
        return None
    return RefsDoc(tuple(VersionRecord.from_json(v) for v in versions), dict(tags), body)


def write_refs(path: Path, refs: RefsDoc) -> None:
    """Replace the refs file (caller holds the lock); the old content goes to `versions.bak` first."""
    if path.exists():
        atomic_write(path.with_name(path.name + ".bak"), path.read_bytes())
    atomic_write(path, _text(refs))


def _text(refs: RefsDoc) -> bytes:
    """The refs file's bytes: `{"format":2,"checksum":"…",` and the body's canonical JSON (the checksum's input) with
    a newline after the opening line, after `"versions":[`, after each record and before the closing `]` and `}`:
    a version a line, and a reader checks the checksum with one hash of the file (`_written_body`)."""
    body = refs.extra | {"versions": [r.to_json() for r in refs.versions], "tags": dict(sorted(refs.tags.items()))}
    members = []
    for key in sorted(body):
        if key == "versions":
            value = "[\n" + "".join(_canonical(v) + ",\n" for v in body[key])[:-2] + "\n]"
        else:
            value = _canonical(body[key])
        members.append(f"{_canonical(key)}:{value}")
    text = f'{{"format":{REFS_FORMAT},"checksum":"{_checksum_v2(body)}",\n' + ",".join(members) + "\n}\n"
    return text.encode()


def read_versions(path: Path) -> list[VersionRecord]:
    """All versions, oldest first (deleted ones included: their numbers stay taken)."""
    return list(read_refs(path).versions)


def write_versions(path: Path, records: list[VersionRecord]) -> None:
    """Replace the version list, keeping the tags and whatever else the file holds."""
    try:
        current = read_refs(path)
    except CorruptObject:
        current = RefsDoc()
    write_refs(path, replace(current, versions=tuple(records)))


class Refs:
    """The refs file of one store and its backup."""

    def __init__(self, store_dir: Path) -> None:
        self.path = store_dir / "versions"
        self.backup = store_dir / "versions.bak"

    def read(self) -> RefsDoc:
        return read_refs(self.path)

    def write(self, refs: RefsDoc) -> None:
        write_refs(self.path, refs)

    def read_backup(self) -> RefsDoc:
        return read_refs(self.backup)

    def has_backup(self) -> bool:
        return self.backup.exists()

    def put_backup_back(self, aside: Path) -> bytes:
        """Keep the (damaged) refs file as `aside`, put the backup in its place; return the damaged bytes."""
        damaged = self.path.read_bytes()
        atomic_write(aside, damaged)
        atomic_write(self.path, self.backup.read_bytes())
        return damaged
