"""`.pvc/status`: the report of the last status of a changed project, kept for the next status that walks the
same files.

A status of a changed project walks the tree, hashes what the stat cache cannot vouch for, builds the working
manifest from the change and compares it with the latest version (pvc/core/status.py). Its report depends on
nothing else than the files the walk saw, the latest version, the capture settings and pvc's own code. So when the
walk was settled (no file modified since a moment before it began: `Walked.settled`, the condition under which the
stat cache keeps its tree record), the report is written here with its key: the digest of that walk's stat records
(pvc/project/walk.py, `tree_digest`), the latest version's number and manifest, the settings, pvc's code (`code_id`)
and this record's format. A later status whose walk has the same digest under the same key saw the same files with the same
size, mtime, inode and ctime (settled means every file's mtime and ctime are older than the clock read before the
walk, and a write to a file after it gives the file a later ctime at least), and prints the report read here instead
of looking anything up, building or comparing. A status whose capture found the tree unchanged is kept too.

The file is two msgpack documents, the key (bytes) and the report (a map), so a key that differs is found without
decoding the report. It is only an optimisation: deleting it changes how long a status takes, never what it says. A
record that cannot be read or decoded is no record; it is written whole (temp file, fsync, rename) by a status that
finds the writers' lock free, as the stat cache is.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import msgpack

from pvc.store.atomic import atomic_write

__all__ = ["RECORD_FORMAT", "record_key", "read_report", "write_report"]

RECORD_FORMAT = 1  # raised whenever what a status report holds, or how it is made, changes
MAX_BYTES = 16 << 20  # a larger report is not kept (its status reads and compares anew)


def record_key(tree: bytes, number: int, manifest: str, settings: dict[str, Any]) -> bytes | None:
    """What a report holds for: a walk's `tree_digest`, the latest version (number, manifest id in hex) and the
    capture settings, under this pvc's code (`code_id`) and this record format; None where the code cannot be told
    (then no report is kept or read)."""
    code = code_id()
    if code is None:
        return None
    return msgpack.packb([RECORD_FORMAT, code, tree, number, manifest, settings], use_bin_type=True)


def code_id() -> bytes | None:
    """pvc's code as installed: a digest of its version and of the path, size and mtime of every module and compiled
    extension in the package, so that an upgrade or an edit of any of them (which changes how a report is made, with
    or without a new version number) makes another key. About 150 files, one stat each (under 1 ms); None when they
    cannot be listed (a package inside a zip file)."""
    import pvc
    from blake3 import blake3

    if not isinstance(getattr(pvc, "__file__", None), str):
        return None  # (a frozen build, a namespace package: no files of its own to tell it by)
    try:
        root = os.path.dirname(os.path.abspath(pvc.__file__))
        found, folders = [], [root]
        while folders:
            with os.scandir(folders.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        if entry.name != "__pycache__":
                            folders.append(entry.path)
                    elif entry.name.endswith((".py", ".so", ".pyd")):
                        st = entry.stat()
                        found.append(f"{entry.path[len(root):]}\0{st.st_size}\0{st.st_mtime_ns}")
    except OSError:
        return None
    found.sort()
    return blake3("\n".join([pvc.__version__, *found]).encode("utf-8", "surrogateescape")).digest()[:16]


def read_report(path: Path, key: bytes) -> dict | None:
    """The report recorded under `key`; None when there is none, it holds for another key, or it cannot be read."""
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size > MAX_BYTES + len(key) + 16:
                return None
            unpacker = msgpack.Unpacker(f, raw=False, strict_map_key=False, max_buffer_size=MAX_BYTES + (1 << 20))
            if unpacker.unpack() != key:
                return None
            report = unpacker.unpack()
    except Exception:  # missing, unreadable, truncated or damaged: no record
        return None
    return report if isinstance(report, dict) else None


def write_report(path: Path, key: bytes, report: dict) -> bool:
    """Keep `report` under `key`, replacing any record (call with the writers' lock held); False when it is too
    large to keep, or holds a value msgpack cannot encode (the JSON of an annotation may hold an integer of 2**64 or
    more), and then the record there is removed (it holds for an earlier walk)."""
    try:
        data = msgpack.packb(report, use_bin_type=True)
    except (TypeError, ValueError, OverflowError):
        data = None
    if data is None or len(data) > MAX_BYTES:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        return False
    atomic_write(path, [msgpack.packb(key, use_bin_type=True), data])
    return True
