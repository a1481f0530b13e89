"""Capture from the change: the working tree's manifest built from the paths that changed since a committed version,
not from every file of the project (`status`, `commit`, `diff` against the working tree, the preview of `discard`).

The stat cache keeps a base (pvc/store/statcache.py): the manifest of the last commit, and the paths that may differ
from it. Every other path the walk finds with the stat the cache vouches for is that version's file. So the
candidates are the files the cache does not vouch for, the ones gone, and those paths; for them alone:

- which dataset and which items they belong to, told by `layout.dataset_items` over just the files that can take
  part in those items (an item's media, `ann/<name>.json`, `ann/<stem>.json` and companions; and every media file
  that could claim one of those annotations: the closure below), so the items come out as the whole project's
  classification would give them;
- their entries, from the stat cache or by reading them;
- the pages of the base version that hold them, read as tables of where each entry lies in their bytes, patched and
  cut again where the keys say (`pages.page_runs`' rule), the entries spliced as the bytes they are (pvc/_pages.c); a
  page before the first change, or after the runs realign with the base's, is taken by reference;
- the trees above them, and the manifest, whose counts, objects per class and problems are the base's adjusted;
- and, when it is saved, the stat cache keeps its columns and adds what was read and what is gone after them
  (`StatCache.save_changes`).

The result is the manifest a full build gives (tests/test_delta.py checks it on random edit sequences). Where that
cannot be told safely from the change alone (meta.json or a root file, a new or vanishing dataset or media folder, a
dataset without media, another type's media folder or a point-cloud episode's annotation, a volume project, more
problems than a manifest lists, a large change) the capture falls back to the full build (`None` here).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter
from typing import Any

import msgpack

from pvc.core.capture import Capture
from pvc.core.capture.build import MAX_PROBLEMS
from pvc.core.capture.describe import ItemDescriber
from pvc.core.capture.hash import ObjectSink, hash_files, invalid_reason
from pvc.errors import CorruptObject, ObjectMissing
from pvc.project.layout import (ANN_ROLE, COMPANION_FILES, ITEM_KIND, MEDIA_DIRS, MEDIA_SUFFIXES, Dataset, Item,
                                dataset_items, suffix)
from pvc.project.scan import FileInfo
from pvc.store import pages
from pvc.store.pagediff import _pages, page_table_key
from pvc.store.model import ChildRef, ItemEntry, Manifest, PageRef, Tree
from pvc.store.statcache import CacheEntry, StatCache

__all__ = ["delta_capture"]

_TYPES = ("images", "videos")  # items of one media file each (a volume project groups DICOM series)
_LAST = "\U0010ffff"


class _Unsure(Exception):
    """The change cannot be told from the changed paths alone: the full build runs."""


def delta_capture(repo, store: ObjectSink, cache: StatCache, settings: dict, walked, expect: bytes,
                  keep_invalid: bool, pages: dict[bytes, bytes] | None = None,
                  tables: dict[tuple, bytes] | None = None) -> Capture | None:
    """The capture built from the change since the stat cache's base, or None where only the full build can tell.
    `pages`, `tables`: pages of the base read already (id -> bytes, each checked against its id) and their tables
    (`page_table`'s key -> `_pages.table` of the page), taken instead of read and made again."""
    base = cache.base
    if base is None or base[0] != expect or base[1] != settings or _pages is None:
        return None  # (without pvc/_pages.c, which splits pages into their entries' bytes, the full build runs)
    try:
        return _Delta(repo, store, cache, settings, walked, expect, keep_invalid, base[2], pages or {},
                      tables or {}).run()
    except (_Unsure, ObjectMissing, CorruptObject, RecursionError, KeyError, TypeError, AttributeError):
        return None  # the full build reads the same objects and reports what is wrong with them (a base written by
        # another pvc with other stats, say); what it builds is the same manifest either way


class _Map:
    """One paged map of the base version (a dataset's files or items), its pages read as they are asked for. A page is
    kept as its bytes and a table of where each entry lies in them (pvc/_pages.c checks every entry as it makes the
    table); lookups search the table, and a patched page is spliced from the bytes: no object is made an entry."""

    def __init__(self, store: ObjectSink, refs: tuple[PageRef, ...], kind: str, read: dict[bytes, bytes],
                 made: dict[tuple, bytes]) -> None:
        self.store, self.refs, self.kind, self.read, self.made = store, refs, kind, read, made
        self.firsts = [ref.first for ref in refs]
        self._tables: dict[int, tuple[bytes, bytes]] = {}

    def table(self, j: int) -> tuple[bytes, bytes]:
        """Page `j`'s bytes and table (`_pages.table`; those `read` and `made` already, if they are there)."""
        found = self._tables.get(j)
        if found is None:
            ref = self.refs[j]
            data = self.read.get(ref.oid) or self.store.get(ref.oid)
            key = page_table_key(self.refs, j, self.kind)
            table = self.made.get(key) or _pages.table(self.kind, data, *key[2:])
            if not table:
                raise _Unsure  # anything unusual: the full build reads it and says what is wrong
            found = self._tables[j] = (data, table)
        return found

    def _at(self, key: str) -> int:
        return bisect_right(self.firsts, key) - 1  # the one page that can hold `key`; -1: before them all

    def get(self, key: str) -> Any | None:
        """The value of `key`, decoded, or None."""
        value = self.raw(key)
        return None if value is None else msgpack.unpackb(value, raw=False)

    def raw(self, key: str) -> bytes | None:
        """The value of `key` as the msgpack bytes its page holds, or None."""
        j = self._at(key)
        return None if j < 0 else _pages.find(*self.table(j), key)[1]

    def has_prefix(self, prefix: str) -> bool:
        j = max(self._at(prefix), 0)
        if j >= len(self.refs):
            return False
        if self.firsts[j].startswith(prefix) or (j + 1 < len(self.refs) and self.firsts[j + 1].startswith(prefix)):
            return True
        # a key at or after `prefix` that is not in page j is the first of page j + 1
        data, table = self.table(j)
        key = _pages.key_at(data, table, _pages.find(data, table, prefix)[0])
        return key is not None and key.startswith(prefix)

    def with_prefix(self, prefix: str) -> list[str]:
        found = []
        for j in range(max(self._at(prefix), 0), len(self.refs)):
            if self.firsts[j] >= prefix + _LAST:
                break
            keys, ended = _pages.prefixed(*self.table(j), prefix)
            found += keys
            if ended:
                break
        return found


class _ByPath:
    """The walk's files by path, each `FileInfo` made when it is asked for (the few the change involves)."""

    def __init__(self, walked) -> None:
        self.walked, self.made = walked, {}

    def at(self, i: int) -> FileInfo:
        """The walk's `i`-th file (its position known: no search)."""
        f = self.walked.file(i)
        self.made[f.relpath] = f
        return f

    def get(self, path: str) -> FileInfo | None:
        f = self.made.get(path)
        if f is None:
            i = self.walked.index(path)
            if i is None:
                return None
            f = self.made[path] = self.walked.file(i)
        return f

    def __getitem__(self, path: str) -> FileInfo:
        f = self.get(path)
        if f is None:
            raise KeyError(path)
        return f

    def __contains__(self, path: str) -> bool:
        return path in self.made or self.walked.index(path) is not None


class _Node:
    __slots__ = ("name", "folder", "oid", "tree")

    def __init__(self, name: str, folder: str, oid: bytes, tree: Tree) -> None:
        self.name, self.folder, self.oid, self.tree = name, folder, oid, tree


class _Delta:
    def __init__(self, repo, store: ObjectSink, cache: StatCache, settings: dict, walked, expect: bytes,
                 keep_invalid: bool, dirty: list[str], pages: dict[bytes, bytes], tables: dict[tuple, bytes]) -> None:
        self.repo, self.store, self.cache, self.settings, self.walked = repo, store, cache, settings, walked
        self.pages, self.tables = pages, tables
        self.expect, self.keep_invalid, self.dirty = expect, keep_invalid, dirty
        self.read: list[FileInfo] = []  # the files this capture read
        self.gone: list[str] = []  # the cached paths the walk did not find

    def run(self) -> Capture:
        walked = self.walked
        changed, self.gone = self.cache.walk_differences(walked)
        by_path = _ByPath(walked)
        candidates: dict[str, FileInfo | None] = {walked.paths[i]: by_path.at(i) for i in changed}
        for path in (*self.gone, *self.dirty):
            candidates[path] = by_path.get(path)
        if len(candidates) > len(walked.paths) // 4 + 200:
            raise _Unsure  # a change that large costs the full build about as much
        if not candidates:
            return self._capture(self.expect, {}, {})
        manifest = self.store.get_object(self.expect, Manifest)
        ptype = manifest.project_type
        if (manifest.layout != "supervisely" or ptype not in _TYPES or manifest.problems is None
                or len(manifest.problems) != manifest.stats.get("problems")):
            raise _Unsure
        self.ptype, self.media_dir = ptype, MEDIA_DIRS[ptype]
        self.kind, self.ann_role = ITEM_KIND[ptype], ANN_ROLE[ptype]
        self.suffixes, self.companions = MEDIA_SUFFIXES[ptype], COMPANION_FILES.get(ptype, {})
        self.other_media = set(MEDIA_DIRS.values()) - {self.media_dir}
        self.by_path, self.walked_paths = by_path, walked.paths

        root = self.store.get_object(manifest.root, Tree)
        self.nodes: dict[str, _Node] = {}
        self.order: list[str] = []  # dataset folders in the order the build makes their trees (children first)
        self.parent: dict[str, str | None] = {}
        for child in root.children:
            self._read_tree(child, None)

        per_dataset: dict[str, dict[str, FileInfo | None]] = {}
        for path, f in candidates.items():
            folder, rel = self._dataset_of(path)
            per_dataset.setdefault(folder, {})[rel] = f

        plans = {folder: self._plan(folder, changes) for folder, changes in per_dataset.items()}
        hashed = self._entries(plans)
        return self._build(manifest, root, plans, hashed)

    # -- where the change is ---------------------------------------------------------------------------------

    def _read_tree(self, ref: ChildRef, parent: str | None) -> None:
        tree = self.store.get_object(ref.oid, Tree)
        self.nodes[ref.folder] = _Node(ref.name, ref.folder, ref.oid, tree)
        self.parent[ref.folder] = parent
        for child in tree.children:
            self._read_tree(child, ref.folder)
        self.order.append(ref.folder)

    def _dataset_of(self, path: str) -> tuple[str, str]:
        """The folder of the dataset that holds `path`, and the path inside it."""
        parts = path.split("/")
        if len(parts) < 2 or parts[0] not in self.nodes or self.parent[parts[0]] is not None:
            raise _Unsure  # a root file (meta.json), or a folder that is no dataset yet
        folder, at = parts[0], 1
        while at + 1 < len(parts) and parts[at] == "datasets":
            child = f"{folder}/datasets/{parts[at + 1]}"
            if child not in self.nodes:
                raise _Unsure  # under datasets/: a folder that may become a dataset
            folder, at = child, at + 2
        return folder, "/".join(parts[at:])

    def _role(self, rel: str) -> str:
        head, _, tail = rel.partition("/")
        if tail and "/" not in tail:
            if head == self.media_dir and suffix(tail) in self.suffixes:
                return self.kind
            if head == "ann" and tail.endswith(".json"):
                return self.ann_role
        return "file"

    def _plan(self, folder: str, changes: dict[str, FileInfo | None]) -> dict:
        node = self.nodes[folder]
        fmap = _Map(self.store, node.tree.files, "files", self.pages, self.tables)
        imap = _Map(self.store, node.tree.items, "items", self.pages, self.tables)
        names: set[str] = set()
        for rel in changes:
            head, _, tail = rel.partition("/")
            if head in self.other_media or head == "datasets" or rel == "annotation.json":
                raise _Unsure  # another type's media folder (a warning), a dataset nested anew, or a point-cloud
                # episode's annotation (which tells layout._media_types the type of a dataset's pointcloud/)
            if not tail or "/" in tail:
                continue  # an extra: the files map only
            if head == self.media_dir and suffix(tail) in self.suffixes:
                names.add(tail)
            elif head == "ann" and tail.endswith(".json"):
                names.add(tail[: -len(".json")])
            else:
                for dir_name, end in self.companions.items():
                    if head == dir_name and tail.endswith(end):
                        names.add(tail[: -len(end)])
        # whether the folder is a dataset, and of which type, stays as it was; a dataset without media files (whose
        # annotations may be what tells the project's type) is left to the full build
        if not (fmap.has_prefix(f"{self.media_dir}/") and self._walked_under(f"{folder}/{self.media_dir}/")):
            raise _Unsure
        if fmap.has_prefix("ann/") != self._walked_under(f"{folder}/ann/"):
            raise _Unsure
        closure = self._closure(folder, fmap, names)
        new_rels = self._restricted(closure, lambda rel: f"{folder}/{rel}" in self.by_path)
        items = dataset_items(new_rels, self.ptype)
        if any(item.name not in closure for item in items):
            raise _Unsure
        old_items = {name: value for name in closure if (value := imap.get(name)) is not None}
        old_files = {rel: value for rel in changes if (value := fmap.get(rel)) is not None}
        return {"fmap": fmap, "imap": imap, "changes": changes, "closure": closure, "items": items,
                "old_items": old_items, "old_files": old_files}

    def _walked_under(self, prefix: str) -> bool:
        at = bisect_left(self.walked_paths, prefix)
        return at < len(self.walked_paths) and self.walked_paths[at].startswith(prefix)

    def _media_named(self, folder: str, fmap: _Map, prefix: str) -> set[str]:
        """The media files of the base and of the working tree whose names start with `prefix`."""
        inside = f"{self.media_dir}/{prefix}"
        found = {k[len(self.media_dir) + 1 :] for k in fmap.with_prefix(inside)}
        walked = f"{folder}/{inside}"
        at = bisect_left(self.walked_paths, walked)
        while at < len(self.walked_paths) and self.walked_paths[at].startswith(walked):
            found.add(self.walked_paths[at][len(folder) + len(self.media_dir) + 2 :])
            at += 1
        return {n for n in found if "/" not in n and suffix(n) in self.suffixes}

    def _closure(self, folder: str, fmap: _Map, names: set[str]) -> set[str]:
        """The names of every item the changed ones can affect: an annotation `ann/<x>.json` is claimed by the media
        named `x` or, failing that, by one whose stem is `x`, the first in name order (layout._annotation_for)."""
        closure: set[str] = set()
        asked: set[str] = set()  # the names whose media were looked up (an item's name and its stem ask alike)
        todo = list(names)
        while todo:
            name = todo.pop()
            if name in closure:
                continue
            closure.add(name)
            for x in {name, name.rsplit(".", 1)[0]}:
                todo.append(x)
                if x not in asked:
                    asked.add(x)
                    todo += [n for n in self._media_named(folder, fmap, x + ".") if "." not in n[len(x) + 1 :]]
        return closure

    def _restricted(self, closure: set[str], exists) -> list[str]:
        """The files (relative to the dataset) that can belong to the items named in `closure`."""
        found = set()
        for name in closure:
            for rel in (f"{self.media_dir}/{name}", f"ann/{name}.json",
                        *(f"{d}/{name}{end}" for d, end in self.companions.items())):
                if exists(rel):
                    found.add(rel)
        return sorted(found)

    # -- what the changed files are --------------------------------------------------------------------------

    def _entries(self, plans: dict[str, dict]) -> dict[str, CacheEntry]:
        """The entry of every changed file, and of every file of an item the change touches."""
        roles: dict[str, str] = {}
        ids = {}  # a cache saved by a commit leaves the ids to the base's files map: take them from its pages
        for folder, plan in plans.items():
            rels = [rel for rel, f in plan["changes"].items() if f is not None]
            rels += [rel for item in plan["items"] for rel in item.files()]
            for rel in rels:
                path = f"{folder}/{rel}"
                roles[path] = self._role(rel)
                value = plan["fmap"].get(rel)
                if isinstance(value, list) and value and isinstance(value[0], bytes):
                    ids[path] = value[0]
        wanted = [self.by_path[p] for p in roles]
        file_ids, self.cache.file_ids = self.cache.file_ids, lambda manifest: ids if manifest == self.expect else {}
        try:  # the full build's hashing stage, on these files alone
            hashed, self.read = hash_files(self.cache, self.store, wanted, roles, self.keep_invalid, None)
        finally:
            self.cache.file_ids = file_ids
        return hashed

    # -- the new objects --------------------------------------------------------------------------------------

    def _build(self, manifest: Manifest, root: Tree, plans: dict[str, dict], hashed: dict[str, CacheEntry]) -> Capture:
        stats = dict(manifest.stats)
        classes: Counter[str] = Counter(stats.get("classes") or {})
        describer = ItemDescriber(self.by_path, hashed, self.cache, self.keep_invalid,
                                  self.repo.config.get("dicom_tags"))
        item_refs, file_refs, new_problems = {}, {}, {}
        known: dict[str, dict[str, dict[str, tuple[bytes | None, bytes | None]]]] = {}  # what changed, as bytes
        for folder, plan in plans.items():
            node = self.nodes[folder]
            ds = Dataset(name=node.name, dir=folder)
            item_changes: dict[str, Any] = {name: None for name in plan["old_items"]}
            problems = []
            for old in plan["old_items"].values():
                annotation = old.get("annotation") if isinstance(old, dict) else None
                if isinstance(annotation, dict):
                    classes.subtract(annotation.get("objects", {}))
            for item in plan["items"]:
                entry, objects_of, flagged = self._item_entry(ds, item, hashed, describer)
                item_changes[item.name] = entry
                classes.update(objects_of)
                problems += [{"dataset": node.name, "item": item.name, "problem": p} for p in flagged]
            stats["items"] = stats.get("items", 0) + len(plan["items"]) - len(plan["old_items"])
            file_changes: dict[str, Any] = {}
            for rel, f in plan["changes"].items():
                old = plan["old_files"].get(rel)
                if old is not None:
                    stats["files"] -= 1
                    stats["bytes"] -= old[1]
                if f is None:
                    file_changes[rel] = None
                else:
                    h = hashed[f"{folder}/{rel}"]
                    file_changes[rel] = [h.oid, f.size, 0o755 if f.executable else 0o644]
                    stats["files"] += 1
                    stats["bytes"] += f.size
            items_packed, files_packed = _packed(item_changes), _packed(file_changes)
            item_refs[folder] = _patch(plan["imap"], items_packed, self.store)
            file_refs[folder] = _patch(plan["fmap"], files_packed, self.store)
            known[folder] = {"items": {k: (plan["imap"].raw(k), v) for k, v in items_packed.items()},
                             "files": {k: (plan["fmap"].raw(k), v) for k, v in files_packed.items()}}
            new_problems[node.name] = (plan["closure"], problems)
        if any(n < 0 for n in classes.values()) or stats["files"] < 0 or stats["items"] < 0:
            raise _Unsure
        stats["classes"] = dict(sorted((c, n) for c, n in classes.items() if n > 0))
        problems = self._problems(manifest.problems, new_problems)
        stats["problems"] = len(problems)

        touched = set()
        for folder in plans:
            while folder is not None and folder not in touched:
                touched.add(folder)
                folder = self.parent[folder]

        def tree_id(ref: ChildRef) -> bytes:
            if ref.folder not in touched:
                return ref.oid
            tree = self.nodes[ref.folder].tree
            children = tuple(ChildRef(c.folder, c.name, tree_id(c)) for c in tree.children)
            return self.store.put_object(Tree(tree.name, file_refs.get(ref.folder, tree.files),
                                              item_refs.get(ref.folder, tree.items), children))

        children = tuple(ChildRef(c.folder, c.name, tree_id(c)) for c in root.children)
        root_id = self.store.put_object(Tree("", root.files, root.items, children))
        manifest_id = self.store.put_object(Manifest(manifest.project_type, manifest.layout, root_id, stats,
                                                     tuple(problems), manifest.warnings))
        invalid = sorted((path, reason) for path, h in hashed.items() if (reason := invalid_reason(h)) is not None)
        return self._capture(manifest_id, hashed, stats["classes"], tuple(invalid), known)

    def _item_entry(self, ds: Dataset, item: Item, hashed: dict[str, CacheEntry], describer: ItemDescriber):
        """An item's entry as the full build makes it (build._Build._item_page), its objects per class, its problems."""
        media = describer.media(ds, item)
        ann = hashed[f"{ds.dir}/{item.ann}"].info if item.ann else None
        flagged = describer.problems(item, media, ann)
        entry = ItemEntry(item.kind, item.media[0] if item.media else None, item.ann, tuple(item.companions), media,
                          ann, None, tuple(flagged) if flagged else None, sorted_values=True)
        return entry.encode(), (ann.get("objects", {}) if isinstance(ann, dict) else {}), flagged

    def _problems(self, old: tuple[dict, ...], changed: dict[str, tuple[set[str], list[dict]]]) -> list[dict]:
        """The base's problems, those of the touched items replaced, in the order the build lists them: dataset by
        dataset as their trees are made, item by item within one."""
        groups: dict[str, list[dict]] = {}
        names = {self.nodes[folder].name for folder in self.order}
        for problem in old:
            if problem.get("dataset") not in names:
                raise _Unsure
            groups.setdefault(problem["dataset"], []).append(problem)
        out = []
        for folder in self.order:
            name = self.nodes[folder].name
            group = groups.get(name, [])
            if name in changed:
                closure, fresh = changed[name]
                group = sorted([p for p in group if p["item"] not in closure] + fresh, key=lambda p: p["item"])
            out += group
        if len(out) > MAX_PROBLEMS:
            raise _Unsure  # the manifest keeps the first ones only: which, the full build tells
        return out

    def _capture(self, manifest_id: bytes, hashed: dict[str, CacheEntry], classes: dict | None,
                 invalid: tuple = (), known: dict | None = None) -> Capture:
        read = self.read
        return Capture(manifest_id=manifest_id, cache=self.cache, settings=self.settings, walked=self.walked,
                       files_hashed=len(read), bytes_hashed=sum(f.size for f in read), classes=classes,
                       invalid=invalid, expect=self.expect, partial=True,
                       entries={f.relpath: hashed[f.relpath] for f in read}, fresh=tuple(f.relpath for f in read),
                       gone=tuple(self.gone), ids_in_manifest=hasattr(self.store, "stage_sealed"),
                       changes=known or {})


def _packed(changes: dict[str, Any]) -> dict[str, bytes | None]:
    """Each value of `changes` as the msgpack bytes a page holds (None stays None: a removal)."""
    return {k: None if v is None else msgpack.packb(v, use_bin_type=True) for k, v in changes.items()}


def _patch(old: _Map, changes: dict[str, bytes | None], store: ObjectSink) -> tuple[PageRef, ...]:
    """The map `old` with `changes` (key -> value as msgpack bytes, None to remove) applied, cut into pages where
    `pages.page_runs` cuts the new keys: pages before the first change, and after the runs realign with the old ones,
    kept by id. The pages it makes anew are spliced from the old pages' bytes and the changed values, never decoded
    (pvc/_pages.c `runs` cuts and encodes them as model.Page.encode would)."""
    keys = sorted(changes)
    packed = {k: v for k, v in changes.items() if v is not None}
    refs, out, at = old.refs, [], 0

    def cut(pending: list) -> list:
        """Store the runs `pending` closes; return the entries of the run still open."""
        closed, rest = _pages.runs(old.kind, pending, pages.PAGE_MIN, pages.PAGE_AVG, pages.PAGE_MAX)
        out.extend(_stored(page, store) for page in closed)
        return rest

    pending = [] if refs else cut([(k, packed[k]) for k in keys if k in packed])  # a map made from nothing
    for j, ref in enumerate(refs):
        end = bisect_left(keys, refs[j + 1].first, at) if j + 1 < len(refs) else len(keys)
        if end == at and not pending:
            out.append(ref)  # nothing of it changed and the runs start where it starts: the same page
            continue
        data, table = old.table(j)
        spliced, kept = [], 0  # the page's entries before `kept` are placed
        for key in keys[at:end]:  # (in order: each lands at or after the one before)
            place, value = _pages.find(data, table, key)
            if place > kept:
                spliced.append((data, table, kept, place))
            kept = place if value is None else place + 1  # an entry replaced or removed: the old one is left out
            if key in packed:
                spliced.append((key, packed[key]))
        if kept < ref.count:
            spliced.append((data, table, kept, ref.count))
        at = end
        pending = cut(pending + spliced)
    if pending:  # the end of the map closes the last run
        out.append(_stored(_pages.one_page(old.kind, pending), store))
    return tuple(out)


def _stored(page: tuple[str, bytes, int], store: ObjectSink) -> PageRef:
    """A page as `_pages` encodes it, stored as put_object stores a structured object (compressed; quickly: a build
    from the change rebuilds a few hundred pages, and zstd's level 9 would cost more than the rest of it)."""
    first, data, count = page
    return PageRef(first, store.put(data, compress=True, quick=True), count)
