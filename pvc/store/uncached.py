"""Writing bytes the store keeps cold around the page cache (O_DIRECT), where the file system allows it.

A pack downloaded by `clone` or `pull` is written once and not read again soon; the files `clone` checks out from
the same download are. Written through the page cache, the pack takes as much memory again as the files, the
kernel copies it twice (into the cache, then to the disk) and the final flush waits for it. Written with O_DIRECT,
it goes from one small reused buffer to the disk while the next packs download. `fsync` is still what makes it
durable (the file's size and extents, the disk's own cache).

O_DIRECT wants the buffer, the length and the file offset aligned to the device's block; a 4 KiB-aligned buffer
(an anonymous map) and 4 KiB-multiple lengths suit the devices in use. The unaligned tail, and everything on a file
system without O_DIRECT (tmpfs, some network and FUSE file systems: EINVAL), is written through the cache."""

from __future__ import annotations

import errno
import os
import threading

__all__ = ["write_uncached"]

_ALIGN = 4096
_SEGMENT = 8 << 20  # bytes per O_DIRECT write; the buffer each writing thread keeps
_buffers = threading.local()


def write_uncached(fd: int, data) -> bool:
    """Write `data` (bytes-like) at the current offset of `fd`, which must be 4 KiB-aligned (a new file's 0): as much
    as possible with O_DIRECT, the rest buffered. True if any of it went around the page cache. A writable `data`
    that starts on a 4 KiB boundary is written from where it is: nothing may change it until this returns."""
    view = memoryview(data).cast("B")
    head = len(view) - len(view) % _ALIGN
    done = _direct(fd, view[:head]) if head and hasattr(os, "O_DIRECT") else 0
    rest = view[done:]
    while rest:
        rest = rest[os.write(fd, rest):]
    return done > 0


def _direct(fd: int, view: memoryview) -> int:
    """Write the aligned `view` with O_DIRECT, from where it is if it starts on an aligned address, else through this
    thread's aligned buffer; how many bytes were written (fewer than asked where the file system refused, at an
    aligned point: the caller writes the rest buffered)."""
    import fcntl

    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_DIRECT)
    except OSError as exc:
        if exc.errno == errno.EINVAL:  # no O_DIRECT on this file system
            return 0
        raise
    done = 0
    try:
        buffer = None if _aligned(view) else _buffer()  # an aligned view (a download buffer) is written as it is
        while done < len(view):
            n = min(_SEGMENT, len(view) - done)
            segment = view[done : done + n]
            if buffer is not None:
                buffer[:n] = segment
                segment = buffer[:n]
            try:
                wrote = os.write(fd, segment)
            except OSError as exc:
                if exc.errno == errno.EINVAL:  # the device wants a larger alignment: the rest buffered
                    break
                raise
            done += wrote
            if not wrote or wrote % _ALIGN:  # nothing taken, or a short write off the alignment: the rest buffered
                break
    finally:
        fcntl.fcntl(fd, fcntl.F_SETFL, flags)
    return done


def _aligned(view: memoryview) -> bool:
    """Whether `view` starts on a 4 KiB boundary (known for writable buffers only: ctypes takes no others)."""
    import ctypes

    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(view)) % _ALIGN == 0
    except (TypeError, ValueError):  # read-only (bytes), or empty
        return False


def _buffer() -> memoryview:
    """This thread's page-aligned buffer (an anonymous map), made once."""
    buffer = getattr(_buffers, "view", None)
    if buffer is None:
        import mmap

        buffer = _buffers.view = memoryview(mmap.mmap(-1, _SEGMENT))
    return buffer
