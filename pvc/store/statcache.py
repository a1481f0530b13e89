"""The stat cache `.pvc/index`: path -> (size, mtime, inode, ctime) and what hashing the file gave.

Only an optimisation: deleting it changes how long a commit takes, never its result. An entry is trusted
only when the file's stat is unchanged and its mtime is older than the moment the scan that recorded it
began, read from the file system's own clock (`fs_clock`). A file modified during or after that scan,
even within the same clock tick and without changing size ("racy", as git calls it), is hashed again.

Along with the entries it keeps the manifest they produced and, when no entry was racy, `tree`: the digest
of the scan's stat records (pvc/project/walk.py). A later scan with the same digest saw the same files with
the same stats, so the project is still that manifest: `status` and `commit` then read nothing else.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import msgpack

from pvc.store.atomic import atomic_write

__all__ = ["StatKey", "CacheEntry", "StatCache", "fs_clock"]

CACHE_FORMAT = 6  # 6: stats and results compressed, by column, in one order of paths (written once), the ids left
# to the manifest when it is in the store; 5: every info canonical (keys sorted at every depth), as capture computes it


def fs_clock(directory: Path) -> int | None:
    """The file system's current time (the mtime a file created now gets), in ns; None where no file can be
    made (a read-only store, a full disk): the scan then has no racy cutoff, and nothing of it is saved."""
    import tempfile  # here: the stat-only status path never needs it

    try:
        fd, name = tempfile.mkstemp(dir=directory, prefix=f"clock-{os.getpid()}-")
    except OSError:
        return None
    try:
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

    The file is two msgpack documents. The head is the tree record: the digest of a settled scan's stat
    records and the manifest, settings and objects per class of the project that scan saw; the stat-only
    paths read nothing else. The body keeps the stats (four integers a path) and what hashing gave (ids,
    roles, infos) as two separately encoded and compressed parts, read and decoded only when a lookup needs them;
    the results are a list in the order of the stats' paths, so no path is written twice.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._doc: dict | None = None
        self._stats_decoded: dict[str, list] | None = None
        self._results: dict[str, list] | None = None
        self._derived: dict[bytes, Any] = {}
        # manifest id -> {path: blob id} of its files, for a body that leaves the ids to its manifest (set by capture,
        # which has the store); None: such a body reads as empty
        self.file_ids: Callable[[bytes], dict[str, bytes]] | None = None
        self.tree: bytes | None = None
        self.tree_manifest: bytes | None = None
        self.tree_settings: Any = None
        self.classes: dict[str, int] = {}  # objects per class in `tree_manifest`
        try:
            with open(path, "rb") as f:
                head = msgpack.Unpacker(f, raw=False, read_size=16384).unpack()
            if head.get("format") == CACHE_FORMAT and head.get("tree") is not None:
                self.tree, self.tree_manifest = bytes(head["tree"]), bytes(head["manifest"])
                self.tree_settings, self.classes = head["settings"], dict(head["classes"])
        except Exception:  # missing or damaged: start empty, the next save rewrites it
            self.tree = None

    @property
    def _index(self) -> dict:
        if self._doc is None:
            try:
                raw = self.path.read_bytes()
                unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=len(raw))
                unpacker.feed(raw)
                head, doc = unpacker.unpack(), unpacker.unpack()
                if head.get("format") != CACHE_FORMAT:
                    raise ValueError("older format")
                int(doc["scan_started"]), bytes(doc["stats"]), bytes(doc["results"])
                self._doc = doc
            except Exception:  # missing or damaged: start empty, the next save rewrites it
                self._doc = {"scan_started": 0, "stats": b"", "results": b""}
        return self._doc

    @property
    def manifest(self) -> bytes | None:
        """What these entries (all of them, unchanged) produced."""
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
    def _cutoff(self) -> int:
        return int(self._index["scan_started"])

    @property
    def _stats(self) -> dict[str, list]:
        if self._stats_decoded is None:
            raw = self._index["stats"]
            try:
                self._stats_decoded = _stats_of(msgpack.unpackb(_unpacked(raw), raw=False)) if raw else {}
            except Exception:
                self._stats_decoded, self._results, self._derived = {}, {}, {}
        return self._stats_decoded

    def _decoded(self) -> dict[str, list]:
        if self._results is None:
            raw = self._index["results"]
            try:
                doc = msgpack.unpackb(_unpacked(raw), raw=False, strict_map_key=False) if raw else {}
                paths = self._stats
                roles, infos = doc.get("roles", []), doc.get("infos", [])
                if "ids" in doc:
                    ids = doc["ids"]
                    if len(ids) != 32 * len(paths):
                        raise ValueError("results: not one id per path")
                    oids = [ids[32 * i : 32 * i + 32] for i in range(len(paths))]
                else:  # the ids are those of the files of the manifest these entries produced (in the store)
                    of_manifest = self.file_ids(self._index["manifest"]) if self.file_ids and paths else {}
                    oids = [of_manifest.get(p) for p in paths]
                if not len(roles) == len(infos) == len(paths):
                    raise ValueError("results: not one entry per path")
                self._results = {p: (oids[i], roles[i], infos[i]) for i, p in enumerate(paths)}
                self._derived = {bytes(k): v for k, v in doc.get("derived", {}).items()}
            except Exception:
                self._stats_decoded, self._results, self._derived = {}, {}, {}
        return self._results

    def get(self, relpath: str, key: StatKey, role: str) -> CacheEntry | None:
        """The entry of `relpath` if its stat `key` and `role` are what the cache vouches for (the rule of `get_all`)."""
        probe = SimpleNamespace(relpath=relpath, size=key.size, mtime_ns=key.mtime_ns, ino=key.ino, ctime_ns=key.ctime_ns)
        return self.get_all([probe], {relpath: role})[0]

    def get_all(self, files: list, roles: dict[str, str]) -> list[CacheEntry | None]:
        """For each of `files` (with relpath, size, mtime_ns, ino, ctime_ns), its entry if the file's stat is the
        entry's, its mtime older than the cutoff of the scan that saved it, and its role the one in `roles`; else None."""
        stats, cutoff = self._stats, self._cutoff
        results = self._decoded() if stats else {}
        out: list[CacheEntry | None] = []
        for f in files:
            rel = f.relpath
            stat = stats.get(rel)
            if stat is None or f.mtime_ns >= cutoff or stat != [f.size, f.mtime_ns, f.ino, f.ctime_ns]:
                out.append(None)
                continue
            result = results.get(rel)
            if result is None or result[0] is None or result[1] != roles[rel]:
                out.append(None)
                continue
            out.append(CacheEntry(StatKey(f.size, f.mtime_ns, f.ino, f.ctime_ns), bytes(result[0]), result[1], result[2]))
        return out

    def may_vouch_for(self, manifest: bytes, settings: Any) -> bool:
        """Whether the tree record is about `manifest` (made with `settings`): worth scanning to compare."""
        return self.tree is not None and manifest == self.tree_manifest and settings == self.tree_settings

    def vouches_for(self, manifest: bytes, settings: Any, tree: bytes | None) -> bool:
        """True when a scan whose stat records have digest `tree` saw the project that produced `manifest`."""
        return tree is not None and tree == self.tree and self.may_vouch_for(manifest, settings)

    def holds(self, entries: dict[str, CacheEntry], manifest: bytes, settings: Any) -> bool:
        """True when saving `entries` (all taken from this cache) with `manifest` would say what it says."""
        stats = self._stats
        return (manifest == self.manifest and settings == self.settings and len(entries) == len(stats)
                and all(p in stats for p in entries))

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
             manifest: bytes | None = None, settings: Any = None, tree: bytes | None = None,
             classes: dict[str, int] | None = None, pages: dict[bytes, list] | None = None,
             ids_in_manifest: bool = False) -> None:
        """Replace the cache; `scan_started` is `fs_clock` taken before the files were stat'ed; `tree` the
        digest of that scan's stat records (only if none of them is racy) and `classes` the manifest's counts;
        `pages` what that manifest's pages were built from (kept only along with a manifest). `ids_in_manifest`:
        `manifest` is in the store and lists every entry's file with its id, so the ids are not written (a reader
        takes them from the manifest's pages through `file_ids`)."""
        results = {"derived": derived or {}, "roles": [e.role for e in entries.values()],
                   "infos": [e.info for e in entries.values()]}
        if not (ids_in_manifest and manifest is not None):
            results["ids"] = b"".join(e.oid for e in entries.values())
        keys = [e.key for e in entries.values()]
        inodes = [k.ino for k in keys]  # as differences: files of one folder, made one after another, are near
        stats = [list(entries), [k.size for k in keys], [k.mtime_ns for k in keys],
                 inodes[:1] + [b - a for a, b in zip(inodes, inodes[1:])], [k.ctime_ns for k in keys]]
        doc = {
            "scan_started": scan_started,
            "manifest": manifest,
            "settings": settings,
            "stats": _packed(msgpack.packb(stats, use_bin_type=True)),
            "results": _packed(msgpack.packb(results, use_bin_type=True)),
            "pages": (pages or {}) if manifest is not None else {},
        }
        recorded = tree is not None and manifest is not None
        head = self._head(tree, manifest, settings, classes or {}) if recorded else self._head(None, None, None, {})
        atomic_write(self.path, head + msgpack.packb(doc, use_bin_type=True))
        self._doc, self._stats_decoded, self._results = doc, None, None

    def save_tree(self, tree: bytes, manifest: bytes, settings: Any, classes: dict[str, int]) -> None:
        """Record that a settled scan whose stat records have digest `tree` saw the project `manifest`;
        the entries stay as they are on disk (call with the repository lock held)."""
        self._doc = self._stats_decoded = self._results = None  # the entries as they are on disk now
        doc = self._index
        if not doc.get("stats") and not doc.get("results"):
            return  # no entries to keep beside it: the next full scan records both
        atomic_write(self.path, self._head(tree, manifest, settings, classes) + msgpack.packb(doc, use_bin_type=True))
        self.tree, self.tree_manifest, self.tree_settings, self.classes = tree, manifest, settings, classes

    def _head(self, tree: bytes | None, manifest: bytes | None, settings: Any, classes: dict) -> bytes:
        return msgpack.packb({"format": CACHE_FORMAT, "tree": tree, "manifest": manifest, "settings": settings,
                              "classes": classes}, use_bin_type=True)


def _packed(data: bytes) -> bytes:
    """One zstd frame of a body part: paths, stats, roles and infos repeat themselves a lot."""
    import zstandard

    return zstandard.ZstdCompressor(level=9).compress(data)


def _stats_of(columns: Any) -> dict[str, list]:
    """path -> [size, mtime_ns, inode, ctime_ns] from the stored columns (paths, then each field in their order;
    the inodes as differences from the previous path's)."""
    from itertools import accumulate

    paths, *fields = columns
    if len(fields) != 4 or any(len(f) != len(paths) for f in fields):
        raise ValueError("stats: columns of different lengths")
    fields[2] = list(accumulate(fields[2]))
    return dict(zip(paths, map(list, zip(*fields))))


def _unpacked(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdDecompressor().decompressobj().decompress(data)  # grows as it goes, whatever the frame claims


def _page_record(value: Any) -> bool:
    """A well-formed PageReuse record (anything else is ignored: the page is then built)."""
    return (isinstance(value, list) and len(value) == 5 and isinstance(value[0], str) and isinstance(value[1], bytes)
            and len(value[1]) == 32 and type(value[2]) is int and value[2] > 0 and isinstance(value[3], dict)
            and all(isinstance(k, str) and type(n) is int for k, n in value[3].items()) and isinstance(value[4], list)
            and all(isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in value[4]))
