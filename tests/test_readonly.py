"""Read-only commands on a store they cannot write: a full disk, a read-only mount, another user's files.

`log`, `show`, `ls`, `cat`, `diff`, `status` and `verify` need nothing but reading: on a 100%-full file
system and on a store the user may only read they answer as usual (exit 0), and leave no file behind.
The file systems are real: a small tmpfs filled to the last byte, a read-only bind mount, and a process
that runs as `nobody` (root ignores file modes, so `chmod` alone would prove nothing).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from helpers import tree_bytes

from pvc.sample import make_image_project

READS = [["log"], ["show"], ["ls"], ["cat", "1", "meta.json"], ["diff", "1", "2"], ["diff"], ["status"], ["verify"]]


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here: {done.stderr.strip() or done.returncode}")


def _umount(path: Path) -> None:
    os.chdir(path.parent.parent)  # the commands ran in it: a busy mount cannot be unmounted
    subprocess.run(["umount", str(path)], capture_output=True, check=True)


def _two_versions_and_a_change(root: Path, cli) -> Path:
    """A project with two versions and an uncommitted change, so status and diff have to scan and hash."""
    make_image_project(root, items=6, datasets=1, seed=5)
    assert cli("init", root).code == 0
    assert cli("commit", "-m", "one", cwd=root).code == 0
    (root / "README.md").write_text("second\n")
    assert cli("commit", "-m", "two").code == 0
    (root / "README.md").write_text("third, not committed\n")
    (root / ".pvc" / "index").unlink()  # no stat cache: status must hash every file and would save one
    return root


def _fill(disk: Path) -> None:
    """Write until the file system has no byte left."""
    with open(disk / "filler", "wb", buffering=0) as f:
        for size in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    with pytest.raises(OSError) as probe:
        (disk / "probe").write_bytes(b"x")
    assert probe.value.errno == errno.ENOSPC


def _check_reads(cli, root: Path) -> None:
    store_before = tree_bytes(root / ".pvc", skip=())
    for args in READS:
        result = cli(*args, "--json", cwd=root)
        assert (result.code, result.err) == (0, ""), (args, result.err)
        json.loads(result.out)
    assert cli("status", "--json").json()["files"]["modified"] == ["README.md"]
    assert cli("diff", "1", "2", "--json").json()["files"]["modified"] == ["README.md"]
    assert tree_bytes(root / ".pvc", skip=()) == store_before


@pytest.fixture
def full_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    _mount("-t", "tmpfs", "-o", "size=6m", "tmpfs", str(disk))
    yield disk
    _umount(disk)


def test_read_commands_work_on_a_full_disk(full_disk, cli):
    root = _two_versions_and_a_change(full_disk / "proj", cli)
    _fill(full_disk)
    _check_reads(cli, root)
    assert not any((root / ".pvc" / "tmp").iterdir())


def test_read_commands_work_on_a_read_only_mount(tmp_path, cli):
    root = _two_versions_and_a_change(tmp_path / "proj", cli)
    _mount("--bind", str(root), str(root))
    try:
        _mount("-o", "remount,ro,bind", str(root))
        with pytest.raises(OSError) as probe:
            (root / ".pvc" / "probe").write_bytes(b"x")
        assert probe.value.errno == errno.EROFS
        _check_reads(cli, root)
    finally:
        _umount(root)


def test_read_commands_work_on_another_users_store(cli):
    if shutil.which("setpriv") is None or os.geteuid() != 0:
        pytest.skip("needs root and setpriv to run a command as another user")
    base = Path(tempfile.mkdtemp(prefix="pvc-other-user-"))  # pytest's tmp_path is private to root
    try:
        os.chmod(base, 0o755)
        root = _two_versions_and_a_change(base / "proj", cli)
        before = tree_bytes(root, skip=())
        for args in READS:
            done = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable,
                                   "-m", "pvc", *args, "--json"], cwd=root, capture_output=True, text=True, timeout=120,
                                  env={**os.environ, "HOME": str(base)})
            assert (done.returncode, done.stderr) == (0, ""), (args, done.stderr)
            json.loads(done.stdout)
        assert tree_bytes(root, skip=()) == before
    finally:
        shutil.rmtree(base)
