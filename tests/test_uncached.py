"""write_uncached: a pack's bytes written around the page cache where the file system allows, exactly as given."""

import errno
import fcntl
import os
from pathlib import Path

import pytest

from pvc.store.uncached import _SEGMENT, write_uncached

SIZES = [0, 1, 4095, 4096, 4097, _SEGMENT, _SEGMENT + 4096 + 5, 3 * _SEGMENT + 123]


def _direct_supported(folder: Path) -> bool:
    if not hasattr(os, "O_DIRECT"):
        return False
    try:
        fd = os.open(folder / "probe", os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o600)
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            return False
        raise
    os.close(fd)
    (folder / "probe").unlink()
    return True


def _write(path: Path, data: bytes) -> bool:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        used = write_uncached(fd, data)
        assert not fcntl.fcntl(fd, fcntl.F_GETFL) & getattr(os, "O_DIRECT", 0)  # the descriptor is as it was
        os.fsync(fd)
    finally:
        os.close(fd)
    return used


@pytest.mark.parametrize("size", SIZES)
def test_bytes_are_written_exactly(tmp_path, size):
    data = os.urandom(size)
    used = _write(tmp_path / "pack", data)
    assert (tmp_path / "pack").read_bytes() == data
    assert used == (size >= 4096 and _direct_supported(tmp_path))


def test_a_memoryview_and_a_bytearray_are_taken(tmp_path):
    data = bytearray(os.urandom(2 * 4096 + 17))
    _write(tmp_path / "a", memoryview(data)[3:])
    assert (tmp_path / "a").read_bytes() == bytes(data[3:])


def test_a_file_system_that_refuses_o_direct_gets_a_buffered_write(tmp_path, monkeypatch):
    """tmpfs before Linux 6.6, FUSE and some network file systems refuse O_DIRECT with EINVAL at fcntl."""
    real = fcntl.fcntl

    def refusing(fd, cmd, arg=0):
        if cmd == fcntl.F_SETFL and arg & getattr(os, "O_DIRECT", 0):
            raise OSError(errno.EINVAL, "Invalid argument")
        return real(fd, cmd, arg)

    monkeypatch.setattr(fcntl, "fcntl", refusing)
    data = os.urandom(_SEGMENT + 9)
    assert _write(tmp_path / "pack", data) is False
    assert (tmp_path / "pack").read_bytes() == data


def test_a_device_refusing_the_alignment_mid_way_gets_the_rest_buffered(tmp_path, monkeypatch):
    """A device whose block is larger than 4 KiB refuses an O_DIRECT write with EINVAL: what was written stays, the
    rest goes through the cache."""
    if not _direct_supported(tmp_path):
        pytest.skip("no O_DIRECT on this file system")
    import pvc.store.uncached as uncached

    calls = []
    real_write = os.write

    def write(fd, view):
        calls.append(len(view))
        if len(calls) == 2 and fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_write(fd, view)

    monkeypatch.setattr(uncached.os, "write", write)
    data = os.urandom(2 * _SEGMENT + 4096 + 77)
    assert _write(tmp_path / "pack", data) is True
    assert (tmp_path / "pack").read_bytes() == data
    assert calls[0] == _SEGMENT  # the first segment went direct before the refusal


def test_write_errors_other_than_einval_are_raised(tmp_path):
    fd = os.open(tmp_path / "ro", os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        with pytest.raises(OSError) as caught:
            write_uncached(fd, os.urandom(3 * 4096))
        assert caught.value.errno == errno.EBADF
    finally:
        os.close(fd)


@pytest.mark.parametrize("size", [4096, _SEGMENT + 4096 + 5, 2 * _SEGMENT + 1])
def test_an_aligned_buffer_is_written_from_where_it_is(tmp_path, monkeypatch, size):
    """A page-aligned writable buffer (a download buffer: an anonymous map) goes to O_DIRECT as it is, without the
    copy into the thread's bounce buffer; an unaligned view of it takes that copy, and both come out exact."""
    if not _direct_supported(tmp_path):
        pytest.skip("no O_DIRECT on this file system")
    import mmap

    import pvc.store.uncached as uncached

    data = os.urandom(size + 1)
    region = mmap.mmap(-1, len(data))
    region[:] = data
    copies = []
    real_buffer = uncached._buffer
    monkeypatch.setattr(uncached, "_buffer", lambda: copies.append(1) or real_buffer())
    assert _write(tmp_path / "aligned", memoryview(region)[:size]) is True
    assert (tmp_path / "aligned").read_bytes() == data[:size]
    assert copies == []
    assert _write(tmp_path / "unaligned", memoryview(region)[1:]) is True
    assert (tmp_path / "unaligned").read_bytes() == data[1:]
    assert copies == [1]
