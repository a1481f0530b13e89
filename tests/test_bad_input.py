"""Bad input: one line naming the file and the problem, exit 1, and the store left exactly as it was."""

from __future__ import annotations

import json
import os
import socket

import pytest
from helpers import store_state, tree_bytes

from pvc.store import packed as store_module


def _commit_fails(cli, project, *needles: str) -> str:
    before = store_state(project)
    result = cli("commit", "-m", "bad", cwd=project)
    assert result.code == 1, result.out + result.err
    line = result.err.strip()
    assert "\n" not in line and line.startswith("pvc: error: ")
    assert "Traceback" not in result.err
    for needle in needles:
        assert needle in line, line
    assert store_state(project) == before, "a refused commit must leave the store unchanged"
    assert not list((project / ".pvc" / "tmp").iterdir())
    return line


def test_malformed_meta_json_names_file_and_position(initialised, cli):
    (initialised / "meta.json").write_text('{"classes": [\n  {"title": "a",}\n]}')
    _commit_fails(cli, initialised, "meta.json", "line 2 column")


def test_malformed_annotation_names_file_and_position(initialised, cli):
    cli("commit", "-m", "good", cwd=initialised)
    ann = sorted(initialised.glob("train/ann/*.json"))[3]
    ann.write_text('{"size": {"height": 1, "width": 1}, "objects": [}')
    line = _commit_fails(cli, initialised, ann.name, "line 1 column 49")
    assert "malformed JSON" in line


def test_annotation_that_is_not_an_annotation(initialised, cli):
    ann = sorted(initialised.glob("train/ann/*.json"))[0]
    ann.write_text("[1, 2, 3]")
    _commit_fails(cli, initialised, ann.name, "not a Supervisely annotation")


def test_allow_invalid_stores_the_bytes_without_a_summary(initialised, cli, tmp_path):
    ann = sorted(initialised.glob("train/ann/*.json"))[0]
    ann.write_text('{"objects": [')
    result = cli("commit", "--allow-invalid", "--json", cwd=initialised)
    assert result.code == 0, result.err
    items = cli("ls", "1", "train", "--json").json()
    item = next(i for i in items if i["item"] + ".json" == ann.name)
    assert "malformed JSON" in item["annotation"]["invalid"]
    cli("restore", "1", "--to", tmp_path / "out")
    assert tree_bytes(tmp_path / "out") == tree_bytes(initialised)


def test_allow_invalid_is_deterministic(initialised, cli):
    (initialised / "train" / "img" / "broken.png").write_bytes(b"this is not a png")
    first = cli("commit", "--allow-invalid", "--json", cwd=initialised).json()
    (initialised / ".pvc" / "index").unlink()
    again = cli("commit", "--allow-invalid", "--json").json()
    assert again["created"] is False and again["manifest"] == first["manifest"]


def test_image_that_is_not_an_image(initialised, cli):
    bad = initialised / "train" / "img" / "broken.png"
    bad.write_bytes(b"this is not a png")
    _commit_fails(cli, initialised, "broken.png", "not a readable image")


def test_unknown_project_type(initialised, cli):
    meta = json.loads((initialised / "meta.json").read_text())
    meta["projectType"] = "holograms"
    (initialised / "meta.json").write_text(json.dumps(meta))
    _commit_fails(cli, initialised, "meta.json", "unknown projectType")


def test_symlink_to_a_file_is_versioned_by_content(initialised, cli, tmp_path):
    target = tmp_path / "outside.txt"
    target.write_text("content outside the project")
    (initialised / "link.txt").symlink_to(target)
    assert cli("commit", cwd=initialised).code == 0
    cli("restore", "1", "--to", tmp_path / "out")
    restored = tmp_path / "out" / "link.txt"
    assert not restored.is_symlink() and restored.read_text() == "content outside the project"


def test_symlinked_folder_is_refused(initialised, cli, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (initialised / "train" / "linked").symlink_to(tmp_path / "elsewhere")
    _commit_fails(cli, initialised, "linked", "symlink to a folder")


def test_broken_symlink_and_loop_are_refused(initialised, cli):
    (initialised / "dangling").symlink_to(initialised / "nowhere")
    _commit_fails(cli, initialised, "dangling", "broken symlink")
    (initialised / "dangling").unlink()
    (initialised / "loop").symlink_to(initialised / "loop")
    _commit_fails(cli, initialised, "loop")


def test_fifo_is_refused_unless_ignored(initialised, cli):
    os.mkfifo(initialised / "pipe")
    _commit_fails(cli, initialised, "pipe", "FIFO")
    (initialised / ".pvcignore").write_text("# named pipes are not data\npipe\n")
    assert cli("commit").code == 0


def test_socket_is_refused(initialised, cli, tmp_path):
    path = initialised / "s.sock"
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(path))
        _commit_fails(cli, initialised, "s.sock", "socket")
    finally:
        sock.close()


def test_unreadable_file_is_refused(initialised, cli, monkeypatch):
    secret = initialised / "train" / "secret.txt"
    secret.write_text("x")
    real_open = open

    def guarded_open(path, *args, **kwargs):  # root reads anything: simulate EACCES on this file
        if str(path) == str(secret):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(store_module, "open", guarded_open, raising=False)
    _commit_fails(cli, initialised, "secret.txt", "permission denied")


def test_non_utf8_file_name_is_refused(initialised, cli):
    raw = os.path.join(os.fsencode(initialised), b"bad-\xff-name.txt")
    with open(raw, "wb") as f:
        f.write(b"x")
    _commit_fails(cli, initialised, "not valid UTF-8")


def test_description_json_must_be_an_object(initialised, cli, tmp_path):
    desc = tmp_path / "desc.json"
    desc.write_text("[1]")
    result = cli("commit", "--description-json", desc, cwd=initialised)
    assert result.code == 1 and "must be a JSON object" in result.err
    desc.write_text("{oops")
    result = cli("commit", "--description-json", desc)
    assert result.code == 1 and "malformed JSON" in result.err


def test_not_a_project(tmp_path, cli):
    result = cli("log", cwd=tmp_path)
    assert result.code == 1 and "not a pvc project" in result.err


@pytest.mark.parametrize("args", [["show", "7"], ["show", "v0"], ["restore", "abc", "--to", "x"], ["cat", "1", "nope.txt"]])
def test_bad_version_or_path_is_a_one_line_error(initialised, cli, args):
    cli("commit", cwd=initialised)
    result = cli(*args)
    assert result.code == 1 and result.err.count("\n") == 1 and "Traceback" not in result.err


def test_followed_symlinks_are_counted_on_every_path(initialised, cli, tmp_path, monkeypatch):
    """Links to files outside the project are followed (datasets are assembled from links) and said so, whether
    the C walk, the Python scan or the stat-only answer of the entry point sees the tree."""
    from pvc.project import walk as walk_module

    outside = tmp_path / "shared"
    outside.mkdir()
    for k in range(3):
        (outside / f"{k}.txt").write_text(f"shared {k}")
        (initialised / "docs" / f"link{k}.txt").symlink_to(outside / f"{k}.txt")
    doc = cli("commit", "--json", cwd=initialised).json()
    assert doc["created"] and doc["followed_symlinks"] == 3
    human = cli("commit", "-m", "again")  # nothing changed: the entry point's answer says it too
    assert "Nothing changed" in human.out and "followed 3 symlinks to files" in human.out
    assert cli("commit", "--json").json()["followed_symlinks"] == 3
    (initialised / "docs" / "link0.txt").unlink()
    with monkeypatch.context() as m:
        m.setattr(walk_module, "_walk", None)  # no C walk: the Python scan counts them
        assert cli("commit", "--json").json()["followed_symlinks"] == 2
    assert cli("commit", "--json").json()["followed_symlinks"] == 2
