"""`atomic.Writeback`: a folder written back while it is written, durable at `finish()`, every flush error raised."""

from __future__ import annotations

import errno
import os
import time

import pytest

from pvc.store import atomic
from pvc.store.atomic import Writeback


class _FakeSyncfs:
    """syncfs(2) as ctypes gives it: 0, or -1 with errno set (here: for the `fail_at`-th call and after)."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.paths: list[str] = []
        self.fail_at = fail_at

    def __call__(self, fd: int) -> int:
        self.paths.append(os.readlink(f"/proc/self/fd/{fd}"))
        if self.fail_at is not None and len(self.paths) >= self.fail_at:
            import ctypes

            ctypes.set_errno(errno.EIO)
            return -1
        return 0


@pytest.fixture
def fake(monkeypatch):
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc to name a descriptor's folder")

    def install(fail_at=None):
        syncfs = _FakeSyncfs(fail_at)
        monkeypatch.setattr(atomic, "_syncfs", lambda: syncfs)
        return syncfs
    return install


def test_the_folder_is_flushed_while_it_is_written_and_once_more_at_the_end(tmp_path, fake):
    syncfs = fake()
    with Writeback(tmp_path, interval=0.01) as durable:
        (tmp_path / "a").write_bytes(b"x" * 4096)
        time.sleep(0.2)  # ~20 intervals
        during = len(syncfs.paths)
        durable.finish()
    assert during >= 3  # the thread flushed while the writing went on
    assert len(syncfs.paths) == during + 1  # and finish() once more, after the thread stopped
    assert set(syncfs.paths) == {str(tmp_path)}


def test_an_error_met_by_a_flush_in_the_thread_is_raised_by_finish(tmp_path, fake):
    syncfs = fake(fail_at=1)
    with Writeback(tmp_path, interval=0.01) as durable:
        deadline = time.monotonic() + 5
        while not syncfs.paths and time.monotonic() < deadline:
            time.sleep(0.01)
        assert syncfs.paths  # the thread's flush failed ...
        with pytest.raises(OSError) as raised:
            durable.finish()  # ... and the final one (which reports nothing new) does not hide it
    assert raised.value.errno == errno.EIO and str(tmp_path) in str(raised.value)


def test_an_error_of_the_last_flush_is_raised(tmp_path, fake):
    syncfs = fake(fail_at=1)
    with Writeback(tmp_path, interval=60) as durable:  # the thread never flushes
        with pytest.raises(OSError):
            durable.finish()
    assert len(syncfs.paths) == 1


def test_without_syncfs_every_file_and_folder_is_fsynced(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "_syncfs", lambda: None)
    (tmp_path / "sub").mkdir()
    for name in ("a", "sub/b"):
        (tmp_path / name).write_bytes(b"data")
    synced = []
    real = os.fsync
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: (synced.append(os.fstat(fd).st_ino), real(fd))[1])
    with Writeback(tmp_path) as durable:
        durable.finish()
    expected = {os.stat(tmp_path / p).st_ino for p in ("a", "sub/b", ".", "sub")}
    assert set(synced) == expected


def _open_on(folder) -> list[str]:
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == str(folder):
                found.append(fd)
        except OSError:  # (the listing's own descriptor, closed since)
            pass
    return found


def test_leaving_without_finish_stops_the_thread_and_closes_the_descriptor(tmp_path, fake):
    import threading

    fake()
    with pytest.raises(RuntimeError):
        with Writeback(tmp_path, interval=0.01):
            assert _open_on(tmp_path) and any(t.name == "pvc-writeback" for t in threading.enumerate())
            raise RuntimeError("the restore failed")
    assert not _open_on(tmp_path)
    assert not any(t.name == "pvc-writeback" for t in threading.enumerate())


def test_finish_outside_the_with_block_is_refused_not_a_silent_other_flush(tmp_path, fake):
    fake()
    durable = Writeback(tmp_path)
    with durable:
        pass
    with pytest.raises(RuntimeError):
        durable.finish()


def test_no_thread_to_be_had_leaves_no_descriptor_open(tmp_path, fake, monkeypatch):
    import threading

    fake()

    def refuse(self):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    with pytest.raises(RuntimeError):
        with Writeback(tmp_path):
            pass
    assert not _open_on(tmp_path)
