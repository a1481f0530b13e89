"""diff: what changed between two snapshots (versions, or a version and the working tree).

Datasets whose tree ids are equal are skipped whole; inside a changed dataset only the pages that
differ are read (`pages.changed_entries`), and an item is looked up by name in the one page that
can hold it, so the cost follows the size of the change, not of the project. A working tree built from
the change (`status`) tells what it changed (`known`), and then not even those pages are compared.
"""

from __future__ import annotations

import json

import time
from typing import Any

from pvc.core.report import change_report, no_meta_changes
from pvc.core.snapshot import DatasetView, Snapshot, item_owner
from pvc.errors import BadInput, ObjectMissing, PvcError, UsageError
from pvc.project.anndiff import annotation_diff
from pvc.project.jsonfile import parse_json
from pvc.project.layout import COMPANION_FILES, COMPANION_FOLDERS, MEDIA_DIRS
from pvc.record import field, record
from pvc.store.model import ItemEntry, Manifest, Tree
from pvc.store.pagediff import changed_entries, known_changes, lookup, lookup_pair, page_sources
from pvc.store.pages import iter_entries

__all__ = ["diff_snapshots", "empty_manifest"]

_COMPANION_SUFFIX = {folder: suffix for per_type in COMPANION_FILES.values() for folder, suffix in per_type.items()}
_FAST_READ = 100e-6  # seconds: reads slower than this on average are not from the page cache
_SLOW_START = 5e-3  # seconds of slack before reads are taken for slow (the process may be descheduled)


def empty_manifest(store) -> bytes:
    """The manifest of an empty project, to compare a first commit against."""
    root = store.put_object(Tree("", (), (), ()))
    return store.put_object(Manifest("images", "supervisely", root, {"classes": {}}))


@record
class _Report:
    datasets_added: list[str] = field(default_factory=list)
    datasets_removed: list[str] = field(default_factory=list)
    added: list[dict] = field(default_factory=list)
    removed: list[dict] = field(default_factory=list)
    modified: list[dict] = field(default_factory=list)
    files: dict[str, list[str]] = field(default_factory=lambda: {"added": [], "removed": [], "modified": []})


def diff_snapshots(a: Snapshot, b: Snapshot, *, source: Any, target: Any, dataset: str | None = None,
                   item: str | None = None, invalid: tuple[tuple[str, str], ...] = (), details: bool = True,
                   known: dict | None = None) -> dict:
    """The JSON-ready difference from `a` to `b` (labels `source`/`target` name them in the output); `invalid`:
    the working tree's files a commit would refuse (path, reason), reported as `problems`. Without `details`
    the modified items have no semantic annotation diff (`objects`, `annotation`): what `diff --stat` prints
    needs none, so the changed annotations are not read, only looked up (a missing one is still an error). `known`: `b`
    was built from `a` and these changes alone (Capture.changes), read instead of comparing the datasets' pages."""
    report = _Report()
    meta = no_meta_changes()
    if dataset is None and item is None:
        root_changes = changed_entries(a.root.files, b.root.files, a.page, b.page, "files")
        _file_changes(report, "", root_changes)
        if "meta.json" in root_changes:
            meta = _meta_diff(a, b, root_changes["meta.json"])
    ds_a = {ds.name: ds for ds in a.datasets()}
    ds_b = {ds.name: ds for ds in b.datasets()}
    if dataset is not None and not any(n == dataset or n.startswith(dataset + "/") for n in (*ds_a, *ds_b)):
        raise UsageError(f"dataset {dataset!r} is in neither {source} nor {target}")
    for name in sorted(set(ds_a) | set(ds_b)):
        if dataset is not None and name != dataset and not name.startswith(dataset + "/"):
            continue
        if name not in ds_b:
            report.datasets_removed.append(name)
        elif name not in ds_a:
            report.datasets_added.append(name)
        if ds_a.get(name) is None or ds_b.get(name) is None or ds_a[name].oid != ds_b[name].oid:
            _dataset_diff(report, a, b, ds_a.get(name), ds_b.get(name), item, details, known)
    return change_report(source, target, clean=a.manifest_id == b.manifest_id, datasets_added=report.datasets_added,
                         datasets_removed=report.datasets_removed, items_added=report.added, items_removed=report.removed,
                         items_modified=report.modified, files=report.files, classes_before=a.manifest.classes,
                         classes_after=b.manifest.classes, meta=meta,
                         problems=[{"path": path, "problem": why} for path, why in invalid])


def _file_changes(report: _Report, prefix: str, changes: dict) -> None:
    for rel, (old, new) in changes.items():
        kind = "added" if old is None else "removed" if new is None else "modified"
        report.files[kind].append(prefix + rel)


def _dataset_diff(report: _Report, a: Snapshot, b: Snapshot, da: DatasetView | None, db: DatasetView | None,
                  only_item: str | None, details: bool = True, known: dict | None = None) -> None:
    empty = Tree("", (), (), ())
    ta, tb = (da.tree if da else empty), (db.tree if db else empty)
    name = (db or da).name
    get_a, get_b = page_sources(a, b)  # two versions: only the entries whose bytes differ are decoded
    told = known.get(da.dir) if known and da and db and da.dir == db.dir else None
    if told is not None:  # b is a with these changes: nothing else to compare
        files = known_changes(ta.files, tb.files, get_a, get_b, "files", told["files"])
        items = known_changes(ta.items, tb.items, get_a, get_b, "items", told["items"])
    else:
        files = changed_entries(ta.files, tb.files, get_a, get_b, "files")
        items = changed_entries(ta.items, tb.items, get_a, get_b, "items")
    candidates = set(items)
    for rel in files:
        candidates.update(_owner_candidates(rel))
    entries = {n: lookup_pair(ta.items, tb.items, n, get_a, get_b, "items") for n in candidates}
    entries = {n: e for n, e in entries.items() if e != (None, None)}
    claimed = {p: n for n, pair in entries.items() for entry in pair if entry for p in entry.files()}
    unclaimed = [rel for rel in files if rel not in claimed]
    if unclaimed and any(rel.startswith(("ann/", "volume/")) for rel in unclaimed):
        owners = _owner_map(get_a, ta) | _owner_map(get_b, tb)  # legacy ann names, DICOM series named by UID
        for rel in unclaimed:
            if rel in owners:
                n = owners[rel]
                entries.setdefault(n, lookup_pair(ta.items, tb.items, n, get_a, get_b, "items"))
                claimed[rel] = n
    extras = {rel: change for rel, change in files.items() if rel not in claimed}
    if only_item is None:
        _file_changes(report, (db or da).dir + "/", extras)
    wanted = sorted(n for n in entries if only_item is None or n == only_item)
    blobs = _prefetch_annotations(a, b, [entries[n] for n in wanted], files) if details else {}
    for item_name in wanted:
        old, new = entries[item_name]
        _item_diff(report, (a, ta), (b, tb), name, item_name, old, new, files, blobs, details)


def _prefetch_annotations(a: Snapshot, b: Snapshot, pairs: list[tuple], files: dict) -> dict[bytes, bytes]:
    """Both sides of every changed annotation of a modified item, read in parallel: on a cold page cache
    each is a random read of a pack (milliseconds), and a 1% change has hundreds. A read that fails is
    left out; the diff reads it again and reports the error."""
    wanted: dict[bytes, Snapshot] = {}
    for old, new in pairs:
        if old is None or new is None:
            continue
        for snap, path, side in ((a, old.ann, 0), (b, new.ann, 1)):
            change = files.get(path) if path else None
            if change and change[side]:
                wanted[change[side].oid] = snap
    if len(wanted) < 8:
        return {}

    def fetch(oid: bytes) -> bytes | None:
        try:
            return wanted[oid].store.get(oid)
        except PvcError:
            return None

    # From the page cache a read takes ~10 us, and 8 threads cost more than they save (~16 ms for 100 reads
    # against ~1.5 ms in this thread): the reads are made here while they are that fast, the rest in parallel.
    blobs, todo, done, began = {}, list(wanted), 0, time.perf_counter()
    while todo and time.perf_counter() - began < _SLOW_START + _FAST_READ * done:
        oid, done = todo.pop(), done + 1
        if (data := fetch(oid)) is not None:
            blobs[oid] = data
    if todo:
        from concurrent.futures import ThreadPoolExecutor  # ~10 ms to import (logging): only when it is needed

        with ThreadPoolExecutor(max_workers=8) as pool:
            blobs |= {oid: data for oid, data in zip(todo, pool.map(fetch, todo)) if data is not None}
    return blobs


def _item_diff(report: _Report, a: tuple, b: tuple, dataset: str, name: str, old, new, files: dict,
               blobs: dict[bytes, bytes], details: bool = True) -> None:
    if old is None:
        report.added.append({"dataset": dataset, "item": name})
        return
    if new is None:
        report.removed.append({"dataset": dataset, "item": name})
        return
    changed = []
    media = set(old.media_paths()) | set(new.media_paths())
    if any(p in files for p in media):
        changed.append("media")
    if old.ann != new.ann or (new.ann and new.ann in files):
        changed.append("annotation")
    if any(p in files for p in set(old.companions) | set(new.companions)):
        changed.append("companions")
    if not changed and old != new:
        changed.append("metadata")
    if not changed:
        return
    entry: dict[str, Any] = {"dataset": dataset, "item": name, "changed": changed}
    if "annotation" in changed:
        entry.update(_annotation_change(a, b, old, new, files, blobs, details))
    report.modified.append(entry)


def _annotation_change(a: tuple, b: tuple, old: ItemEntry, new: ItemEntry, files: dict,
                       blobs: dict[bytes, bytes], details: bool = True) -> dict:
    """The semantic diff of an item's annotation; each side is (snapshot, dataset tree). Without `details`
    both sides are only looked up in the store: the diff is all that reading them would tell (a document that
    does not parse counts as absent, and annotation_diff answers for any JSON), and a damaged object is for
    `pvc verify` to find."""
    docs = []
    for (snap, tree), entry, side in ((a, old, 0), (b, new, 1)):
        path = entry.ann
        change = files.get(path) if path else None
        value = change[side] if change else (lookup(tree.files, path, snap.page, "files") if path else None)
        if not details:
            if value and not snap.store.has(value.oid):
                raise ObjectMissing(f"object {value.oid.hex()} ({path}) is missing from the store")
            continue
        docs.append(_load_json(snap, value.oid, path, blobs) if value else None)
    if not details:
        return {}
    result = annotation_diff(new.kind, docs[0], docs[1])
    return {"objects": result["objects"], "annotation": result}


def _load_json(snap: Snapshot, oid: bytes, path: str, blobs: dict[bytes, bytes] | None = None) -> Any:
    try:
        data = blobs.get(oid) if blobs else None
        return parse_json(data if data is not None else snap.store.get(oid), path)
    except BadInput:
        return None


def _meta_diff(a: Snapshot, b: Snapshot, change: tuple) -> dict:
    old, new = (_load_json(s, c.oid, "meta.json") if c else None for s, c in ((a, change[0]), (b, change[1])))
    out = {}
    for section, key in (("classes", "title"), ("tags", "name")):
        before, after = (_named(doc, section, key) for doc in (old, new))
        out[f"{section}_added"] = sorted(str(k) for k in set(after) - set(before))
        out[f"{section}_removed"] = sorted(str(k) for k in set(before) - set(after))
        out[f"{section}_changed"] = sorted(str(k) for k in set(before) & set(after) if before[k] != after[k])
    return out


def _named(doc: Any, section: str, key: str) -> dict:
    """The entries of `doc[section]` by their `key` (a title or name that is not a string, e.g. a list, by its JSON
    text): meta.json is whatever JSON the project holds, and the diff reports it without failing."""
    entries = doc.get(section) if isinstance(doc, dict) else None
    named = {}
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict):
            name = entry.get(key)
            named[name if isinstance(name, str) else json.dumps(name, sort_keys=True)] = entry
    return named


def _owner_candidates(rel: str) -> list[str]:
    """Item names a dataset file may belong to, by the layout's naming rules."""
    parts = rel.split("/")
    if len(parts) == 2:
        folder, name = parts
        if folder in MEDIA_DIRS.values():
            return [name]
        if folder == "ann" and name.endswith(".json"):
            return [name[: -len(".json")]]
        suffix = _COMPANION_SUFFIX.get(folder)
        if suffix and name.endswith(suffix):
            return [name[: -len(suffix)]]
    if len(parts) >= 3 and parts[0] in (*COMPANION_FOLDERS, MEDIA_DIRS["volumes"]):
        return [parts[1]]
    return []


def _owner_map(get_page, tree: Tree) -> dict[str, str]:
    return item_owner(iter_entries(tree.items, get_page, "items"))
