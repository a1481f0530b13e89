"""The stat cache `.pvc/index`: path -> (size, mtime, inode, ctime) and what hashing the file gave.

Only an optimisation: deleting it changes how long a commit takes, never its result. An entry is trusted
only when the file's stat is unchanged and its mtime is older than the cache file's own mtime; a file
modified in the same clock tick as the cache was written ("racy", as git calls it) is hashed again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack

from pvc.store.atomic import atomic_write

__all__ = ["StatKey", "CacheEntry", "StatCache"]

CACHE_FORMAT = 1


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
        self._cutoff = 0
        self._load()

    def _load(self) -> None:
        try:
            self._cutoff = self.path.stat().st_mtime_ns
            doc = msgpack.unpackb(self.path.read_bytes(), raw=False, strict_map_key=False)
            if doc.get("format") != CACHE_FORMAT:
                return
            self._entries = {
                p: CacheEntry(StatKey(*e[0]), bytes(e[1]), e[2], e[3]) for p, e in doc["entries"].items()
            }
        except Exception:  # missing or damaged: start empty, the next save rewrites it
            self._entries = {}

    def get(self, relpath: str, key: StatKey, role: str) -> CacheEntry | None:
        entry = self._entries.get(relpath)
        if entry is None or entry.key != key or entry.role != role or key.mtime_ns >= self._cutoff:
            return None
        return entry

    def save(self, entries: dict[str, CacheEntry]) -> None:
        doc = {
            "format": CACHE_FORMAT,
            "entries": {
                p: [[e.key.size, e.key.mtime_ns, e.key.ino, e.key.ctime_ns], e.oid, e.role, e.info]
                for p, e in entries.items()
            },
        }
        atomic_write(self.path, msgpack.packb(doc, use_bin_type=True))
