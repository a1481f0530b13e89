"""The refs file: format 2 round trips, tags and unknown fields survive rewrites, format 1 is read and upgraded,
a newer format is refused with a message that says so; the file is written a version a line, as the canonical JSON
its checksum is of."""

from __future__ import annotations

import json

import blake3
import pytest

from pvc.record import replace

from pvc.errors import CorruptObject
from pvc.store.refs import REFS_FORMAT, RefsDoc, VersionRecord, _checksum, _checksum_v2, read_refs, record_id, write_refs


def _record(n: int, **extra) -> VersionRecord:
    r = VersionRecord(n, f"{n:02x}" * 32, f"t{n}", {"k": [n]}, "2026-01-01T00:00:00+00:00", "me", n - 1 or None,
                      {"items": n}, None, **extra)
    return replace(r, id=record_id(r))


def _rewrite(path, mutate) -> None:
    """Change the file as a newer pvc would, keeping its checksum right."""
    doc = json.loads(path.read_text())
    mutate(doc)
    body = {k: v for k, v in doc.items() if k not in ("format", "checksum")}
    doc["checksum"] = _checksum_v2(body)
    path.write_text(json.dumps(doc))


def test_round_trip_with_tags_and_backup(tmp_path):
    path = tmp_path / "versions"
    write_refs(path, RefsDoc((_record(1),), {"base": 1}))
    write_refs(path, RefsDoc((_record(1), _record(2, edited_at="2026-02-01T00:00:00+00:00")), {"base": 1}))
    refs = read_refs(path)
    assert [r.number for r in refs.versions] == [1, 2] and refs.tags == {"base": 1}
    assert refs.versions[1].edited_at == "2026-02-01T00:00:00+00:00" and refs.versions[1] == _record(2, edited_at="2026-02-01T00:00:00+00:00")
    assert [r.number for r in read_refs(path.with_name("versions.bak")).versions] == [1]
    assert json.loads(path.read_text())["format"] == REFS_FORMAT == 2


def test_unknown_fields_of_a_newer_pvc_survive_a_rewrite(tmp_path):
    path = tmp_path / "versions"
    write_refs(path, RefsDoc((_record(1),)))

    def newer(doc):
        doc["versions"][0]["reviewed_by"] = {"name": "ann", "at": [1, 2.5]}
        doc["branches"] = {"main": 1}

    _rewrite(path, newer)
    refs = read_refs(path)
    assert refs.versions[0].extra == {"reviewed_by": {"name": "ann", "at": [1, 2.5]}} and refs.extra == {"branches": {"main": 1}}
    write_refs(path, replace(refs, versions=(*refs.versions, _record(2))))
    doc = json.loads(path.read_text())
    assert doc["versions"][0]["reviewed_by"] == {"name": "ann", "at": [1, 2.5]} and doc["branches"] == {"main": 1}
    assert read_refs(path).versions[0].extra == refs.versions[0].extra


def test_a_damaged_checksum_or_numbering_is_refused(tmp_path):
    path = tmp_path / "versions"
    write_refs(path, RefsDoc((_record(1),)))
    path.write_text(path.read_text().replace('"t1"', '"t9"'))
    with pytest.raises(CorruptObject, match=r"versions\.bak"):
        read_refs(path)
    write_refs(path, RefsDoc((_record(2),)))
    with pytest.raises(CorruptObject, match=r"not 1\.\.1"):
        read_refs(path)


def test_a_newer_refs_format_is_refused_as_such(tmp_path):
    path = tmp_path / "versions"
    write_refs(path, RefsDoc((_record(1),)))
    doc = json.loads(path.read_text())
    doc["format"] = 3
    path.write_text(json.dumps(doc))
    with pytest.raises(CorruptObject, match="newer pvc"):
        read_refs(path)


def test_format_1_is_read_and_upgraded_on_the_next_write(tmp_path):
    path = tmp_path / "versions"
    old = [{"number": 1, "manifest": "ab" * 32, "title": "t", "description": None, "created_at": "2026-01-01T00:00:00+00:00",
            "author": "me", "parent": None, "stats": {}, "origin": None}]
    path.write_text(json.dumps({"format": 1, "checksum": _checksum(old), "versions": old}))
    refs = read_refs(path)
    assert refs.versions[0].id == record_id(refs.versions[0]) and len(refs.versions[0].id) == 32 and refs.tags == {}
    write_refs(path, refs)
    assert json.loads(path.read_text())["format"] == 2 and read_refs(path) == refs
    with_extra = [dict(old[0], surprise=1)]
    path.write_text(json.dumps({"format": 1, "checksum": _checksum(with_extra), "versions": with_extra}))
    with pytest.raises(CorruptObject):  # format 1 never had room for more fields
        read_refs(path)


def _canonical(value) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def test_refs_are_written_a_version_a_line_as_the_checksums_canonical_json(tmp_path):
    """The file's bytes without its newlines are the canonical JSON the checksum is of (so a reader checks it by one
    hash); a copy laid out otherwise (indented, as pvc wrote it before, or on one line) reads the same, checked the
    long way; an edit with the checksum left as it was is refused either way."""
    path = tmp_path / "versions"
    records = [VersionRecord(i, f"{i:02x}" * 32, f"tïtle {i}\nsecond line", {"k": [i, 1.5, None]} if i % 2 else None,
                             "2026-01-01T00:00:00+00:00", "me", i - 1 or None, {"items": i, "classes": {"car": i}},
                             id=f"{i:032x}", extra={"newer_field": {"x": i}} if i == 2 else {}) for i in range(1, 5)]
    refs = RefsDoc(tuple(records), {"release": 3, "b": 1}, {"newer_top": [1, 2]})
    write_refs(path, refs)
    raw = path.read_bytes()
    lines = raw.decode().split("\n")
    assert len(lines) == len(records) + 5 and lines[-3:] == ["]", "}", ""]
    doc = json.loads(raw)
    body = {k: v for k, v in doc.items() if k not in ("format", "checksum")}
    assert doc["format"] == 2 and body["newer_top"] == [1, 2] and body["tags"] == {"b": 1, "release": 3}
    assert raw.startswith(b'{"format":2,"checksum":"') and doc["checksum"] == blake3.blake3(_canonical(body)).hexdigest()
    assert b"{" + raw[raw.index(b"\n") + 1:].replace(b"\n", b"") == _canonical(body)
    assert all(json.loads(line.rstrip(",")) == r.to_json() for line, r in zip(lines[2:-3], records, strict=True))
    assert read_refs(path) == refs
    for layout in ({"indent": 1}, {"separators": (",", ":")}, {}):
        path.write_text(json.dumps(doc, ensure_ascii=False, **layout))
        assert read_refs(path) == refs
    for inside in (b'"title":"t\xc3\xaftle 3', b'"origin":null'):  # a newline inside a string or a keyword: the
        at = raw.index(inside) + len(inside) - 2  # bytes without newlines still hash right, but the file is no JSON
        path.write_bytes(raw[:at] + b"\n" + raw[at:])
        with pytest.raises(CorruptObject, match="versions.bak"):
            read_refs(path)
    edited = raw.replace(b'"title":"t\xc3\xaftle 3', b'"title":"t\xc3\xaftle 9')
    assert edited != raw
    for data in (edited, edited.replace(b"\n", b"")):
        path.write_bytes(data)
        with pytest.raises(CorruptObject, match="versions.bak"):
            read_refs(path)
