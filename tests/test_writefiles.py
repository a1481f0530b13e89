"""The file creation loop of restore and clone (pvc/core/writefiles.py, in C from pvc/_files.c where it is built):
each file created exclusively, written whole, with its mode; both loops give the same files and the same errors."""

from __future__ import annotations

import errno
import os
import stat

import pytest
from helpers import tree_bytes

import pvc
import pvc.core.writefiles as writefiles
from pvc.core.writefiles import FileWriter, process_umask
from pvc.sample import make_image_project

LOOPS = [pytest.param(True, id="native"), pytest.param(False, id="python")]


@pytest.fixture(params=LOOPS)
def native(request) -> bool:
    if request.param and not writefiles.NATIVE_WRITES:
        pytest.fail("pvc/_files.c is not built: `make venv` builds it (a C compiler and the Python headers are needed)")
    return request.param


def test_the_umask_is_read_without_changing_it():
    before = os.umask(0o027)
    try:
        assert process_umask() == 0o027
        assert os.umask(0o027) == 0o027  # still what it was set to
    finally:
        os.umask(before)


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o000])
def test_files_get_their_content_and_exact_mode_whatever_the_umask(tmp_path, native, mask):
    (tmp_path / "sub").mkdir()
    files = [("a.bin", os.urandom(70_000), 0o644), ("sub/run.sh", b"#!/bin/sh\n", 0o755), ("empty", b"", 0o600),
             ("sub/view.json", memoryview(b'{"x": 1}')[2:6], 0o640)]
    before = os.umask(mask)
    try:
        with FileWriter(tmp_path, native=native) as writer:
            writer.write(files)
    finally:
        os.umask(before)
    for path, data, mode in files:
        assert (tmp_path / path).read_bytes() == bytes(data)
        assert stat.S_IMODE((tmp_path / path).stat().st_mode) == mode


def test_an_existing_file_or_link_is_an_error_naming_it_and_nothing_after_it_is_written(tmp_path, native):
    (tmp_path / "there").write_bytes(b"old")
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    with FileWriter(tmp_path, native=native) as writer:
        with pytest.raises(FileExistsError) as caught:
            writer.write([("first", b"1", 0o644), ("there", b"new", 0o644), ("after", b"2", 0o644)])
        assert caught.value.errno == errno.EEXIST and caught.value.filename == str(tmp_path / "there")
        with pytest.raises(FileExistsError):
            writer.write([("link", b"through the link", 0o644)])
    assert (tmp_path / "first").read_bytes() == b"1"
    assert (tmp_path / "there").read_bytes() == b"old"
    assert not (tmp_path / "after").exists()
    assert not (tmp_path / "elsewhere").exists()  # the link was not followed


def test_the_stats_of_the_files_written_are_those_a_stat_of_each_gives(tmp_path, native):
    (tmp_path / "there").write_bytes(b"old")
    stats: list = []
    with FileWriter(tmp_path, native=native) as writer:
        writer.write([("a", b"one", 0o644), ("b", b"second file", 0o600)], stats)
        with pytest.raises(FileExistsError):
            writer.write([("c", b"3", 0o755), ("there", b"new", 0o644), ("d", b"4", 0o644)], stats)
    assert len(stats) == 3  # a, b, then c: none for the file that failed nor after it
    for path, got in zip("abc", stats):
        st = os.stat(tmp_path / path)
        assert got == (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns), path


def test_an_extension_built_before_the_stats_gives_them_through_the_python_loop(tmp_path, monkeypatch):
    from types import SimpleNamespace

    calls = []

    def old_write_files(fd, rows):  # the two-argument signature of an older build
        calls.append(len(rows))

    monkeypatch.setattr(writefiles, "_files", SimpleNamespace(write_files=old_write_files))
    monkeypatch.setattr(writefiles, "_STATS", [])
    stats: list = []
    with FileWriter(tmp_path, native=True) as writer:
        writer.write([("a", b"one", 0o644)])  # no stats asked: the extension writes
        writer.write([("b", b"two", 0o644)], stats)  # asked: the Python loop writes and gives them
    assert calls == [1] and (tmp_path / "b").read_bytes() == b"two"
    st = os.stat(tmp_path / "b")
    assert stats == [(st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)]


def test_a_missing_folder_is_an_error_naming_the_file(tmp_path, native):
    with FileWriter(tmp_path, native=native) as writer, pytest.raises(FileNotFoundError) as caught:
        writer.write([("no/such/folder/file", b"x", 0o644)])
    assert caught.value.filename == str(tmp_path / "no/such/folder/file")


@pytest.mark.skipif(not writefiles.NATIVE_WRITES, reason="pvc/_files.c is not built")
def test_the_native_loop_refuses_malformed_rows(tmp_path):
    from pvc import _files

    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(ValueError, match="NUL"):
            _files.write_files(fd, [(b"a\0b", b"x", 0o644, False)])
        with pytest.raises(TypeError):
            _files.write_files(fd, [("text path", b"x", 0o644, False)])
        with pytest.raises(TypeError):
            _files.write_files(fd, [(b"a", b"x")])
        with pytest.raises(TypeError, match="stats"):
            _files.write_files(fd, [(b"a", b"x", 0o644, False)], ())
        assert _files.write_files(fd, []) is None
    finally:
        os.close(fd)
    assert list(tmp_path.iterdir()) == []


def test_a_restore_writes_the_same_tree_with_either_loop(tmp_path, cli, monkeypatch):
    project = make_image_project(tmp_path / "proj", items=24, datasets=2, seed=8, noise=True)
    (project / "tools.sh").write_text("#!/bin/sh\necho hi\n")
    (project / "tools.sh").chmod(0o755)
    assert cli("init", project).code == 0 and cli("commit", "-m", "v1", "-C", project).code == 0
    trees = []
    for native in (True, False):
        monkeypatch.setattr(writefiles, "NATIVE_WRITES", native and writefiles.NATIVE_WRITES)
        monkeypatch.setattr(FileWriter.__init__, "__kwdefaults__", {"native": native})
        dest = tmp_path / f"out-{native}"
        with pvc.Project(project) as p:
            p.version.restore(version_num=1, dest=dest, link=False)
        trees.append(tree_bytes(dest))
        assert stat.S_IMODE((dest / "tools.sh").stat().st_mode) == 0o755
    assert trees[0] == trees[1] == tree_bytes(project)
