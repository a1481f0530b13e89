"""Commit and restore round trips of real image projects through the CLI."""

from __future__ import annotations

import json
import os
import time

from helpers import tree_bytes
from PIL import Image, ImageFile

import pvc
import pvc.core.capture as capture_module
import pvc.core.capture.walk as walk_module
from pvc.project.image import image_meta
from pvc.sample import mutate_image_project
from pvc.store.statcache import StatCache, StatKey


def test_round_trip_is_byte_exact(initialised, cli, tmp_path):
    first = cli("commit", "-m", "one", "--json", cwd=initialised)
    assert first.code == 0, first.err
    doc = first.json()
    assert doc["version"] == 1 and doc["created"] is True and len(doc["manifest"]) == 64
    result = cli("restore", "1", "--to", tmp_path / "out", "--json")
    assert result.code == 0, result.err
    restored = result.json()
    assert restored["skipped"] == [] and restored["version"] == 1
    original = tree_bytes(initialised)
    assert tree_bytes(tmp_path / "out") == original
    assert restored["files"] == len(original)
    assert restored["bytes"] == sum(len(b) for b in original.values())


def test_sample_covers_what_the_round_trip_must_keep(initialised):
    files = tree_bytes(initialised)
    names = list(files)
    assert any("/datasets/" in n for n in names), "nested dataset"
    assert any(not n.isascii() for n in names) and any(" " in n for n in names), "tricky names"
    modes = set()
    for n in names:
        if "/img/" in n:
            with Image.open(initialised / n) as im:
                modes.add(im.mode)
    assert {"RGB", "L", "RGBA"} <= modes
    geometries = set()
    for n in names:
        if "/ann/" in n:
            geometries |= {o["geometryType"] for o in json.loads(files[n])["objects"]}
    assert {"rectangle", "polygon", "bitmap", "line", "point", "graph"} <= geometries


def test_unchanged_project_returns_existing_version_without_rehashing(initialised, cli):
    assert cli("commit", "-m", "one", cwd=initialised).code == 0
    again = cli("commit", "-m", "two", "--json")
    assert again.code == 0
    doc = again.json()
    assert doc["created"] is False and doc["version"] == 1
    assert doc["files_hashed"] == 0
    assert len(cli("log", "--json").json()) == 1


def test_stat_cache_is_only_an_optimisation(initialised, cli):
    first = cli("commit", "--json", cwd=initialised).json()
    (initialised / ".pvc" / "index").unlink()
    again = cli("commit", "--json").json()
    assert again["created"] is False and again["manifest"] == first["manifest"]
    assert again["files_hashed"] == len(tree_bytes(initialised))


def test_mtime_only_touch_is_not_a_change(initialised, cli):
    cli("commit", cwd=initialised)
    ann = next(initialised.glob("train/ann/*.json"))
    os.utime(ann, ns=(time.time_ns(), time.time_ns() + 5_000_000_000))
    doc = cli("commit", "--json").json()
    assert doc["created"] is False and doc["files_hashed"] == 1


def test_same_size_edit_with_restored_mtime_is_a_change(initialised, cli):
    cli("commit", cwd=initialised)
    readme = initialised / "README.md"
    st = readme.stat()
    data = readme.read_bytes()
    readme.write_bytes(bytes([data[0] ^ 0x20]) + data[1:])  # same size, different bytes
    os.utime(readme, ns=(st.st_atime_ns, st.st_mtime_ns))
    doc = cli("commit", "--json").json()
    assert doc["created"] is True and doc["version"] == 2


def test_change_in_the_same_tick_as_the_scan_is_hashed_again(initialised, cli, monkeypatch):
    """A file whose mtime is not older than the scan's start (same clock tick) is never trusted from the cache:
    a same-size rewrite in that tick would leave size, mtime and ctime all unchanged."""
    readme = initialised / "README.md"
    readme.write_bytes(b"a" * 100)
    mtime = readme.stat().st_mtime_ns
    monkeypatch.setattr(walk_module, "fs_clock", lambda _dir: mtime)  # the scan began in the write's tick
    cli("commit", cwd=initialised)
    monkeypatch.undo()
    st = readme.stat()
    key = StatKey(st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
    assert StatCache(initialised / ".pvc" / "index").get("README.md", key, "file") is None
    doc = cli("commit", "--json", cwd=initialised).json()
    assert doc["created"] is False and doc["files_hashed"] == 1  # re-hashed, found unchanged
    assert cli("commit", "--json").json()["files_hashed"] == 0  # now older than the scan: trusted


def test_edit_commit_then_both_versions_restore(initialised, cli, tmp_path):
    cli("commit", "-m", "before", cwd=initialised)
    before = tree_bytes(initialised)
    changes = mutate_image_project(initialised, seed=5, edit=0.1, add=0.1, delete=0.1)
    assert changes["edited"] and changes["added"] and changes["deleted"]
    doc = cli("commit", "-m", "after", "--json").json()
    assert doc["created"] is True and doc["version"] == 2
    assert doc["files_hashed"] == len(changes["edited"]) + len(changes["added"])
    after = tree_bytes(initialised)
    assert cli("restore", "v1", "--to", tmp_path / "v1").code == 0
    assert cli("restore", "latest", "--to", tmp_path / "v2").code == 0
    assert tree_bytes(tmp_path / "v1") == before
    assert tree_bytes(tmp_path / "v2") == after


def test_media_is_deduplicated_between_versions(initialised, cli):
    cli("commit", cwd=initialised)
    packs = initialised / ".pvc" / "packs"
    size_v1 = sum(p.stat().st_size for p in packs.glob("*.pack"))
    ann = next(initialised.glob("train/ann/*.json"))
    doc = json.loads(ann.read_bytes())
    doc["description"] = "edited"
    ann.write_text(json.dumps(doc))
    cli("commit")
    grown = sum(p.stat().st_size for p in packs.glob("*.pack")) - size_v1
    assert 0 < grown < 0.2 * size_v1  # one annotation, one or two pages, trees and a manifest


def test_copy_of_an_image_is_stored_once(initialised, cli):
    img = initialised / "train" / "img" / "noise.jpg"
    Image.frombytes("RGB", (256, 256), os.urandom(256 * 256 * 3)).save(img, quality=95)
    cli("commit", cwd=initialised)
    packs = initialised / ".pvc" / "packs"
    before = sum(p.stat().st_size for p in packs.glob("*.pack"))
    (initialised / "train" / "img" / "copy.jpg").write_bytes(img.read_bytes())
    doc = cli("commit", "--json").json()
    assert doc["created"] is True
    grown = sum(p.stat().st_size for p in packs.glob("*.pack")) - before
    assert grown < img.stat().st_size / 4  # a page, trees and a manifest: not the image again
    items = {i.item: i for i in pvc.Project(initialised).ls(2, "train")}
    assert items["copy.jpg"].blob == items[img.name].blob


def test_executable_bit_is_kept(initialised, cli, tmp_path):
    script = initialised / "prepare.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    cli("commit", cwd=initialised)
    cli("restore", "1", "--to", tmp_path / "out")
    assert os.access(tmp_path / "out" / "prepare.sh", os.X_OK)
    assert not os.access(tmp_path / "out" / "meta.json", os.X_OK)


def test_large_file_is_chunked_and_restored(initialised, cli, tmp_path):
    config = initialised / ".pvc" / "config"
    settings = json.loads(config.read_text())
    settings["chunk_threshold"] = 1 << 20
    config.write_text(json.dumps(settings))
    big = initialised / "train" / "weights.bin"
    big.write_bytes(os.urandom(3 << 20))
    cli("commit", cwd=initialised)
    assert cli("restore", "1", "--to", tmp_path / "out", "--verify").code == 0
    assert (tmp_path / "out" / "train" / "weights.bin").read_bytes() == big.read_bytes()


def test_generic_project_without_meta_json(tmp_path, cli):
    root = tmp_path / "plain"
    (root / "cats").mkdir(parents=True)
    Image.new("RGB", (30, 20), "red").save(root / "cats" / "a.png")
    (root / "cats" / "labels.csv").write_text("a.png,cat\n")
    (root / "notes.txt").write_text("hello")
    assert cli("init", root).code == 0
    assert cli("commit", "-m", "plain", cwd=root).code == 0
    shown = cli("show", "--json").json()
    assert shown["layout"] == "generic" and shown["stats"]["items"] == 2
    assert "generic" in cli("show").out
    items = {i["item"]: i for i in cli("ls", "--json").json()}
    assert items["a.png"]["meta"]["width"] == 30
    assert cli("restore", "1", "--to", tmp_path / "out").code == 0
    assert tree_bytes(tmp_path / "out") == tree_bytes(root)


def test_untouched_tree_is_known_from_stats_alone(initialised, cli, monkeypatch):
    cli("commit", cwd=initialised)
    cli("status")  # the clean path is armed by the last full capture

    def must_not_build(*args, **kwargs):
        raise AssertionError("an untouched tree must not be read or rebuilt")

    monkeypatch.setattr(capture_module, "build_manifest", must_not_build)
    assert cli("commit", "--json").json()["created"] is False
    assert cli("status", "--json").json()["clean"] is True
    (initialised / "README.md").write_text("changed")
    assert cli("status").code == 1  # the full path runs (and hits the stub) once anything changed


def test_invalid_file_kept_with_allow_invalid_is_refused_again_without_it(initialised, cli):
    ann = sorted(initialised.glob("train/ann/*.json"))[0]
    ann.write_text("{")
    assert cli("commit", "--allow-invalid", cwd=initialised).code == 0
    (initialised / "README.md").write_text("another change")
    result = cli("commit")
    assert result.code == 1 and ann.name in result.err


def test_other_version_control_folders_are_not_versioned(initialised, cli, tmp_path):
    (initialised / ".git" / "objects").mkdir(parents=True)
    (initialised / ".git" / "objects" / "ab").write_bytes(b"git object")
    (initialised / "train" / ".git").mkdir()
    (initialised / "train" / ".git" / "kept").write_text("only the root's .git is git's")
    cli("commit", cwd=initialised)
    cli("restore", "1", "--to", tmp_path / "out")
    assert not (tmp_path / "out" / ".git").exists()
    assert (tmp_path / "out" / "train" / ".git" / "kept").read_text() == "only the root's .git is git's"


def test_image_metadata_never_decodes_pixels(tmp_path, monkeypatch):
    paths = []
    for fmt, mode in (("PNG", "RGBA"), ("JPEG", "RGB"), ("PNG", "L"), ("WEBP", "RGB"), ("TIFF", "RGB")):
        path = tmp_path / f"a-{mode}.{fmt.lower()}"
        Image.new(mode, (40, 30)).save(path, fmt)
        paths.append((path, mode))

    def no_decoding(self):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    for path, mode in paths:
        meta = image_meta(path.read_bytes(), path)
        assert (meta["width"], meta["height"], meta["mode"]) == (40, 30, mode)
        assert meta["channels"] == len(mode)


def test_a_commit_after_a_commit_reads_only_what_changed(initialised, cli):
    """The stat cache a commit saves leaves the ids to the manifest; the next commit takes them from its pages."""
    import msgpack
    import zstandard

    assert cli("commit", "-m", "v1", "-C", initialised).code == 0
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    unpacker.feed((initialised / ".pvc" / "index").read_bytes())
    _, body = unpacker.unpack(), unpacker.unpack()
    results = msgpack.unpackb(zstandard.ZstdDecompressor().decompressobj().decompress(body["results"]), raw=False)
    assert "ids" not in results and results["roles"]
    ann = sorted((initialised / "train" / "ann").iterdir())[0]
    ann.write_text(ann.read_text().replace('"objects"', '"description": "edited", "objects"', 1))
    doc = cli("commit", "-m", "v2", "--json", "-C", initialised).json()
    assert doc["created"] and doc["files_hashed"] == 1
