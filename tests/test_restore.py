"""Restore: missing and corrupt objects, --skip-missing, --verify, targets, crafted paths."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pytest
from helpers import put_raw, tree_bytes

import pvc
from pvc.store.local.packindex import PackIndex, write_index
from pvc.store.refs import VersionRecord
from pvc.store.repository import Repository


def _blob_of(project: Path, relpath: str) -> bytes:
    dataset = relpath.split("/img/")[0].replace("/datasets/", "/")
    for item in pvc.Project(project).ls(1, dataset):
        if item.path == relpath:
            return bytes.fromhex(item.blob)
    raise AssertionError(relpath)


def _drop_object(project: Path, oid: bytes) -> None:
    """Remove `oid` from every index, as if its pack data were lost."""
    packs = project / ".pvc" / "packs"
    entries = []
    for path in packs.glob("*.idx"):
        idx = PackIndex(path)
        entries += [(o, loc.pack, loc.offset, loc.stored_len, loc.raw_len, loc.codec) for o, loc in idx if o != oid]
        idx.close()
        path.unlink()
    write_index(packs, entries)


def _flip_byte(project: Path, oid: bytes, at: int = 10) -> None:
    repo = Repository(project)
    loc = repo.store.locate(oid)
    pack = project / ".pvc" / "packs" / f"{loc.pack.hex()}.pack"
    data = bytearray(pack.read_bytes())
    data[loc.offset + at] ^= 0xFF
    pack.write_bytes(bytes(data))
    repo.close()


@pytest.fixture
def committed(initialised, cli):
    assert cli("commit", "-m", "v1", cwd=initialised).code == 0
    return initialised


def _victim(project: Path) -> tuple[str, str]:
    img = sorted(project.glob("train/img/*"))[2]
    return img.relative_to(project).as_posix(), img.name


def test_missing_object_stops_restore_and_writes_nothing(committed, cli, tmp_path):
    rel, name = _victim(committed)
    _drop_object(committed, _blob_of(committed, rel))
    result = cli("restore", "1", "--to", tmp_path / "out", "--json")
    assert result.code == 2
    assert "missing" in result.err and name in result.err and result.err.count("\n") == 1
    assert result.json()["error"]["exit_code"] == 2
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_skip_missing_restores_the_rest_and_reports_the_item(committed, cli, tmp_path):
    rel, name = _victim(committed)
    _drop_object(committed, _blob_of(committed, rel))
    result = cli("restore", "1", "--to", tmp_path / "out", "--skip-missing", "--json")
    assert result.code == 0, result.err
    doc = result.json()
    assert doc["skipped"] == [{"dataset": "train", "item": name, "reason": f"missing object for {rel}"}]
    restored, original = tree_bytes(tmp_path / "out"), tree_bytes(committed)
    item_files = {p for p in original if name in p.split("/")[-1] and p.startswith("train/") and "/datasets/" not in p}
    assert {rel, f"train/ann/{name}.json"} <= item_files
    assert set(original) - set(restored) == item_files  # the whole item, and nothing else
    assert all(restored[p] == original[p] for p in restored)
    assert doc["files"] == len(restored)


def test_corrupt_object_is_caught_while_writing(committed, cli, tmp_path):
    rel, name = _victim(committed)
    _flip_byte(committed, _blob_of(committed, rel))
    result = cli("restore", "1", "--to", tmp_path / "out")
    assert result.code == 2 and "corrupt" in result.err and not (tmp_path / "out").exists()
    skipped = cli("restore", "1", "--to", tmp_path / "out2", "--skip-missing", "--json").json()["skipped"]
    assert [(s["item"], s["reason"].split()[0]) for s in skipped] == [(name, "corrupt")]


def test_verify_checks_every_object_before_writing(committed, cli, tmp_path):
    rel, name = _victim(committed)
    _flip_byte(committed, _blob_of(committed, rel), at=0)
    result = cli("restore", "1", "--to", tmp_path / "out", "--verify")
    assert result.code == 2 and "1 corrupt object(s) affecting 1 item(s)" in result.err
    assert not (tmp_path / "out").exists()
    doc = cli("restore", "1", "--to", tmp_path / "out", "--verify", "--skip-missing", "--json").json()
    assert [s["item"] for s in doc["skipped"]] == [name]


def test_existing_target_is_refused_unless_forced(committed, cli, tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    result = cli("restore", "1", "--to", target)
    assert result.code == 1 and "not empty" in result.err
    assert (target / "keep.txt").read_text() == "mine"
    assert cli("restore", "1", "--to", target, "--force").code == 0
    assert tree_bytes(target) == tree_bytes(committed)


def test_empty_existing_target_is_fine(committed, cli, tmp_path):
    (tmp_path / "empty").mkdir()
    assert cli("restore", "1", "--to", tmp_path / "empty").code == 0
    assert tree_bytes(tmp_path / "empty") == tree_bytes(committed)


@pytest.mark.parametrize("target", [".", "train", ".pvc/x", ".."])
def test_refuses_to_restore_inside_or_over_the_project(committed, cli, target):
    before = tree_bytes(committed)
    result = cli("restore", "1", "--to", committed / target, "--force")
    assert result.code == 1 and "refusing" in result.err
    assert tree_bytes(committed) == before


def _add_crafted_version(project: Path, files: list, children: list | None = None) -> int:
    repo = Repository(project)
    store = repo.store
    blob = store.put(b"evil")
    entries = [[name, [blob, 4, 0o644]] for name in files]
    page = put_raw(store, {"type": "page", "kind": "files", "entries": entries})
    root = put_raw(store, {"type": "tree", "name": "", "files": [[files[0], page, len(files)]] if files else [],
                           "items": [], "children": children or []})
    manifest = put_raw(store, {"type": "manifest", "format": 1, "project_type": "images",
                               "layout": "supervisely", "root": root, "stats": {}})
    store.flush()
    versions = repo.versions()
    number = len(versions) + 1
    repo.write_versions([*versions, VersionRecord(number, manifest.hex(), "crafted", None,
                                                  "2026-01-01T00:00:00+00:00", "x", None)])
    repo.close()
    return number


@pytest.mark.parametrize("path", ["../escape.txt", "/etc/evil", "a/../../escape", "a\x00b", "./x", "a//b", "",
                                  ".pvc/config"])
def test_crafted_paths_are_refused(committed, cli, tmp_path, path):
    number = _add_crafted_version(committed, [path])
    result = cli("restore", str(number), "--to", tmp_path / "out")
    assert result.code == 2 and "unsafe path" in result.err
    assert not (tmp_path / "out").exists() and not (tmp_path / "escape.txt").exists()


def test_crafted_dataset_folder_is_refused(committed, cli, tmp_path):
    repo = Repository(committed)
    tree = put_raw(repo.store, {"type": "tree", "name": "x", "files": [], "items": [], "children": []})
    repo.store.flush()
    repo.close()
    number = _add_crafted_version(committed, [], children=[["../../outside", "x", tree]])
    result = cli("restore", str(number), "--to", tmp_path / "out")
    assert result.code == 2 and "unsafe path" in result.err


def test_duplicate_and_file_folder_clash_are_refused(committed, cli, tmp_path):
    number = _add_crafted_version(committed, ["a", "a"])
    result = cli("restore", str(number), "--to", tmp_path / "out")
    assert result.code == 2 and "twice" in result.err
    number = _add_crafted_version(committed, ["a", "a/b"])
    result = cli("restore", str(number), "--to", tmp_path / "out2")
    assert result.code == 2 and "folder is needed" in result.err


def test_restore_by_manifest_prefix_and_api(committed, cli, tmp_path):
    manifest = cli("log", "--json").json()[0]["manifest"]
    assert cli("restore", manifest[:8], "--to", tmp_path / "a").code == 0
    project = pvc.Project(committed)
    result = project.version.restore(version_id=manifest, dest=tmp_path / "b", skip_missed_entities=True)
    assert result.version == 1 and result.skipped == []
    assert tree_bytes(tmp_path / "a") == tree_bytes(tmp_path / "b") == tree_bytes(committed)
    with pytest.raises(pvc.UsageError):
        project.version.restore(dest=tmp_path / "c")


def test_a_plain_copy_can_be_versioned_again_in_a_store_of_its_own(committed, cli, tmp_path):
    assert cli("restore", "1", "--to", tmp_path / "copy", "--no-link").code == 0
    assert not (tmp_path / "copy" / ".pvc").exists()
    assert cli("init", tmp_path / "copy").code == 0
    again = cli("commit", "--json", cwd=tmp_path / "copy").json()
    assert again["manifest"] == json.loads(cli("log", "--json", cwd=committed).out)[0]["manifest"]


def test_restore_flushes_only_the_targets_file_system(committed, cli, tmp_path, monkeypatch):
    from pvc.core import restore as restore_module
    from pvc.store import atomic

    real = atomic._syncfs()
    if real is None:
        pytest.skip("no syncfs(2) here")
    synced = []

    def syncfs(fd):
        synced.append((fd, os.readlink(f"/proc/self/fd/{fd}")))
        return real(fd)

    monkeypatch.setattr(atomic, "_syncfs", lambda: syncfs)
    monkeypatch.setattr(restore_module.os, "sync", lambda: pytest.fail("os.sync() flushes every file system"))
    target = tmp_path / "out"
    assert cli("restore", "1", "--to", target).code == 0
    assert len({fd for fd, _ in synced}) == 1  # one descriptor, opened before the first write ...
    staging = {Path(p) for _, p in synced}
    assert len(staging) == 1  # ... of the hidden folder the restore was written in
    (folder,) = staging
    assert folder.parent == target.parent and folder.name.startswith(".out.pvc-restore-")
    assert tree_bytes(target) == tree_bytes(committed)


def test_a_flush_that_fails_leaves_no_target_and_says_why(committed, cli, tmp_path, monkeypatch):
    import ctypes

    from pvc.store import atomic

    def failing(fd):
        ctypes.set_errno(errno.EIO)
        return -1

    monkeypatch.setattr(atomic, "_syncfs", lambda: failing)
    target = tmp_path / "out"
    result = cli("restore", "1", "--to", target)
    assert result.code != 0 and "Input/output error" in result.err and "Traceback" not in result.err
    assert not target.exists() and not any(p.name.startswith(".out.pvc-restore-") for p in tmp_path.iterdir())


def _failing_rename(monkeypatch, fails):
    """os.rename of pvc.core.restore, failing (EACCES) for the (source, target) names `fails` picks."""
    from pvc.core import restore as restore_module

    real = os.rename

    def rename(src, dst):
        if fails(Path(src).name, Path(dst).name):
            raise PermissionError(errno.EACCES, "Permission denied", str(dst))
        return real(src, dst)

    monkeypatch.setattr(restore_module.os, "rename", rename)


def _old_target(tmp_path: Path) -> Path:
    target = tmp_path / "out"
    (target / "keep").mkdir(parents=True)
    (target / "keep" / "mine.txt").write_text("my files")
    return target


def test_force_puts_the_old_target_back_when_the_final_rename_fails(committed, cli, tmp_path, monkeypatch):
    target = _old_target(tmp_path)
    _failing_rename(monkeypatch, lambda src, dst: "pvc-restore-" in src and dst == "out")
    result = cli("restore", "1", "--to", target, "--force", cwd=committed)
    assert result.code == 1 and result.err.count("\n") == 1
    assert "cannot move the restored files into place" in result.err and "back in place" in result.err
    assert tree_bytes(target) == {"keep/mine.txt": b"my files"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "proj"]  # no staging, nothing hidden


def test_force_says_where_the_old_target_is_when_it_cannot_go_back(committed, cli, tmp_path, monkeypatch):
    target = _old_target(tmp_path)
    _failing_rename(monkeypatch, lambda src, dst: dst == "out" and ("pvc-restore-" in src or "pvc-replaced-" in src))
    result = cli("restore", "1", "--to", target, "--force", cwd=committed)
    [aside] = [p for p in tmp_path.iterdir() if ".out.pvc-replaced-" in p.name]
    assert result.code == 1 and f"kept at {aside}" in result.err
    assert tree_bytes(aside) == {"keep/mine.txt": b"my files"} and not target.exists()


def test_force_reports_an_old_target_it_could_not_delete(committed, cli, tmp_path, monkeypatch):
    from pvc.core import restore as restore_module

    target, real = _old_target(tmp_path), shutil.rmtree

    def rmtree(path, *args, **kwargs):
        if ".pvc-replaced-" in str(path):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(restore_module.shutil, "rmtree", rmtree)
    doc = cli("restore", "1", "--to", target, "--force", "--json", cwd=committed).json()
    assert Path(doc["kept_aside"]).name.startswith(".out.pvc-replaced-")
    assert tree_bytes(Path(doc["kept_aside"])) == {"keep/mine.txt": b"my files"}
    assert tree_bytes(target) == tree_bytes(committed)
