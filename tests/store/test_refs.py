"""The refs file: format 2 round trips, tags and unknown fields survive rewrites, format 1 is read and upgraded,
a newer format is refused with a message that says so."""

from __future__ import annotations

import json
from pvc.record import replace

import pytest

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
