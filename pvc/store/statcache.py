"""The stat cache `.pvc/index`: path -> (size, mtime, inode, ctime) and what hashing the file gave.

Only an optimisation: deleting it changes how long a commit takes, never its result. An entry is trusted
only when the file's stat is unchanged and its mtime and ctime are older than the moment the scan that recorded it
began, read from the file system's own clock (`fs_clock`). A file modified during or after that scan,
even within the same clock tick and without changing size ("racy", as git calls it), is hashed again.

Along with the entries it keeps the manifest they produced and, when no entry was racy, `tree`: the digest
of the scan's stat records (pvc/project/walk.py). A later scan with the same digest saw the same files with
the same stats, so the project is still that manifest: `status` and `commit` then read nothing else.

And `base`: a committed manifest, the settings it was built with, and the paths that may differ from it (`dirty`):
every entry not named there is that file as the manifest records it. A commit saves an empty list; a status that
saves its entries adds what it hashed and what is gone. `status` after a small change works from these paths and
the walk's (pvc/core/capture/delta.py) instead of the whole project.
"""

from __future__ import annotations

import os
import sys
from array import array
from bisect import bisect_left
from itertools import accumulate
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import msgpack

from pvc.record import record
from pvc.store.atomic import atomic_write, mount_token, sync_file_system
from pvc.store.clock import fs_clock

try:  # built from pvc/_walk.c at install; without it the stats are compared in Python (slower, same results)
    from pvc import _walk
except ImportError:  # pragma: no cover - depends on the install
    _walk = None
try:  # pvc/_pages.c; without it the results are read in Python
    from pvc import _pages
except ImportError:  # pragma: no cover - depends on the install
    _pages = None

__all__ = ["StatKey", "CacheEntry", "StatCache", "fs_clock", "pack_info", "unpack_info", "raw_is_invalid"]

CACHE_FORMAT = 7  # 7: the stats as fixed-width columns (the paths one string, each stat 64-bit, byte-shuffled), read
# without making a Python object a file; 6: stats and results compressed, by column, in one order of paths (written
# once), the ids left to the manifest when it is in the store (still read: its stats are turned into columns as they
# are decoded, and the next save writes format 7); 5: every info canonical, as capture computes it
UNSYNCED_FORMAT = 8  # a format-7 body whose files may not be on disk yet (a clone's checkout): the head names the
# boot and the mount it was written in, and the cache vouches for nothing in another, and in that one only after a
# syncfs
_READ_FORMATS = (6, CACHE_FORMAT, UNSYNCED_FORMAT)


@record(frozen=True, slots=True)
class StatKey:
    size: int
    mtime_ns: int
    ino: int
    ctime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> StatKey:
        return cls(st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)


_NIL = b"\xc0"  # msgpack's nil: the info of a file that means nothing on its own
_INVALID = b"\xa7invalid"  # msgpack's "invalid" (a fixstr): in the bytes of every info a commit refuses


def pack_info(info: Any) -> bytes:
    """An info (canonical already: keys sorted at every depth) as the msgpack bytes the cache stores it as."""
    return _NIL if info is None else msgpack.packb(info, use_bin_type=True)


def unpack_info(raw: bytes) -> Any:
    return None if raw == _NIL else msgpack.unpackb(raw, raw=False, strict_map_key=False)


def raw_is_invalid(raw: bytes) -> bool:
    """Whether the info in `raw` is {"invalid": reason, ...} (decoded only when the bytes may say so)."""
    if _INVALID not in raw:
        return False
    info = unpack_info(raw)
    return isinstance(info, dict) and "invalid" in info


class CacheEntry:
    """One file's entry: its stat, blob id, role and info. The info is kept as its msgpack bytes (`raw`, what the
    cache file holds, a few dozen bytes) rather than a tree of Python objects (an annotation summary's dicts cost
    ~1 KB a file), and decoded when asked for (`info`): a capture holds one entry per file of the project until
    it saves them."""

    __slots__ = ("size", "mtime_ns", "ino", "ctime_ns", "oid", "role", "raw")  # the stat flat: no StatKey a file

    def __init__(self, key: StatKey, oid: bytes, role: str, info: Any = None, *, raw: bytes | None = None) -> None:
        self.size, self.mtime_ns, self.ino, self.ctime_ns = key.size, key.mtime_ns, key.ino, key.ctime_ns
        self.oid, self.role = oid, role
        self.raw = raw if raw is not None else pack_info(info)

    @classmethod
    def of(cls, f: Any, oid: bytes, role: str, raw: bytes) -> CacheEntry:
        """The entry of file `f` (with size, mtime_ns, ino, ctime_ns) whose info is `raw`."""
        entry = cls.__new__(cls)
        entry.size, entry.mtime_ns, entry.ino, entry.ctime_ns = f.size, f.mtime_ns, f.ino, f.ctime_ns
        entry.oid, entry.role, entry.raw = oid, role, raw
        return entry

    @classmethod
    def of_stat(cls, stat: tuple[int, int, int, int], oid: bytes, role: str, raw: bytes) -> CacheEntry:
        """The entry of a file whose (size, mtime_ns, inode, ctime_ns) is `stat` and whose info is `raw` (no StatKey
        made: a clone's seed makes one entry a file of the version)."""
        entry = cls.__new__(cls)
        entry.size, entry.mtime_ns, entry.ino, entry.ctime_ns = stat
        entry.oid, entry.role, entry.raw = oid, role, raw
        return entry

    @property
    def key(self) -> StatKey:
        return StatKey(self.size, self.mtime_ns, self.ino, self.ctime_ns)

    @property
    def info(self) -> Any:
        return unpack_info(self.raw)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CacheEntry) and (self.key, self.oid, self.role, self.raw) == (
            other.key, other.oid, other.role, other.raw)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"CacheEntry({self.key!r}, {self.oid.hex()[:12]}, {self.role!r}, {self.info!r})"


class StatCache:
    """Loaded once per command; `save` replaces the file atomically.

    The file is two msgpack documents. The head is the tree record: the digest of a settled scan's stat
    records and the manifest, settings and objects per class of the project that scan saw; the stat-only
    paths read nothing else. The body keeps the stats (four integers a path) and what hashing gave (ids,
    roles, infos) as two separately encoded and compressed parts, by column, in one order of paths (written once),
    read only when a lookup needs them: a lookup keeps one entry per file asked about (its info as bytes, sliced
    out of the part), never a decoded copy of the whole cache.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._doc: dict | None = None
        self._derived: dict[bytes, Any] | None = None
        self._served = 0  # entries the last get_all vouched for
        self._stats_count: int | None = None  # stat entries the file holds, once counted
        self._columns: tuple | None = None  # the stats part decoded: (paths as one NUL-separated UTF-8 string, and
        # the sizes, mtimes, inodes, ctimes as arrays of 64-bit integers), no object a file
        self._path_list: list[str] | None = None  # the paths as a list, made when a lookup by path needs it
        self._position: dict[str, int] | None = None  # path -> its place in the columns, once a lookup needs it
        self._in_order = False  # the columns' paths are in path order (pvc/_walk.c's comparison found them so)
        self._matched: tuple | None = None  # (files, what _matching found for them): the last answer
        self._compared: tuple | None = None  # (walk, what walk_differences found for it): the last answer
        self._changed: tuple[dict[str, tuple], set[str], dict[str, int]] | None = None  # `changes`, read once
        self._broken = False  # the stats part could not be decoded
        self._format = CACHE_FORMAT  # the body's, once read
        # manifest id -> {path: blob id} of its files, for a body that leaves the ids to its manifest (set by capture,
        # which has the store); None: such a body vouches for nothing
        self.file_ids: Callable[[bytes], dict[str, bytes]] | None = None
        self.tree: bytes | None = None
        self.tree_manifest: bytes | None = None
        self.tree_settings: Any = None
        self.classes: dict[str, int] = {}  # objects per class in `tree_manifest`
        self._synced: dict[str, bool] = {}  # mount token of an unsynced cache -> whether its files are durable now
        try:
            with open(path, "rb") as f:
                head = msgpack.Unpacker(f, raw=False, read_size=16384).unpack()
            if self._body_format(head) is not None and head.get("tree") is not None:
                self.tree, self.tree_manifest = bytes(head["tree"]), bytes(head["manifest"])
                self.tree_settings, self.classes = head["settings"], dict(head["classes"])
        except Exception:  # missing or damaged: start empty, the next save rewrites it
            self.tree = None

    def _body_format(self, head: dict) -> int | None:
        """The format of the body under `head`, or None when the cache vouches for nothing: a format this pvc does
        not read, or an unsynced cache (UNSYNCED_FORMAT) written in another boot or another mount of the project's
        file system (a crash, or a device that dropped, may have left its files short on disk), or whose files a
        syncfs could not make durable now. That syncfs (of the project's file system, and of the store's where it is
        another) runs once per reading, the first time an unsynced cache of this mount is read: what the kernel has
        not written back yet is written then."""
        found = head.get("format")
        if found != UNSYNCED_FORMAT:
            return found if found in _READ_FORMATS else None
        token = head.get("written_in")
        if not isinstance(token, str):
            return None
        if token not in self._synced:
            root = self.path.parent.parent
            self._synced[token] = token == mount_token(root) and sync_file_system(root, self.path.parent)
        return CACHE_FORMAT if self._synced[token] else None

    @property
    def _index(self) -> dict:
        if self._doc is None:
            try:
                with open(self.path, "rb") as f:  # read as it is decoded: no copy of the whole file held beside it
                    size = os.fstat(f.fileno()).st_size
                    unpacker = msgpack.Unpacker(f, raw=False, strict_map_key=False, max_buffer_size=max(size, 1 << 20),
                                                read_size=1 << 20)
                    head, doc = unpacker.unpack(), unpacker.unpack()
                body_format = self._body_format(head)
                if body_format is None:
                    raise ValueError("older format, or files not known to be on disk")
                self._format = body_format
                int(doc["scan_started"])
                if not isinstance(doc["stats"], bytes) or not isinstance(doc["results"], bytes):
                    raise ValueError("stats and results are bin")
                self._doc = doc
            except Exception:  # missing or damaged: start empty, the next save rewrites it
                self._doc = {"scan_started": 0, "stats": b"", "results": b""}
        return self._doc

    @property
    def manifest(self) -> bytes | None:
        """What these entries (all of them, unchanged) produced; None when their stats cannot be read, for then
        nothing tells which files are gone (an emptied tree would match it)."""
        if self._index.get("stats") and not self._decoded():
            return None
        return self._index.get("manifest")

    @property
    def settings(self) -> Any:
        return self._index.get("settings")

    @property
    def pages(self) -> dict[bytes, list]:
        """The pages the capture that saved these entries built or took, by the digest of what each was made of
        (pvc/core/capture/build.py, PageReuse): [first key, page id, entries, objects per class, problems]."""
        pages = self._index.get("pages")
        if not isinstance(pages, dict):
            return {}
        return {bytes(k): v for k, v in pages.items() if isinstance(k, bytes) and _page_record(v)}

    @property
    def base(self) -> tuple[bytes, Any, list[str]] | None:
        """(committed manifest, its settings, the paths that may differ from it) or None: see the module's text. None
        too when the stats cannot be read: the paths gone since could not be told."""
        record = self._index.get("base")
        if self._index.get("stats"):
            self._decoded()
        if self._broken:
            return None
        if not (isinstance(record, list) and len(record) == 3 and isinstance(record[0], bytes)
                and len(record[0]) == 32 and isinstance(record[2], list)
                and all(isinstance(p, str) for p in record[2])):
            return None
        return record[0], record[1], record[2]

    @property
    def _changes(self) -> tuple[dict[str, tuple], set[str], dict[str, int]]:
        """What `save_changes` added after the columns: path -> (size, mtime_ns, ino, ctime_ns, role, info bytes,
        blob id or None, cutoff), the column paths gone since, and the place of each added path after the columns'.
        A damaged record: the cache vouches for nothing."""
        if self._changed is None:
            entries: dict[str, tuple] = {}
            dropped: set[str] = set()
            record = self._index.get("changes")
            if record is not None:
                try:
                    for e in record["entries"]:
                        path, size, mtime, ino, ctime, role, raw, oid, cutoff = e
                        if not (isinstance(path, str) and isinstance(role, str) and isinstance(raw, bytes)
                                and all(type(v) is int for v in (size, mtime, ino, ctime, cutoff))
                                and (oid is None or (isinstance(oid, bytes) and len(oid) == 32))):
                            raise ValueError("changes: malformed entry")
                        entries[path] = (size, mtime, ino, ctime, role, raw, oid, cutoff)
                    dropped = set(record["gone"])
                    if not all(isinstance(p, str) for p in dropped):
                        raise ValueError("changes: malformed path")
                except Exception:
                    self._doc = {"scan_started": 0, "stats": b"", "results": b""}
                    entries, dropped = {}, set()
            self._changed = (entries, dropped, {p: j for j, p in enumerate(entries)})
        return self._changed

    def differences(self, files: list) -> tuple[list[int], list[str]]:
        """The positions in `files` of those the cache does not vouch for (new, changed or racy), and the cached
        paths that are not among `files` (gone)."""
        found, _, count = self._matching(files)
        walked = {f.relpath for f in files} if count != len(files) or None in found else None
        return [i for i, k in enumerate(found) if k is None], self.gone(walked) if walked is not None else []

    def read_ahead(self) -> None:
        """Decode now what a capture of a changed tree reads first, the stats part and its paths (the entry point
        calls it while the walk runs, leaving it less to do after)."""
        if self._index.get("stats") and self._decoded():
            self._paths

    def walk_differences(self, walked: Any) -> tuple[list[int], list[str]]:
        """`differences(walked.files)` of a walk (pvc/core/capture/walk.py): from the C walk's records, compared with
        the columns in pvc/_walk.c where it has them, making no object a file. The answer for one walk is kept: a
        capture asks whether nothing changed, and then the build from the change asks what did."""
        if self._compared is not None and self._compared[0] is walked:
            return self._compared[1]
        found = self._native_differences(walked) if walked.records is not None and _walk is not None else None
        if found is None:
            found = self.differences(walked.files)
        self._compared = (walked, found)
        return found

    def _native_differences(self, walked: Any) -> tuple[list[int], list[str]] | None:
        """None where the columns cannot be merged with the walk (empty, damaged, not in path order)."""
        raw = self._index["stats"]
        if not raw or not self._decoded() or not -(1 << 63) <= self._cutoff < 1 << 63:
            return None  # (a cutoff no 64-bit clock gives: a damaged file, which the Python comparison reads as it is)
        got = _walk.compare(walked.records, walked.at, *self._columns, self._cutoff)
        if got is None:
            return None
        changed, missing = got
        self._in_order = True
        self._stats_count = self._count()
        changes, dropped, _ = self._changes
        paths = self._paths if missing else []
        if not changes and not dropped:
            return changed, [paths[k] for k in missing]
        marked = set(changed)  # the entries saved since the columns take their paths' places
        for rel in dropped.union(changes):
            i = walked.index(rel)
            if i is None:
                continue
            e = changes.get(rel)
            if e is not None and _later_vouches(e, walked.file(i)):
                marked.discard(i)
            else:
                marked.add(i)
        gone = [p for k in missing if (p := paths[k]) not in dropped and p not in changes]
        return sorted(marked), gone + [p for p in changes if walked.index(p) is None]

    def _decoded(self) -> bool:
        """Decode the stats part once (False: damaged, and then it matches nothing)."""
        if self._columns is None and not self._broken:
            try:
                raw = _unpacked(self._index["stats"])
                self._columns = _columns(raw) if self._format == CACHE_FORMAT else _columns_6(raw)
            except Exception:
                self._stats_count, self._broken = 0, True
        return self._columns is not None

    @property
    def _paths(self) -> list[str]:
        """The columns' paths as a list (after `_decoded`), made once."""
        if self._path_list is None:
            blob = self._columns[0]
            self._path_list = blob.decode("utf-8").split("\0") if blob else []
        return self._path_list

    def gone(self, walked: dict) -> list[str]:
        """The cached paths not in `walked` (paths as keys), after a lookup (`get_all`) read the stats."""
        paths = self._paths if self._columns is not None else []
        changes, dropped, _ = self._changes
        if not changes and not dropped:
            return [p for p in paths if p not in walked]
        return ([p for p in paths if p not in walked and p not in dropped and p not in changes]
                + [p for p in changes if p not in walked])

    @property
    def _cutoff(self) -> int:
        return int(self._index["scan_started"])

    def _matching(self, files: list) -> tuple[list[int | None], list[str], int]:
        """For each of `files`, the position of its entry if the cache holds its stat, unchanged and older than the
        cutoff (else None); the cache's paths in their order; and how many entries it holds. Damaged stats match
        nothing. The answer for one list of files is kept: a capture asks `unchanged`, `differences` and `get_all`
        of the same walk."""
        if self._matched is not None and self._matched[0] is files:
            return self._matched[1]
        raw, cutoff = self._index["stats"], self._cutoff
        found: list[int | None] = [None] * len(files)
        if not raw:
            if self._stats_count is None:
                self._stats_count = 0
            return found, [], self._stats_count
        if not self._decoded():
            return found, [], 0
        _, sizes, mtimes, inodes, ctimes = self._columns
        paths = self._paths
        if 8 * len(files) < len(paths):  # a few files asked of many: each looked up
            pairs = ((i, self._place(f.relpath)) for i, f in enumerate(files))
        else:
            at = {f.relpath: i for i, f in enumerate(files)}
            pairs = ((at.get(rel), k) for k, rel in enumerate(paths))
        for i, k in pairs:
            if i is not None and k is not None:
                f = files[i]
                if (f.mtime_ns < cutoff and f.ctime_ns < cutoff and f.size == sizes[k] and f.mtime_ns == mtimes[k]
                        and f.ino == inodes[k] and f.ctime_ns == ctimes[k]):
                    found[i] = k
        changes, dropped, order = self._changes
        if changes or dropped:  # the entries saved since the columns take their paths' places
            for i, f in enumerate(files):
                rel = f.relpath
                e = changes.get(rel)
                if e is not None:
                    found[i] = len(paths) + order[rel] if _later_vouches(e, f) else None
                elif rel in dropped:
                    found[i] = None
        count = self._stats_count = self._count()
        result = (found, paths, count)
        self._matched = (files, result)
        return result

    def _count(self) -> int:
        """How many entries the cache holds: the columns', those saved after them taking their paths' places."""
        changes, dropped, _ = self._changes
        return (len(self._columns[1]) + len(changes)
                - sum(1 for p in dropped.union(changes) if self._place(p) is not None))

    def _place(self, path: str) -> int | None:
        """The position of `path` in the columns, or None: by bisection where the C comparison found them in path
        order (no map of every path to make), else from a map made once."""
        paths = self._paths
        if self._in_order:
            k = bisect_left(paths, path)
            return k if k < len(paths) and paths[k] == path else None
        if self._position is None:
            self._position = {rel: k for k, rel in enumerate(paths)}
        return self._position.get(path)

    def _results(self, wanted: dict[int, int], paths: list[str]) -> list[tuple[int, bytes, str, bytes]]:
        """(index of the file, blob id, role, info bytes) of the entries at the positions `wanted` names (position
        -> index of the file), each info sliced out of the part as bytes, never decoded here; the derived map is
        decoded on the way. The ids are the part's, or, where it left them to its manifest, `file_ids`'. Damage
        anywhere in the part: nothing (as a cache that cannot be read vouches for nothing)."""
        changes, _, order = self._changes
        later = {k: i for k, i in wanted.items() if k >= len(paths)}  # entries saved after the columns
        if later:
            wanted = {k: i for k, i in wanted.items() if k < len(paths)}
            names = list(order)
            taken = [(i, changes[names[k - len(paths)]], names[k - len(paths)]) for k, i in later.items()]
            of_source = (self.file_ids(self._ids_source) if self.file_ids and any(e[6] is None for _, e, _ in taken)
                         else {})
            later_found = [(i, oid, e[4], e[5]) for i, e, path in taken
                           if (oid := e[6] if e[6] is not None else of_source.get(path)) is not None]
        else:
            later_found = []
        raw = self._index["results"]
        if not raw:
            if self._derived is None:
                self._derived = {}
            return later_found
        found: list[tuple[int, bytes, str, bytes]] = later_found
        try:
            data = _unpacked(raw)
            parts = _results_7 if self._format == CACHE_FORMAT else _results_6
            derived, roles, infos, ids = parts(data, wanted, len(paths))
            if ids is not None and (len(ids) % 32 or (paths and len(ids) != 32 * len(paths))):
                raise ValueError("results: not one id per path")
            of_manifest = self.file_ids(self._ids_source) if ids is None and self.file_ids and wanted else {}
            for k, i in wanted.items():
                oid = ids[32 * k : 32 * k + 32] if ids is not None else of_manifest.get(paths[k])
                if oid is not None and k in infos:
                    found.append((i, oid, roles[k], infos[k]))
        except Exception:
            self._derived = {}
            return []
        if self._derived is None:
            self._derived = derived or {}
        return found

    @property
    def _ids_source(self) -> bytes | None:
        """The manifest whose files map gives the ids the body leaves out: the last commit that saved it."""
        return self._index.get("ids_from") or self._index.get("manifest")

    def vouched_entries(self, files: list) -> dict[str, CacheEntry]:
        """{path: entry} of each of `files` the cache vouches for, with the role it recorded (for a save of every
        entry after a build that looked up only the changed files, whose other files kept their roles)."""
        found, paths, _ = self._matching(files)
        wanted = {k: i for i, k in enumerate(found) if k is not None}
        out = {}
        for i, oid, role, raw in sorted(self._results(wanted, paths)):
            if isinstance(oid, bytes) and len(oid) == 32:
                out[files[i].relpath] = CacheEntry.of(files[i], oid, role, raw)
        return out

    def get(self, relpath: str, key: StatKey, role: str) -> CacheEntry | None:
        """The entry of `relpath` if its stat `key` and `role` are what the cache vouches for (the rule of `get_all`)."""
        probe = SimpleNamespace(relpath=relpath, size=key.size, mtime_ns=key.mtime_ns, ino=key.ino, ctime_ns=key.ctime_ns)
        return self.get_all([probe], {relpath: role})[0]

    def get_all(self, files: list, roles: dict[str, str]) -> list[CacheEntry | None]:
        """For each of `files` (with relpath, size, mtime_ns, ino, ctime_ns), its entry if the file's stat is the
        entry's, its mtime older than the cutoff of the scan that saved it, and its role the one in `roles`; else None."""
        found, paths, _ = self._matching(files)
        out: list[CacheEntry | None] = [None] * len(files)
        wanted = {k: i for i, k in enumerate(found) if k is not None}
        for i, oid, role, raw in self._results(wanted, paths):
            f = files[i]
            if role == roles[f.relpath] and isinstance(oid, bytes) and len(oid) == 32:
                out[i] = CacheEntry.of(f, oid, role, raw)
        self._served = sum(1 for e in out if e is not None)
        return out

    def may_vouch_for(self, manifest: bytes, settings: Any) -> bool:
        """Whether the tree record is about `manifest` (made with `settings`): worth scanning to compare."""
        return self.tree is not None and manifest == self.tree_manifest and settings == self.tree_settings

    def vouches_for(self, manifest: bytes, settings: Any, tree: bytes | None) -> bool:
        """True when a scan whose stat records have digest `tree` saw the project that produced `manifest`."""
        return tree is not None and tree == self.tree and self.may_vouch_for(manifest, settings)

    def holds(self, entries: dict[str, CacheEntry], manifest: bytes, settings: Any) -> bool:
        """True when saving `entries` (all taken from this cache by the last `get_all`) with `manifest` would say
        what it says: as many entries as it holds, every one of them served by it."""
        if manifest != self.manifest or settings != self.settings:
            return False
        if self._stats_count is None:
            self._matching([])
        return len(entries) == self._stats_count == self._served

    def derived(self, key: bytes) -> Any:
        """What was computed from a set of objects (e.g. a DICOM series' metadata), keyed by their ids."""
        if self._derived is None:
            self._results({}, [])
        return self._derived.get(key)

    def derived_map(self) -> dict[bytes, Any]:
        """The whole derived map, as read."""
        if self._derived is None:
            self._results({}, [])
        return dict(self._derived or {})

    def release(self) -> None:
        """Let go of the entries' bytes as read from the file (~190 bytes a file) once a capture has looked its files
        up: they would otherwise be held beside the entries it builds and saves. Later lookups find nothing (a cost,
        never a wrong answer); the manifest, settings, pages, counts and derived map read so far stay."""
        if self._doc is not None:
            if self._stats_count is None:
                self._matching([])
            if self._derived is None:
                self._results({}, [])
            self._doc = self._doc | {"stats": b"", "results": b""}
            self._columns = self._path_list = self._position = self._matched = self._compared = None
            self._in_order = False

    def save(self, entries: dict[str, CacheEntry], scan_started: int, derived: dict[bytes, Any] | None = None,
             manifest: bytes | None = None, settings: Any = None, tree: bytes | None = None,
             classes: dict[str, int] | None = None, pages: dict[bytes, list] | None = None,
             ids_in_manifest: bool = False, base: tuple[bytes, Any, list[str]] | None = None,
             unsynced: str | None = None) -> None:
        """Replace the cache; `scan_started` is `fs_clock` taken before the files were stat'ed; `tree` the
        digest of that scan's stat records (only if none of them is racy) and `classes` the manifest's counts;
        `pages` what that manifest's pages were built from (kept only along with a manifest). `ids_in_manifest`:
        `manifest` is in the store and lists every entry's file with its id, so the ids are not written (a reader
        takes them from the manifest's pages through `file_ids`). `base`: see the module's text. `unsynced`: the
        files' mount token (atomic.mount_token), when they may not be on disk yet (a clone's checkout, see
        `_body_format`).

        Encoded by column, the infos spliced in as the bytes they are kept as, each part compressed, and written part
        by part: no map of every entry, no decoded copy of the infos."""
        values = entries.values()
        columns = [_column([getattr(e, name) for e in values], code)
                   for name, code in zip(("size", "mtime_ns", "ino", "ctime_ns"), _CODES)]
        stats = _stats_frame(_path_pieces(list(entries)), columns)
        with_ids = not (ids_in_manifest and manifest is not None)
        results = _results_frame(derived or {}, [e.role for e in values], [e.raw for e in values],
                                 [e.oid for e in values] if with_ids else None)
        recorded = tree is not None and manifest is not None
        head = (self._head(tree, manifest, settings, classes or {}, unsynced) if recorded
                else self._head(None, None, None, {}, unsynced))
        parts = [head, pack_map_header(7), _pack("base"), _pack(list(base) if base is not None else None),
                 _pack("scan_started"), _pack(scan_started), _pack("manifest"), _pack(manifest),
                 _pack("settings"), _pack(settings), _pack("stats"), _bin_header(len(stats)), stats,
                 _pack("results"), _bin_header(len(results)), results, _pack("pages"),
                 _pack((pages or {}) if manifest is not None else {})]
        atomic_write(self.path, parts)
        self._forget()

    def save_changes(self, entries: dict[str, CacheEntry], gone: list[str], scan_started: int, manifest: bytes,
                     settings: Any, *, base: tuple[bytes, Any, list[str]] | None, ids_in_manifest: bool = False,
                     tree: bytes | None = None, classes: dict[str, int] | None = None) -> bool:
        """Save `entries` (new or changed files) and `gone` (paths no longer there) after the columns, which are
        kept as the bytes they are: a save that costs what the change costs. `ids_in_manifest`: `manifest` is in the
        store and lists every file with its id (a commit's), so the ids are left out and read from it. False when
        the body holds too many such entries already, or nothing to keep them beside: then `save` them all."""
        doc = self._index
        if not doc.get("stats") or not doc.get("results"):
            return False
        old, dropped, _ = self._changes
        merged, dropped = dict(old), set(dropped)
        for path in gone:
            merged.pop(path, None)
            dropped.add(path)
        for path, e in entries.items():
            merged[path] = (e.size, e.mtime_ns, e.ino, e.ctime_ns, e.role, e.raw, None if ids_in_manifest else e.oid,
                            scan_started)
            dropped.discard(path)
        if self._stats_count is None:
            self._matching([])
        if len(merged) + len(dropped) > max(1000, (self._stats_count or 0) // 8):
            return False
        ids_from = manifest if ids_in_manifest else self._ids_source  # what the ids left out come from
        body = {"base": list(base) if base is not None else None, "scan_started": doc["scan_started"],
                "manifest": manifest, "settings": settings, "stats": self._current_stats(),
                "results": self._current_results(),
                "pages": {}, "ids_from": ids_from,  # (a page record vouches for its files under the columns'
                # cutoff, which an entry saved here no longer shares: the records go, the next full build makes new)
                "changes": {"entries": [[p, *e] for p, e in merged.items()], "gone": sorted(dropped)}}
        recorded = tree is not None
        head = self._head(tree, manifest, settings, classes or {}) if recorded else self._head(None, None, None, {})
        atomic_write(self.path, [head, msgpack.packb(body, use_bin_type=True)])
        self._forget()
        if recorded:
            self.tree, self.tree_manifest, self.tree_settings, self.classes = tree, manifest, settings, classes or {}
        return True

    def _current_stats(self) -> bytes:
        """The stats part as this format writes it (a format 6 body's converted; damaged: none, which vouches for
        nothing)."""
        raw = self._index["stats"]  # (read first: it sets the body's format)
        if self._format == CACHE_FORMAT or not raw:
            return raw
        if not self._decoded():
            return b""
        blob, *columns = self._columns
        return _stats_frame([blob], [_shuffled(c) for c in columns])

    def _current_results(self) -> bytes:
        """The results part as this format writes it (a format 6 body's converted; damaged: none)."""
        raw = self._index["results"]  # (read first: it sets the body's format)
        if self._format == CACHE_FORMAT or not raw:
            return raw
        try:
            count = len(self._columns[1]) if self._index.get("stats") and self._decoded() else 0
            derived, roles, infos, ids = _results_6(_unpacked(raw), None, count)  # every entry, its info's bytes
            ids = [ids[i : i + 32] for i in range(0, len(ids), 32)] if ids is not None else None
            return _results_frame(derived, [roles[k] for k in range(len(infos))], [infos[k] for k in range(len(infos))],
                                  ids)
        except Exception:
            return b""

    def _forget(self) -> None:
        """Drop what was read or worked out from the file: the next question reads it again."""
        self._doc, self._derived, self._served, self._stats_count = None, None, 0, None
        self._columns = self._path_list = self._position = self._matched = self._changed = self._compared = None
        self._in_order = False
        self._broken = False

    def save_tree(self, tree: bytes, manifest: bytes, settings: Any, classes: dict[str, int]) -> None:
        """Record that a settled scan whose stat records have digest `tree` saw the project `manifest`;
        the entries stay as they are on disk (call with the repository lock held)."""
        self._forget()  # the entries as they are on disk now
        doc = self._index
        if not doc.get("stats") and not doc.get("results"):
            return  # no entries to keep beside it: the next full scan records both
        doc = doc | {"stats": self._current_stats(), "results": self._current_results()}
        atomic_write(self.path, self._head(tree, manifest, settings, classes) + msgpack.packb(doc, use_bin_type=True))
        self.tree, self.tree_manifest, self.tree_settings, self.classes = tree, manifest, settings, classes

    def _head(self, tree: bytes | None, manifest: bytes | None, settings: Any, classes: dict,
              unsynced: str | None = None) -> bytes:
        head = {"format": CACHE_FORMAT, "tree": tree, "manifest": manifest, "settings": settings, "classes": classes}
        if unsynced is not None:
            head |= {"format": UNSYNCED_FORMAT, "written_in": unsynced}
        return msgpack.packb(head, use_bin_type=True)


def _length_header(n: int, fix: int | None, one: int | None, two: int, four: int) -> bytes:
    """msgpack's smallest header of a map, array or bin of `n` (entries, elements or bytes), as msgpack writes it:
    the fix form `fix | n` below 16 where the type has one, the 1-byte length form `one` below 256 where it has one,
    else the 2- or 4-byte length forms."""
    if fix is not None and n < 16:
        return bytes([fix | n])
    if one is not None and n < 1 << 8:
        return bytes([one, n])
    if n < 1 << 16:
        return bytes([two]) + n.to_bytes(2, "big")
    return bytes([four]) + n.to_bytes(4, "big")


def pack_map_header(n: int) -> bytes:
    return _length_header(n, 0x80, None, 0xDE, 0xDF)


def _bin_header(n: int) -> bytes:
    return _length_header(n, None, 0xC4, 0xC5, 0xC6)  # with use_bin_type


def _later_vouches(entry: tuple, f: Any) -> bool:
    """Whether an entry saved after the columns (`_changes`: size, mtime, inode, ctime, ..., its own cutoff) vouches for
    file `f`: the same stat, modified (its mtime and ctime) before the scan that saved it began."""
    return f.mtime_ns < entry[7] and f.ctime_ns < entry[7] and (f.size, f.mtime_ns, f.ino, f.ctime_ns) == entry[:4]


def _container_head(data: bytes, at: int, fix: int, wide: int) -> tuple[int, int]:
    """The length of the map (`fix` 0x80, `wide` 0xDE) or array (0x90, 0xDC) whose msgpack header starts at `at`, and
    where its elements start."""
    first = data[at]
    if fix <= first <= fix + 0x0F:
        return first & 0x0F, at + 1
    if first == wide:
        return int.from_bytes(data[at + 1 : at + 3], "big"), at + 3
    if first == wide + 1:
        return int.from_bytes(data[at + 1 : at + 5], "big"), at + 5
    raise ValueError("not the container expected")


def _spans(data: bytes, start: int, count: int) -> list[int]:
    """Where each of `count` msgpack objects read one after another from `start` begins, and where the last ends
    (pvc/_pages.c walks the bytes; without it, or where it is unsure, msgpack's Unpacker skips them one by one)."""
    found = _pages.objects(data, start, count) if _pages is not None else None
    if found is not None:
        return memoryview(found).cast("Q")  # read by index: no list of every position made
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=max(len(data), 1))
    unpacker.feed(memoryview(data)[start:])
    out = [start]
    for _ in range(count):
        unpacker.skip()
        out.append(start + unpacker.tell())
    return out


def _results_frame(derived: dict, roles: list[str], infos: list[bytes], ids: list[bytes] | None) -> bytes:
    """The results part, compressed (docs/format.md): the roles as numbers into their table, the infos as one string
    and the column of their lengths, the ids (32 bytes a path) unless they are left to the manifest. The strings are
    fed to the compressor a slice of entries at a time: the part is never held whole uncompressed."""
    table = sorted(set(roles))
    number = {role: n for n, role in enumerate(table)}
    role_of = _shuffled(array("H", [number[r] for r in roles]))
    lengths = array("I", map(len, infos))
    pieces = [pack_map_header(6 if ids is not None else 5), _pack("derived"), _pack(derived), _pack("roles"),
              _pack(table), _pack("role_of"), _bin_header(len(role_of)), role_of, _pack("infos"),
              _bin_header(sum(lengths)), *_joined(infos), _pack("lengths")]
    lengths = _shuffled(lengths)
    pieces += [_bin_header(len(lengths)), lengths]
    if ids is not None:
        pieces += [_pack("ids"), _bin_header(32 * len(ids)), *_joined(ids)]
    return _frame(pieces)


def _joined(strings: list[bytes], step: int = 4096) -> list[bytes]:
    """`strings` concatenated `step` at a time (a few hundred KB each, not one string of them all)."""
    return [b"".join(strings[i : i + step]) for i in range(0, len(strings), step)]


def _pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def _frame(pieces: list[bytes]) -> bytes:
    """One zstd frame (level 3, its size in the header) of the concatenation of `pieces`, compressed piece by piece.
    Level 3, not 9: a 20k clone's cache (5.2 MB of stats and results before compression, 1.3 MB of them blob ids)
    took 0.080 s to compress at 9 and 0.017 s at 3, for 2.35 MB instead of 2.20 MB."""
    import zstandard

    compressor = zstandard.ZstdCompressor(level=3).compressobj(size=sum(map(len, pieces)))
    out = [compressor.compress(piece) for piece in pieces]
    out.append(compressor.flush())
    return b"".join(out)


def _results_7(data: bytes, wanted: dict[int, int], count: int) -> tuple[dict, dict, dict, bytes | None]:
    """The results part (format 7): the derived map, {position: role} and {position: info bytes} of the `wanted`
    positions, and the ids (None where left to the manifest); `count` paths (0: not known, not checked). Each info is
    sliced out of one string where the sums of the lengths before it say: nothing is walked, nothing decoded."""
    doc = msgpack.unpackb(data, raw=False, strict_map_key=False)
    table, infos = doc["roles"], doc["infos"]
    role_of, ends = _unshuffled(doc["role_of"], "H"), array("Q", accumulate(_unshuffled(doc["lengths"], "I")))
    if not isinstance(table, list) or not isinstance(infos, bytes) or len(role_of) != len(ends):
        raise ValueError("results: not one entry per path")
    if (count and len(ends) != count) or (ends and ends[-1] != len(infos)):
        raise ValueError("results: not one entry per path")
    found = {}
    for k in wanted:
        if k < len(ends):
            start = ends[k - 1] if k else 0
            if start >= ends[k]:
                raise ValueError("results: an info of no bytes")
            found[k] = info = infos[start : ends[k]]
            _one_object(info)
    roles = {k: table[role_of[k]] for k in found}
    ids = doc.get("ids")
    return {bytes(k): v for k, v in doc["derived"].items()}, roles, found, ids


def _one_object(data: bytes) -> None:
    """ValueError unless `data` is exactly one msgpack object (an info cut where a damaged column of lengths says would
    otherwise be handed on as a file's info)."""
    if _pages is not None:
        spans = _pages.objects(data, 0, 1)
        if spans is None or memoryview(spans).cast("Q")[1] != len(data):
            raise ValueError("results: an info that is not one msgpack object")
    else:
        msgpack.unpackb(data, raw=False, strict_map_key=False)


def _results_6(data: bytes, wanted: dict[int, int] | None, count: int) -> tuple[dict, dict, dict, bytes | None]:
    """The results part as format 6 wrote it (a map of msgpack arrays: each info walked to, in C where it can be), read
    into what `_results_7` gives (`wanted` None: every entry)."""
    derived, roles, infos, ids = None, None, None, None
    parts, at = _container_head(data, 0, 0x80, 0xDE)
    spans = _spans(data, at, 2 * parts)  # the parts' names and values, one after the other
    if spans[-1] != len(data):
        raise ValueError("trailing bytes")
    for j in range(0, 2 * parts, 2):
        part = msgpack.unpackb(data[spans[j] : spans[j + 1]], raw=False)
        value = data[spans[j + 1] : spans[j + 2]]
        if part == "derived":
            derived = {bytes(k): v for k, v in _unpack(value).items()}
        elif part == "roles":
            roles = _unpack(value)
        elif part == "ids":
            ids = _unpack(value)
        elif part == "infos":  # each info sliced out as its bytes, the wanted ones only
            n, start = _container_head(data, spans[j + 1], 0x90, 0xDC)
            bounds = _spans(data, start, n)
            if bounds[-1] != spans[j + 2]:
                raise ValueError("infos: not one array")
            infos = {k: data[bounds[k] : bounds[k + 1]] for k in (range(n) if wanted is None else wanted) if k < n}
    if roles is None or infos is None or (count and len(roles) != count):
        raise ValueError("results: not one entry per path")
    return derived or {}, {k: roles[k] for k in infos}, infos, ids


def _unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


def _path_pieces(paths: list[str]) -> list[bytes]:
    """The paths as one NUL-separated UTF-8 string, in pieces of a few thousand paths (never one copy of them all)."""
    names = ["\0".join(paths[i : i + 4096]).encode("utf-8") for i in range(0, len(paths), 4096)]
    names[1:] = [b"\0" + chunk for chunk in names[1:]]
    return names


def _stats_frame(names: list[bytes], columns: list[bytes]) -> bytes:
    """The stats part, compressed: the msgpack array [paths, sizes, mtimes_ns, inodes, ctimes_ns], the paths one
    NUL-separated UTF-8 string (`names`: its pieces), each other column as `_column` gives it (docs/format.md)."""
    pieces = [b"\x95", _bin_header(sum(map(len, names))), *names]
    for column in columns:
        pieces += [_bin_header(len(column)), column]
    return _frame(pieces)


def _column(values: list[int], code: str) -> bytes:
    """One stats column: `values` as 64-bit little-endian integers, byte-shuffled. A value outside its type (a time
    past 2262, a stat no file system gives) is kept modulo 2**64: it then matches no file's stat in Python and the
    same one in C, which reads the stat records as 64-bit integers."""
    return _shuffled(_wrapping_array(code, values))


_CODES = ("Q", "q", "Q", "q")  # size, mtime_ns, inode, ctime_ns


def _columns_6(data: bytes) -> tuple[bytes, array, array, array, array]:
    """Format 6's stats part (msgpack arrays: paths, sizes, mtimes, inodes as differences, ctimes) as `_columns`
    gives format 7's."""
    columns = msgpack.unpackb(data, raw=False)
    if not isinstance(columns, list) or len(columns) != 5 or any(len(c) != len(columns[0]) for c in columns):
        raise ValueError("stats: not five columns of one length")
    paths, sizes, mtimes, steps, ctimes = columns
    if not set(map(type, paths)) <= {str} or any("\0" in p for p in paths):
        raise ValueError("stats: a path that is no string")
    inodes = [n % (1 << 64) for n in accumulate(steps)]
    return ("\0".join(paths).encode("utf-8"),
            *(_wrapping_array(code, values) for values, code in zip((sizes, mtimes, inodes, ctimes), _CODES)))


def _wrapping_array(code: str, values: list[int]) -> array:
    """`values` as an array of 64-bit integers, a value outside the type kept modulo 2**64 (as format 7 keeps it)."""
    try:
        return array(code, values)
    except OverflowError:
        wrapped = [v % (1 << 64) for v in values]
        return array(code, [v - (1 << 64) if code == "q" and v >= 1 << 63 else v for v in wrapped])


def _shuffled(column: array) -> bytes:
    """The integers of `column` little-endian and byte-shuffled: first the lowest byte of each, then the next byte of
    each, and so on (the high bytes of neighbours are alike, and zstd finds them in a row)."""
    if sys.byteorder == "big":
        column = array(column.typecode, column)
        column.byteswap()
    data, width = column.tobytes(), column.itemsize
    return b"".join(data[i::width] for i in range(width))


def _unshuffled(data: bytes, code: str) -> array:
    """`_shuffled`'s column read back (ValueError: not a whole number of integers)."""
    column = array(code)
    width = column.itemsize
    count, rest = divmod(len(data), width)
    if rest:
        raise ValueError("a column of another length")
    plain = bytearray(len(data))
    for i in range(width):
        plain[i::width] = data[i * count : (i + 1) * count]
    column.frombytes(plain)
    if sys.byteorder == "big":
        column.byteswap()
    return column


def _columns(data: bytes) -> tuple[bytes, array, array, array, array]:
    """The stats part read back: (paths as one NUL-separated UTF-8 string, sizes, mtimes, inodes, ctimes as arrays of
    64-bit integers). ValueError when it is not five columns of one length."""
    columns = msgpack.unpackb(data, raw=False)
    if not isinstance(columns, list) or len(columns) != 5 or not all(isinstance(c, bytes) for c in columns):
        raise ValueError("stats: not five columns")
    blob = columns[0]
    blob.decode("utf-8")  # (checked here: the paths are made from it when a lookup needs them)
    count = blob.count(b"\0") + 1 if blob else 0
    out = [blob]
    for shuffled, code in zip(columns[1:], _CODES):
        if len(shuffled) != 8 * count:
            raise ValueError("stats: columns of other lengths")
        out.append(_unshuffled(shuffled, code))
    return tuple(out)


def _unpacked(data: bytes) -> bytes:
    import zstandard

    size = zstandard.frame_content_size(data)  # what the frame claims (-1: it does not say)
    if 0 <= size <= 64 * len(data) + (1 << 20):
        return zstandard.ZstdDecompressor().decompress(data)  # into one buffer of that size, at once
    return zstandard.ZstdDecompressor().decompressobj().decompress(data)  # grows as it goes, whatever the frame claims


def _page_record(value: Any) -> bool:
    """A well-formed PageReuse record (anything else is ignored: the page is then built)."""
    return (isinstance(value, list) and len(value) == 5 and isinstance(value[0], str) and isinstance(value[1], bytes)
            and len(value[1]) == 32 and type(value[2]) is int and value[2] > 0 and isinstance(value[3], dict)
            and all(isinstance(k, str) and type(n) is int for k, n in value[3].items()) and isinstance(value[4], list)
            and all(isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in value[4]))
