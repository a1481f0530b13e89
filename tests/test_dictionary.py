"""zstd dictionaries for small JSON files (docs/format.md, "Dictionaries"): trained by a commit that stores enough of
them, kept in the store as a DICT record, named by every ZSTD_DICT record; restore byte for byte, verify, gc, repair,
push and clone carry them; a missing or damaged dictionary is a clean error."""

from __future__ import annotations

import json
from pathlib import Path

import blake3
import pytest
from helpers import tree_bytes
from test_restore import _drop_object

from pvc.sample import make_image_project
from pvc.store.local.packs import Codec
from pvc.store.packed import DICT_MIN_FILES
from pvc.store.repository import Repository


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A project with more than DICT_MIN_FILES JSON files (annotations and companions)."""
    return make_image_project(tmp_path_factory.mktemp("dict") / "proj", items=1000, datasets=2, seed=3)


@pytest.fixture
def committed(source, tmp_path, cli) -> Path:
    import shutil

    project = tmp_path / "proj"
    shutil.copytree(source, project)
    assert cli("init", project).code == 0
    result = cli("commit", "-m", "v1", "--json", "-C", project)
    assert result.code == 0, result.err
    return project


def _codecs(project: Path) -> dict[bytes, int]:
    repo = Repository(project)
    try:
        return {oid: loc.codec for idx in repo.store.indexes for oid, loc in idx}
    finally:
        repo.close()


def _json_ids(project: Path) -> dict[str, bytes]:
    """The JSON files of 64 bytes or more (smaller ones are stored as they are), by path."""
    return {rel: blake3.blake3(data).digest() for rel, data in tree_bytes(project).items()
            if rel.endswith(".json") and len(data) >= 64}


def test_a_first_commit_trains_one_dictionary_and_restores_byte_for_byte(committed, cli, tmp_path):
    codecs = _codecs(committed)
    dictionaries = [oid for oid, codec in codecs.items() if codec == Codec.DICT]
    assert len(dictionaries) == 1
    # the store became format 2: a pvc that does not know dictionaries refuses it rather than calling it damaged
    assert json.loads((committed / ".pvc" / "config").read_text())["format"] == 2
    ids = _json_ids(committed)
    assert len(ids) >= DICT_MIN_FILES
    coded = [rel for rel, oid in ids.items() if codecs[oid] == Codec.ZSTD_DICT]
    assert len(coded) > 0.95 * len(ids)  # the blob ids are blake3 of the files, whatever the codec
    assert cli("restore", "1", "--to", tmp_path / "out", "--no-link", "-C", committed).code == 0
    assert tree_bytes(tmp_path / "out") == tree_bytes(committed)
    doc = cli("verify", "--json", "-C", committed).json()
    assert doc["problems"] == [] and doc["orphans"] == 0
    # a second commit writes with the same dictionary and trains no other
    ann = next(p for p in sorted((committed / "train" / "ann").iterdir()))
    extra = committed / "extra.json"
    extra.write_bytes(ann.read_bytes().replace(b'"', b'"x', 1) + b"\n")
    assert cli("commit", "-m", "v2", "-C", committed).code == 0
    after = _codecs(committed)
    assert [o for o, c in after.items() if c == Codec.DICT] == dictionaries
    assert after[blake3.blake3(extra.read_bytes()).digest()] == Codec.ZSTD_DICT


def test_a_small_project_has_no_dictionary_and_stays_format_1(initialised, cli):
    assert cli("commit", "-m", "v1", "-C", initialised).code == 0
    assert Codec.DICT not in _codecs(initialised).values() and Codec.ZSTD_DICT not in _codecs(initialised).values()
    config = initialised / ".pvc" / "config"
    assert json.loads(config.read_text())["format"] == 1
    config.write_text(json.dumps(dict(json.loads(config.read_text()), format=3)))
    result = cli("log", "-C", initialised)
    assert result.code == 2 and "unsupported store format 3" in result.err and result.err.count("\n") == 1


def test_gc_keeps_the_dictionary_and_repair_index_keeps_its_records(committed, cli, tmp_path):
    assert cli("gc", "--grace", "0", "-C", committed).code == 0
    assert Codec.DICT in _codecs(committed).values()
    assert cli("repair", "index", "-C", committed).code == 0
    assert Codec.DICT in _codecs(committed).values() and Codec.ZSTD_DICT in _codecs(committed).values()
    assert cli("verify", "-C", committed).code == 0
    # every version deleted: the dictionary stays (gc keeps dictionaries), the rest goes
    assert cli("delete", "1", "--yes", "-C", committed).code == 0
    assert cli("gc", "--grace", "0", "-C", committed).code == 0
    assert set(_codecs(committed).values()) == {Codec.DICT}


def _dictionary(project: Path) -> bytes:
    [did] = [oid for oid, codec in _codecs(project).items() if codec == Codec.DICT]
    return did


def _damage(project: Path, oid: bytes) -> None:
    repo = Repository(project)
    loc = repo.store.locate(oid)
    repo.close()
    pack = project / ".pvc" / "packs" / f"{loc.pack.hex()}.pack"
    data = bytearray(pack.read_bytes())
    data[loc.offset + 100] ^= 0xFF
    pack.write_bytes(bytes(data))


@pytest.mark.parametrize("harm", ["missing", "damaged"])
def test_a_lost_dictionary_is_a_clean_error(committed, cli, tmp_path, harm):
    did = _dictionary(committed)
    (_drop_object if harm == "missing" else _damage)(committed, did)
    result = cli("restore", "1", "--to", tmp_path / "out", "-C", committed)
    assert result.code == 2 and result.err.count("\n") == 1 and "corrupt object(s)" in result.err
    assert "Traceback" not in result.err and not (tmp_path / "out").exists()
    ann = next(rel for rel in sorted(tree_bytes(committed)) if "/ann/" in rel)
    cat = cli("cat", "1", ann, "-C", committed)
    assert cat.code == 2 and "dictionary" in cat.err and cat.err.count("\n") == 1
    # --skip-missing: the items whose annotation (or companion) needs the dictionary are left out, the rest is there
    doc = cli("restore", "1", "--to", tmp_path / "out2", "--skip-missing", "--json", "-C", committed).json()
    restored, original = tree_bytes(tmp_path / "out2"), tree_bytes(committed)
    assert doc["skipped"] and all(restored[p] == original[p] for p in restored)
    assert not any(p.endswith(".json") and "/ann/" in p for p in restored)
    assert "meta.json" in restored or _codecs(committed).get(blake3.blake3(original["meta.json"]).digest()) == Codec.ZSTD_DICT
    report = cli("verify", "--json", "-C", committed)
    assert report.code == 2 and any("dictionary" in p["what"] for p in report.json()["problems"])


def test_push_then_clone_carries_the_dictionary(committed, cli, tmp_path):
    remote = tmp_path / "remote"
    assert cli("remote", "add", "origin", remote, "-C", committed).code == 0
    assert cli("push", "-C", committed).code == 0
    clone = tmp_path / "clone"
    result = cli("clone", f"file://{remote}", clone)
    assert result.code == 0, result.err
    assert tree_bytes(clone) == tree_bytes(committed)
    assert _dictionary(clone) == _dictionary(committed)
    assert cli("verify", "-C", clone).code == 0
    assert json.loads((clone / ".pvc" / "config").read_text())["format"] == 2
    # straight from the remote (ranged reads), no local store
    assert cli("restore", "1", "--to", tmp_path / "direct", "--remote", "origin", "-C", committed).code == 0
    assert tree_bytes(tmp_path / "direct") == tree_bytes(committed)


def test_jpeg_files_share_a_dictionary_of_their_own(tmp_path, cli):
    """JPEG files do not compress alone, but they start with the same tables: a second kind of dictionary."""
    import random

    from PIL import Image

    project = tmp_path / "photos"
    rng = random.Random(1)
    for i in range(DICT_MIN_FILES + 20):
        folder = project / f"set{i % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        img = Image.new("RGB", (48, 40), (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
        img.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(48 * 40)])
        img.save(folder / f"p{i:05d}.jpg", quality=90)
    assert cli("init", project).code == 0
    assert cli("commit", "-m", "v1", "-C", project).code == 0
    codecs = _codecs(project)
    [did] = [oid for oid, codec in codecs.items() if codec == Codec.DICT]
    import zstandard

    repo = Repository(project)
    assert zstandard.ZstdCompressionDict(repo.store.get(did)).dict_id() == 0x70766302  # the JPEG kind
    repo.close()
    files = tree_bytes(project)
    coded = [rel for rel, data in files.items() if codecs[blake3.blake3(data).digest()] == Codec.ZSTD_DICT]
    assert len(coded) > 0.95 * len(files)
    assert cli("restore", "1", "--to", tmp_path / "out", "-C", project).code == 0
    assert tree_bytes(tmp_path / "out") == files
    assert cli("verify", "-C", project).code == 0
