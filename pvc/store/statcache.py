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

CACHE_FORMAT = 3


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
    """Loaded once per command; `save` replaces the file atomically.

    The file keeps the stats (four integers a path) apart from what hashing gave (ids, roles, infos),
    which is decoded only when a lookup needs it: the stat-only clean path reads just the stats.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stats: dict[str, list] = {}
        self._results_raw = b""
        self._results: dict[str, list] | None = None
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
            self._stats = doc["stats"]
            self._results_raw = doc["results"]
            self.manifest, self.settings = doc.get("manifest"), doc.get("settings")
        except Exception:  # missing or damaged: start empty, the next save rewrites it
            self._stats, self._results_raw = {}, b""

    def _decoded(self) -> dict[str, list]:
        if self._results is None:
            try:
                doc = msgpack.unpackb(self._results_raw, raw=False, strict_map_key=False) if self._results_raw else {}
                self._results = doc.get("entries", {})
                self._derived = {bytes(k): v for k, v in doc.get("derived", {}).items()}
            except Exception:
                self._stats, self._results, self._derived = {}, {}, {}
        return self._results

    def get(self, relpath: str, key: StatKey, role: str) -> CacheEntry | None:
        stat = self._stats.get(relpath)
        if stat is None or key.mtime_ns >= self._cutoff or stat != [key.size, key.mtime_ns, key.ino, key.ctime_ns]:
            return None
        result = self._decoded().get(relpath)
        if result is None or result[1] != role:
            return None
        return CacheEntry(key, bytes(result[0]), result[1], result[2])

    def unchanged(self, files: list, settings: Any) -> bool:
        """True when the project is exactly the files these entries describe, none touched since:
        then it is the manifest recorded with them, and nothing needs reading. `files` have
        relpath, size, mtime_ns, ino and ctime_ns."""
        if self.manifest is None or settings != self.settings or len(files) != len(self._stats):
            return False
        stats, cutoff = self._stats, self._cutoff
        for f in files:
            if f.mtime_ns >= cutoff or stats.get(f.relpath) != [f.size, f.mtime_ns, f.ino, f.ctime_ns]:
                return False
        return True

    def derived(self, key: bytes) -> Any:
        """What was computed from a set of objects (e.g. a DICOM series' metadata), keyed by their ids."""
        self._decoded()
        return self._derived.get(key)

    def save(self, entries: dict[str, CacheEntry], scan_started: int, derived: dict[bytes, Any] | None = None,
             manifest: bytes | None = None, settings: Any = None) -> None:
        """Replace the cache; `scan_started` is `fs_clock` taken before the files were stat'ed."""
        results = {"derived": derived or {}, "entries": {p: [e.oid, e.role, e.info] for p, e in entries.items()}}
        doc = {
            "format": CACHE_FORMAT,
            "scan_started": scan_started,
            "manifest": manifest,
            "settings": settings,
            "stats": {p: [e.key.size, e.key.mtime_ns, e.key.ino, e.key.ctime_ns] for p, e in entries.items()},
            "results": msgpack.packb(results, use_bin_type=True),
        }
        atomic_write(self.path, msgpack.packb(doc, use_bin_type=True))
