"""What a clone makes durable, and when the stat cache it leaves may vouch for the files it wrote.

A clone fsyncs its store (every file and folder under `.pvc/`) before the project appears, and leaves its
checked-out files to the kernel's write-back, as `git clone` does (pvc/store/atomic.py, StoreFirst). The stat cache it
writes for those files is *unsynced* (format 8, with the boot and mount ids): in another boot or mount it vouches for
nothing, and in this one only once a syncfs has made the files durable.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgpack
import pytest

from pvc.sample import make_image_project
from pvc.store import atomic, statcache
from pvc.store.atomic import StoreFirst, Writeback, atomic_write, boot_id, fsync_dir, mount_token, synced_later

from helpers import tree_bytes

pytestmark = pytest.mark.skipif(mount_token(Path(".")) is None,
                                reason="no boot or mount id here (not Linux): a clone syncs everything")


def _fsyncs(monkeypatch) -> list[str]:
    """Every path os.fsync is called on from now on (read from the descriptor)."""
    seen: list[str] = []
    real = os.fsync

    def spy(fd):
        seen.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    return seen


def _head(project: Path) -> dict:
    with open(project / ".pvc" / "index", "rb") as f:
        return msgpack.Unpacker(f, raw=False).unpack()


@pytest.fixture
def pushed(tmp_path, cli) -> tuple[Path, Path]:
    project = make_image_project(tmp_path / "proj", items=30, datasets=2, seed=5, noise=True)
    assert cli("init", project).code == 0 and cli("commit", "-m", "v1", "-C", project).code == 0
    assert cli("remote", "add", "origin", tmp_path / "remote", "-C", project).code == 0
    assert cli("push", "-C", project).code == 0
    return project, tmp_path / "remote"


def test_a_clone_fsyncs_every_file_of_its_store_and_none_of_its_checkout(pushed, cli, tmp_path, monkeypatch):
    project, remote = pushed
    seen = _fsyncs(monkeypatch)
    monkeypatch.setattr(atomic, "_syncfs", lambda: pytest.fail("a clone syncs its store, not the file system"))
    assert cli("clone", remote, tmp_path / "copy").code == 0
    copy = tmp_path / "copy"
    assert tree_bytes(copy) == tree_bytes(project)
    assert str(tmp_path) in seen  # the rename into place, made durable
    inside = [Path(p) for p in seen if Path(p) != tmp_path and Path(p).is_relative_to(tmp_path)]
    staging = {p.parts[len(tmp_path.parts)] for p in inside}
    assert len(staging) == 1 and next(iter(staging)).startswith(".copy.pvc-clone-")  # all in the hidden folder
    synced = {Path(*p.parts[len(tmp_path.parts) + 1:]) for p in inside}
    store = {p.relative_to(copy) for p in (copy / ".pvc").rglob("*")}
    assert store and store <= synced  # every file and folder of the store, as it was renamed into place
    assert Path(".pvc") in synced and Path(".") in synced  # and the store's entry in the project
    checkout = {p.relative_to(copy) for p in copy.rglob("*") if ".pvc" not in p.relative_to(copy).parts}
    assert checkout and not (checkout & synced)  # no checked-out file or folder


def test_a_clones_stat_cache_is_kept_as_unsynced_and_a_commit_makes_it_ordinary(pushed, cli, tmp_path, monkeypatch):
    _, remote = pushed
    assert cli("clone", remote, tmp_path / "copy").code == 0
    head = _head(tmp_path / "copy")
    assert head["format"] == statcache.UNSYNCED_FORMAT and head["written_in"] == mount_token(tmp_path / "copy")
    assert head["written_in"].startswith(boot_id() + "/")
    synced: list[tuple] = []
    real = statcache.sync_file_system
    monkeypatch.setattr(statcache, "sync_file_system", lambda *paths: synced.append(paths) or real(*paths))
    done = cli("commit", "-m", "again", "--json", "-C", tmp_path / "copy").json()
    assert not done["created"] and done["files_hashed"] == 0, done  # this boot, synced: it vouches
    assert synced and all(p == (tmp_path / "copy", tmp_path / "copy" / ".pvc") for p in synced)
    assert _head(tmp_path / "copy")["format"] == statcache.CACHE_FORMAT  # the files are on disk now


@pytest.mark.parametrize("elsewhere", ["another boot", "another mount"])
def test_after_a_reboot_or_a_remount_a_clones_stat_cache_vouches_for_nothing(pushed, cli, tmp_path, monkeypatch,
                                                                             elsewhere):
    """A crash right after a clone, or a device that dropped and was mounted again, can leave files short on disk
    under stats the cache recorded (where a file system keeps a size ahead of the data): every file is read again."""
    project, remote = pushed
    assert cli("clone", remote, tmp_path / "copy").code == 0
    boot, mount = _head(tmp_path / "copy")["written_in"].split("/")
    other = f"another-boot/{mount}" if elsewhere == "another boot" else f"{boot}/{mount}0"
    monkeypatch.setattr(statcache, "mount_token", lambda path: other)
    monkeypatch.setattr(statcache, "sync_file_system", lambda *paths: pytest.fail("no sync for another's cache"))
    done = cli("commit", "-m", "again", "--json", "-C", tmp_path / "copy").json()
    assert not done["created"] and done["files_hashed"] == len(tree_bytes(project)), done
    assert _head(tmp_path / "copy")["format"] == statcache.CACHE_FORMAT  # what it read is what it recorded
    done = cli("commit", "-m", "again", "--json", "-C", tmp_path / "copy").json()
    assert done["files_hashed"] == 0, done


def test_an_unsynced_cache_whose_sync_fails_vouches_for_nothing(pushed, cli, tmp_path, monkeypatch):
    project, remote = pushed
    assert cli("clone", remote, tmp_path / "copy").code == 0
    monkeypatch.setattr(statcache, "sync_file_system", lambda *paths: False)
    done = cli("commit", "-m", "again", "--json", "-C", tmp_path / "copy").json()
    assert not done["created"] and done["files_hashed"] == len(tree_bytes(project)), done


def test_inside_a_store_first_folder_the_stores_writes_skip_their_own_fsyncs(tmp_path, monkeypatch):
    folder = tmp_path / ".hidden"
    (folder / ".pvc").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    seen = _fsyncs(monkeypatch)
    with StoreFirst(folder, folder / ".pvc") as durable:
        assert synced_later(folder / ".pvc" / "refs") and synced_later(folder)
        assert not synced_later(outside / "x") and not synced_later(tmp_path / ".hidden2")
        atomic_write(folder / ".pvc" / "refs", b"inside")
        fsync_dir(folder / ".pvc")
        assert seen == []
        atomic_write(outside / "x", b"outside")
        assert [Path(p).parent for p in seen] == [outside, tmp_path]  # its temp file, then its folder
        seen.clear()
        durable.finish()
        assert not synced_later(folder / ".pvc" / "refs")  # after finish(), fsynced as usual
    assert {str(folder / ".pvc" / "refs"), str(folder / ".pvc"), str(folder)} <= set(seen)
    assert not synced_later(folder)
    with Writeback(folder):  # a restore's: its files are fsynced as they always were
        assert not synced_later(folder / ".pvc" / "refs")


def test_covering_is_undone_once_whatever_the_order(tmp_path):
    a, b = StoreFirst(tmp_path / "a", tmp_path / "a" / ".pvc"), StoreFirst(tmp_path / "a", tmp_path / "a" / ".pvc")
    a.__enter__()
    b.__enter__()
    a.__exit__(None, None, None)
    assert synced_later(tmp_path / "a" / "x")  # b still covers it
    b.__exit__(None, None, None)
    assert not synced_later(tmp_path / "a" / "x")
    atomic._uncover(str(tmp_path / "a"))  # a root no longer covered: nothing to undo, no error
    assert atomic._LATER == ()


def test_a_clone_records_the_stats_it_took_as_it_wrote_and_stats_only_the_rest(pushed, cli, tmp_path, monkeypatch):
    """The files written from whole packs as they arrived come with their stats (fstat before each close); the
    stat cache's write stats only the files written after the flush."""
    from types import SimpleNamespace

    import pvc.core.capture.seed as seed

    asked: list[str] = []
    monkeypatch.setattr(seed, "os", SimpleNamespace(stat=lambda path: asked.append(path) or os.stat(path)))
    project, remote = pushed
    result = cli("clone", remote, tmp_path / "copy", "--json")
    assert result.code == 0, result.err
    files = result.json()["files"]
    assert len(asked) < files // 2, (len(asked), files)
    done = cli("commit", "-m", "again", "--json", "-C", tmp_path / "copy").json()
    assert not done["created"] and done["files_hashed"] == 0, done  # the stats it recorded are the files'


def test_the_mount_token_changes_with_each_mount_where_the_kernel_gives_unique_mount_ids(tmp_path):
    if atomic._unique_mount_id(tmp_path) is None:
        pytest.skip("no STATX_MNT_ID_UNIQUE here (Linux before 6.8): the token holds the reusable mnt_id")
    boot, mount = mount_token(tmp_path).split("/")
    assert boot == boot_id() and mount == str(atomic._unique_mount_id(tmp_path))
    assert mount_token(tmp_path / "..") is not None and mount_token(tmp_path) == mount_token(tmp_path)
    if os.geteuid() != 0 or not Path("/proc/self/ns/mnt").exists():
        return
    import subprocess
    import sys

    # mounted, unmounted and mounted again in a private mount namespace: a new token each time
    point = tmp_path / "point"
    point.mkdir()
    script = ("import sys; from pathlib import Path; from pvc.store.atomic import mount_token; "
              "print(mount_token(Path(sys.argv[1])))")
    shell = " ".join(f"mount -t tmpfs pvc-test {point} && {sys.executable} -c '{script}' {point} && umount {point};"
                     for _ in range(2))
    done = subprocess.run(["unshare", "-m", "sh", "-c", shell], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"no private mount namespace here: {done.stderr.strip()[:80]}")
    first, second = done.stdout.split()
    assert first != second and first.split("/")[0] == second.split("/")[0] == boot
