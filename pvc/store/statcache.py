"""The stat cache `.pvc/index`: path -> (size, mtime, inode, ctime) and what hashing the file gave.

Only an optimisation: deleting it changes how long a commit takes, never its result. An entry is trusted
only when the file's stat is unchanged and its mtime is older than the moment the scan that recorded it
began, read from the file system's own clock (`fs_clock`). A file modified during or after that scan,
even within the same clock tick and without changing size ("racy", as git calls it), is hashed again.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack

from pvc.store.atomic import atomic_write

__all__ = ["StatKey", "CacheEntry", "StatCache", "fs_clock"]

CACHE_FORMAT = 2


def fs_clock(directory: Path) -> int:
    """The file system's current time (the mtime a file written now gets), in ns."""
    fd, name = tempfile.mkstemp(dir=directory, prefix="clock-")
    try:
        os.write(fd, b"t")
        return os.fstat(fd).st_mtime_ns
    finally:
        os.close(fd)
        try:
            os.unlink(name)
        except FileNotFoundError:  # a committer cleaning tmp/ got there first
            pass


@dataclass(frozen=True, slots=True)
class StatKey:
    size: int
    mtime_ns: int
    ino: int
    ctime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> StatKey:
        return cls(st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)


@dataclass(frozen=True, slots=True)
class CacheEntry:
    key: StatKey
    oid: bytes
    role: str
    info: Any


class StatCache:
    """Loaded once per command; `save` replaces the file atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: dict[str, CacheEntry] = {}
        self._derived: dict[bytes, Any] = {}
        self._cutoff = 0
        self.manifest: bytes | None = None  # what these entries (all of them, unchanged) produced
        self.settings: Any = None
        self._load()

    def _load(self) -> None:
        try:
            doc = msgpack.unpackb(self.path.read_bytes(), raw=False, strict_map_key=False)
            if doc.get("format") != CACHE_FORMAT:
                return
            self._cutoff = int(doc["scan_started"])
            self._entries = {
                p: CacheEntry(StatKey(*e[0]), bytes(e[1]), e[2], e[3]) for p, e in doc["entries"].items()
            }
            self._derived = {bytes(k): v for k, v in doc.get("derived", {}).items()}
            self.manifest, self.settings = doc.get("manifest"), doc.get("settings")
        except Exception:  # missing or damaged: start empty, the next save rewrites it
            self._entries, self._derived = {}, {}

    def get(self, relpath: str, key: StatKey, role: str) -> CacheEntry | None:
        entry = self._entries.get(relpath)
        if entry is None or entry.key != key or entry.role != role or key.mtime_ns >= self._cutoff:
            return None
        return entry

    def unchanged(self, files: list, settings: Any) -> bool:
        """True when the project is exactly the files these entries describe, none touched since:
        then it is the manifest recorded with them, and nothing needs reading. `files` have
        relpath, size, mtime_ns, ino and ctime_ns."""
        if self.manifest is None or settings != self.settings or len(files) != len(self._entries):
            return False
        for f in files:
            entry = self._entries.get(f.relpath)
            if entry is None or f.mtime_ns >= self._cutoff or entry.key != StatKey(f.size, f.mtime_ns, f.ino, f.ctime_ns):
                return False
        return True

    def derived(self, key: bytes) -> Any:
        """What was computed from a set of objects (e.g. a DICOM series' metadata), keyed by their ids."""
        return self._derived.get(key)

    def save(self, entries: dict[str, CacheEntry], scan_started: int, derived: dict[bytes, Any] | None = None,
             manifest: bytes | None = None, settings: Any = None) -> None:
        """Replace the cache; `scan_started` is `fs_clock` taken before the files were stat'ed."""
        doc = {
            "format": CACHE_FORMAT,
            "scan_started": scan_started,
            "manifest": manifest,
            "settings": settings,
            "derived": derived or {},
            "entries": {
                p: [[e.key.size, e.key.mtime_ns, e.key.ino, e.key.ctime_ns], e.oid, e.role, e.info]
                for p, e in entries.items()
            },
        }
        atomic_write(self.path, msgpack.packb(doc, use_bin_type=True))
