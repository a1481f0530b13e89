"""What a partial restore writes: some datasets (nested names too), the items of some classes, the items whose
paths match a pattern. The result stays a valid project: every project-level file (the whole `meta.json`), each
chosen dataset's extra files and folders, and every chosen item whole (media, annotation, companions).

Only what is needed is read: the trees on the way to a chosen dataset, the pages of chosen datasets, and (when
restoring) the blobs of the chosen files. The trees of datasets that are not chosen are never opened.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from pvc.core.snapshot import DatasetView, FileEntry, Snapshot, safe_relpath
from pvc.errors import BadInput, UsageError
from pvc.project.annotation import project_meta_summary
from pvc.project.jsonfile import parse_json
from pvc.project.layout import MEDIA_DIRS
from pvc.record import field, record
from pvc.store.model import ChildRef, ItemEntry, Tree

__all__ = ["Selection", "Plan", "plan_restore"]


@record(frozen=True)
class Selection:
    """Which part of a version to restore; every field empty: all of it. Fields combine with AND, the values
    of one field with OR."""

    datasets: tuple[str, ...] = ()  # full names: `train`, `val/sub`; a dataset brings the datasets nested in it
    classes: tuple[str, ...] = ()  # items whose annotation has an object of that class or a tag of that name
    include: tuple[str, ...] = ()  # items with a file path (from the project root) or `dataset/item` matching

    @property
    def whole(self) -> bool:
        return not (self.datasets or self.classes or self.include)

    def to_json(self) -> dict:
        return {"datasets": list(self.datasets), "classes": list(self.classes), "include": list(self.include)}


@record
class Plan:
    files: list[FileEntry] = field(default_factory=list)
    items: dict[tuple[str, str], ItemEntry] = field(default_factory=dict)  # (dataset, item) -> entry, chosen
    datasets: list[str] = field(default_factory=list)  # the datasets restored, parents before children
    folders: dict[str, str] = field(default_factory=dict)  # dataset name -> its folder, for those restored
    empty_folders: list[str] = field(default_factory=list)  # folders that keep a chosen dataset with no item one


def plan_restore(snap: Snapshot, selection: Selection = Selection()) -> Plan:
    """The files of `snap` that `selection` keeps, reading only the trees and pages it needs."""
    plan = Plan(files=list(snap.root_files()))
    if selection.classes:
        _check_classes(snap, plan.files, selection.classes)
    wanted = set(selection.datasets)
    seen: list[str] = []
    stack = list(reversed(snap.root.children))
    while stack:
        child = stack.pop()
        seen.append(child.name)
        chosen = not wanted or any(child.name == w or child.name.startswith(w + "/") for w in wanted)
        if not chosen and not any(w.startswith(child.name + "/") for w in wanted):
            continue  # neither chosen nor on the way to a chosen dataset: not even its tree is read
        tree = snap.store.get_object(child.oid, Tree)
        if chosen:
            _add_dataset(snap, plan, child, tree, selection)
        stack.extend(reversed(tree.children))
    missing = sorted(wanted - set(plan.datasets))
    if missing:
        raise UsageError(f"dataset {missing[0]!r} is not in this version (datasets seen: {', '.join(seen) or 'none'})")
    return plan


def _add_dataset(snap: Snapshot, plan: Plan, child: ChildRef, tree: Tree, selection: Selection) -> None:
    ds = DatasetView(child.name, child.folder, tree, child.oid)
    snap.store.prefetch([ref.oid for ref in (*tree.items, *tree.files)])  # a remote reads them in a few requests
    owner: dict[str, str] = {}
    for name, item in ds.items(snap.store):
        if _item_chosen(ds.name, ds.dir, name, item, selection):
            plan.items[(ds.name, name)] = item
        owner.update(dict.fromkeys(item.files(), name))
    kept = 0
    for rel, value in ds.files(snap.store):
        item = owner.get(rel)
        if item is None or (ds.name, item) in plan.items:
            plan.files.append(FileEntry(safe_relpath(f"{ds.dir}/{rel}", f"tree of {ds.name}"), value.oid, value.size,
                                        value.mode, ds.name, item))
            kept += item is not None
    plan.datasets.append(ds.name)
    plan.folders[ds.name] = ds.dir
    if not selection.whole and not kept and snap.manifest.layout == "supervisely":
        media_dir = MEDIA_DIRS.get(snap.manifest.project_type, "img")
        plan.empty_folders += [f"{ds.dir}/{media_dir}", f"{ds.dir}/ann"]


def _item_chosen(dataset: str, folder: str, name: str, item: ItemEntry, selection: Selection) -> bool:
    if selection.classes:
        summary = item.annotation if isinstance(item.annotation, dict) else {}
        names = set(summary.get("objects") or {}) | set(summary.get("tags") or [])
        if not names & set(selection.classes):
            return False
    if selection.include:
        paths = [f"{dataset}/{name}", *(f"{folder}/{p}" for p in item.files())]
        if not any(fnmatchcase(p, pattern) for pattern in selection.include for p in paths):
            return False
    return True


def _check_classes(snap: Snapshot, root_files: list[FileEntry], classes: tuple[str, ...]) -> None:
    """Every `--class` must be a class or a tag of the version's meta.json (a typo would restore nothing)."""
    meta = next((f for f in root_files if f.path == "meta.json"), None)
    if meta is None or snap.manifest.layout != "supervisely":
        raise UsageError("--class needs a Supervisely project (this version has no meta.json)")
    try:
        summary = project_meta_summary(parse_json(snap.store.get(meta.oid), "meta.json"), "meta.json")
    except BadInput as exc:
        raise UsageError(f"--class cannot be checked: the version's {exc}") from None
    known = set(summary["classes"]) | set(summary["tags"])
    unknown = [c for c in classes if c not in known]
    if unknown:
        raise UsageError(f"{unknown[0]!r} is not a class or tag of this version's meta.json "
                         f"(classes: {', '.join(sorted(summary['classes'])) or 'none'})")
