"""Understanding a project: its datasets (nested too), their items, each item's files, and extras.

Supervisely layout (a `meta.json` at the root): a folder holding the type's media folder (`img/`,
`video/`, `volume/`), `ann/` or nested datasets under `datasets/` is a dataset; an item is a media file
plus `ann/<name>.json` (or the legacy `ann/<stem>.json`) plus its companions. Every other file is kept as
an extra of its dataset or of the project. Generic layout (no `meta.json`): each top-level folder is a
dataset and each file under it an item. Either way every file of the project belongs to exactly one tree.

The project type is meta.json's `projectType`. The SDK writes none unless told to (`VideoProject` and
`VolumeProject` never do), so without one the media folders of the datasets decide, and without media
folders the shape of an annotation (`sniff`). A declared type whose media folder some dataset lacks while
holding another type's is kept, with a warning: those media files are then extras, not items.

Volumes: a `.nrrd`, `.nii`, `.nii.gz` or `.npy` file in `volume/` is one item; a folder in `volume/` is
one DICOM series (the item is named after the folder); loose DICOM files (`.dcm` or no extension) are
grouped into series by SeriesInstanceUID once their headers are read (`add_dicom_series`): a series of
one file is named after the file, a longer one after its SeriesInstanceUID.
"""

from __future__ import annotations

from collections.abc import Callable

from pvc.errors import BadInput
from pvc.record import field, record

__all__ = ["Item", "Dataset", "Layout", "Sniff", "classify", "add_dicom_series", "dataset_items", "is_dicom_name", "suffix",
           "ITEM_KIND", "ANN_ROLE", "MEDIA_SUFFIXES", "MEDIA_DIRS", "IMAGE_SUFFIXES", "VIDEO_SUFFIXES",
           "VOLUME_SUFFIXES", "COMPANION_FILES", "COMPANION_FOLDERS"]

MEDIA_DIRS = {"images": "img", "videos": "video", "volumes": "volume", "point_clouds": "pointcloud",
              "point_cloud_episodes": "pointcloud", "meshes": "meshes"}
IMAGE_SUFFIXES = frozenset(".jpg .jpeg .mpo .bmp .png .webp .tiff .tif .nrrd .jfif".split())
VIDEO_SUFFIXES = frozenset(".avi .mp4 .3gp .flv .webm .wmv .mov .mkv".split())
VOLUME_FILE_SUFFIXES = (".nrrd", ".nii", ".nii.gz", ".npy")
VOLUME_SUFFIXES = frozenset(".nrrd .dcm .nii .gz .npy".split())
ANN_ROLE = {"images": "ann", "videos": "video_ann", "volumes": "volume_ann"}
# An item's companions, by the SDK's folder names: `<folder>/<item name><suffix>` per project type, and
# for volumes every file under `<folder>/<item name>/`.
COMPANION_FILES = {"images": {"meta": ".json", "img_info": ".json", "seg": ".png"},
                   "videos": {"video_info": ".json", "metadata": ".meta.json", "custom_data": ".json"}}
COMPANION_FOLDERS = ("mask", "interpolation")
ITEM_KIND = {"images": "image", "videos": "video", "volumes": "volume"}
# Which project type a media folder stands for, in the order that breaks a tie.
_TYPE_OF_MEDIA_DIR = {"img": "images", "video": "videos", "volume": "volumes", "pointcloud": "point_clouds",
                      "meshes": "meshes"}
_EPISODE_ANNOTATION = "annotation.json"  # a point-cloud episode dataset's one annotation
Sniff = Callable[[str], "str | None"]  # relpath of an annotation -> the project type its shape shows, or None
MEDIA_SUFFIXES = {"images": IMAGE_SUFFIXES, "videos": VIDEO_SUFFIXES, "volumes": VOLUME_SUFFIXES}


@record(frozen=True, slots=True)
class Item:
    """One item: its media file, annotation and companions, as paths relative to the dataset folder."""

    name: str
    kind: str
    media: tuple[str, ...]  # one file, the slices of a DICOM series, or none (annotation-only item)
    ann: str | None
    companions: tuple[str, ...] = ()

    def files(self) -> tuple[str, ...]:
        return tuple(p for p in (*self.media, self.ann, *self.companions) if p)


@record
class Dataset:
    name: str  # full name, e.g. "train/cats" for a nested dataset
    dir: str  # folder relative to the project root, e.g. "train/datasets/cats"
    files: list[str] = field(default_factory=list)  # every file of this dataset, relative to `dir`
    items: list[Item] = field(default_factory=list)
    children: list[Dataset] = field(default_factory=list)
    loose_dicom: list[str] = field(default_factory=list)  # DICOM files in volume/ awaiting add_dicom_series


@record
class Layout:
    kind: str  # "supervisely" | "generic"
    project_type: str
    root_files: list[str]  # files that belong to no dataset, relative to the project root
    datasets: list[Dataset]
    roles: dict[str, str]  # relpath -> meta | ann | video_ann | volume_ann | image | video | volume | dicom | file
    warnings: list[str] = field(default_factory=list)  # where the layout disagrees with meta.json

    def all_datasets(self) -> list[Dataset]:
        out, stack = [], list(reversed(self.datasets))
        while stack:
            ds = stack.pop()
            out.append(ds)
            stack.extend(reversed(ds.children))
        return out


class _Dir:
    """A folder of the scanned tree: its files and subfolders."""

    def __init__(self) -> None:
        self.files: list[str] = []
        self.dirs: dict[str, _Dir] = {}

    def add(self, parts: list[str]) -> None:
        node = self
        for part in parts[:-1]:
            node = node.dirs.setdefault(part, _Dir())
        node.files.append(parts[-1])

    def walk(self, prefix: str = ""):
        """Every file below, as paths relative to this folder (iterative: trees may be thousands deep)."""
        stack = [(prefix, self)]
        while stack:
            base, node = stack.pop()
            yield from (base + name for name in node.files)
            stack.extend((f"{base}{name}/", sub) for name, sub in reversed(node.dirs.items()))


def classify(relpaths: list[str], project_type: str | None, sniff: Sniff | None = None) -> Layout:
    """The layout of a project whose files are `relpaths`. `project_type` is meta.json's `projectType`, ""
    when meta.json has none (the layout decides; `sniff(relpath)` tells the type an annotation file has, or
    None), and None without `meta.json` (the generic layout)."""
    tree = _Dir()
    for rel in relpaths:
        tree.add(rel.split("/"))
    roles = _Roles(relpaths)
    if project_type is None:
        return _generic(tree, roles)
    found = _media_types(tree)
    warnings = _disagreements(project_type, found) if project_type else []
    if not project_type:
        project_type, warnings = _detected_type(found, tree, sniff)
    try:
        layout = _supervisely(tree, project_type, roles)
    except RecursionError:  # datasets nested inside datasets hundreds of levels deep
        raise BadInput("datasets", "datasets are nested too deeply to version") from None
    layout.warnings = warnings
    return layout


class _Roles(dict):
    """The roles map, keyed by the caller's own path strings (the scan's) rather than by the copies joined per
    dataset that are set: a capture holds the scan's paths to its end anyway, and a path is ~90 bytes."""

    def __init__(self, relpaths: list[str]) -> None:
        super().__init__()
        self._same = {rel: rel for rel in relpaths}

    def __setitem__(self, rel: str, role: str) -> None:
        super().__setitem__(self._same.get(rel, rel), role)

    def setdefault(self, rel: str, role: str) -> str:  # type: ignore[override]
        return super().setdefault(self._same.get(rel, rel), role)

    def done(self) -> _Roles:
        """The map as the layout keeps it (the key map dropped)."""
        self._same = {}
        return self


def _media_types(tree: _Dir) -> dict[str, list[str]]:
    """Project type -> the dataset folders (relative to the root) whose media folders stand for it."""
    found: dict[str, list[str]] = {}
    stack = [(name, node) for name, node in sorted(tree.dirs.items(), reverse=True)]
    while stack:
        rel, node = stack.pop()
        for folder, kind in _TYPE_OF_MEDIA_DIR.items():
            if folder in node.dirs:
                if kind == "point_clouds" and _EPISODE_ANNOTATION in node.files:
                    kind = "point_cloud_episodes"
                found.setdefault(kind, []).append(rel)
        nested = node.dirs.get("datasets")
        if nested is not None:
            stack.extend((f"{rel}/datasets/{child}", sub) for child, sub in sorted(nested.dirs.items(), reverse=True))
    return found


def _disagreements(declared: str, found: dict[str, list[str]]) -> list[str]:
    """A warning for each other type whose media folder a dataset holds without the declared type's."""
    media = MEDIA_DIRS[declared]
    own = {f for kind, folders in found.items() if MEDIA_DIRS[kind] == media for f in folders}
    warnings = []
    for kind, folders in found.items():
        strays = [f for f in folders if f not in own] if MEDIA_DIRS[kind] != media else []
        if strays:
            shown = ", ".join(strays[:5]) + (f" and {len(strays) - 5} more" if len(strays) > 5 else "")
            warnings.append(f"meta.json says projectType {declared!r}, but dataset folder(s) {shown} hold "
                            f"{MEDIA_DIRS[kind]}/ (a {kind} layout) and no {MEDIA_DIRS[declared]}/: their media "
                            "are versioned as extra files, not as items")
    return warnings


def _detected_type(found: dict[str, list[str]], tree: _Dir, sniff: Sniff | None) -> tuple[str, list[str]]:
    """The type of a project whose meta.json has no projectType: the media folders' (the most common one,
    with a warning, if they disagree), else an annotation's shape, else images."""
    if not found:
        return _sniffed(tree, sniff) or "images", []
    order = list(_TYPE_OF_MEDIA_DIR.values()) + ["point_cloud_episodes"]
    kind = max(found, key=lambda k: (len(found[k]), -order.index(k)))
    if len(found) == 1:
        return kind, []
    others = ", ".join(f"{MEDIA_DIRS[k]}/ in {len(v)}" for k, v in found.items() if k != kind)
    return kind, [f"meta.json has no projectType and the datasets disagree ({MEDIA_DIRS[kind]}/ in {len(found[kind])}, "
                  f"{others}): versioned as a {kind} project"]


def _sniffed(tree: _Dir, sniff: Sniff | None) -> str | None:
    """The type the first annotation file of an annotation-only project shows, if `sniff` can tell."""
    if sniff is None:
        return None
    for name, node in sorted(tree.dirs.items()):
        ann = node.dirs.get("ann")
        names = sorted(n for n in ann.files if n.endswith(".json")) if ann else []
        if names:
            return sniff(f"{name}/ann/{names[0]}")
    return None


def _generic(tree: _Dir, roles: _Roles) -> Layout:
    datasets = []
    for name in sorted(tree.dirs):
        ds = Dataset(name=name, dir=name, files=sorted(tree.dirs[name].walk()))
        for rel in ds.files:
            kind = "image" if suffix(rel) in IMAGE_SUFFIXES else "file"
            ds.items.append(Item(name=rel, kind=kind, media=(rel,), ann=None))
            roles[f"{name}/{rel}"] = kind
        datasets.append(ds)
    root_files = sorted(tree.files)
    for rel in root_files:
        roles[rel] = "file"
    return Layout("generic", "generic", root_files, datasets, roles.done())


def _supervisely(tree: _Dir, project_type: str, roles: _Roles) -> Layout:
    media_dir = MEDIA_DIRS[project_type]
    datasets, root_files = [], list(tree.files)
    for name in sorted(tree.dirs):
        node = tree.dirs[name]
        if _is_dataset(node, media_dir):
            datasets.append(_dataset(node, name, name, project_type, roles))
        else:
            root_files.extend(node.walk(f"{name}/"))
    root_files.sort()
    for rel in root_files:
        roles.setdefault(rel, "meta" if rel == "meta.json" else "file")
    return Layout("supervisely", project_type, root_files, datasets, roles.done())


def _is_dataset(node: _Dir, media_dir: str) -> bool:
    if media_dir in node.dirs or "ann" in node.dirs:
        return True
    nested = node.dirs.get("datasets")
    return nested is not None and any(_is_dataset(child, media_dir) for child in nested.dirs.values())


def _dataset(node: _Dir, name: str, rel_dir: str, project_type: str, roles: dict[str, str]) -> Dataset:
    media_dir = MEDIA_DIRS[project_type]
    ds = Dataset(name=name, dir=rel_dir)
    nested = node.dirs.get("datasets")
    child_names = set()
    if nested is not None:
        for child in sorted(nested.dirs):
            if _is_dataset(nested.dirs[child], media_dir):
                child_names.add(child)
                ds.children.append(
                    _dataset(nested.dirs[child], f"{name}/{child}", f"{rel_dir}/datasets/{child}", project_type, roles)
                )
    for rel in node.walk():
        parts = rel.split("/")
        if not (len(parts) > 2 and parts[0] == "datasets" and parts[1] in child_names):
            ds.files.append(rel)
    ds.files.sort()
    ds.items, ds.loose_dicom = _items(ds.files, node, project_type)
    _assign_roles(ds, project_type, roles)
    for rel in ds.loose_dicom:
        roles[f"{rel_dir}/{rel}"] = "dicom"
    for rel in ds.files:
        roles.setdefault(f"{rel_dir}/{rel}", "file")
    return ds


def _assign_roles(ds: Dataset, project_type: str, roles: dict[str, str]) -> None:
    kind = ITEM_KIND.get(project_type, "file")
    for item in ds.items:
        series = project_type == "volumes" and (len(item.media) > 1 or (item.media and is_dicom_name(item.media[0])))
        media_role = "dicom" if series else kind
        for rel in item.media:
            roles[f"{ds.dir}/{rel}"] = media_role
        if item.ann:
            roles[f"{ds.dir}/{item.ann}"] = ANN_ROLE.get(project_type, "file")


def add_dicom_series(ds: Dataset, series_of: dict[str, str]) -> None:
    """Turn the dataset's loose DICOM files into items, one per SeriesInstanceUID (`series_of`: rel -> uid)."""
    groups: dict[str, list[str]] = {}
    for rel in ds.loose_dicom:
        groups.setdefault(series_of[rel], []).append(rel)
    files = set(ds.files)
    taken = {item.name for item in ds.items if item.media}
    for uid, rels in sorted(groups.items()):
        name = rels[0].rsplit("/", 1)[-1] if len(rels) == 1 else uid
        if name in taken:
            name = f"{name}-{uid}"
        ann = f"ann/{name}.json" if f"ann/{name}.json" in files else None
        ds.items = [i for i in ds.items if not (i.ann == ann and not i.media)] if ann else ds.items
        ds.items.append(Item(name, "volume", tuple(sorted(rels)), ann, _companions(name, files, "volumes")))
        taken.add(name)
    ds.items.sort(key=lambda i: i.name)
    ds.loose_dicom = []


def dataset_items(file_list: list[str], project_type: str) -> list[Item]:
    """The items a dataset folder holding just `file_list` (paths relative to it, sorted) has, as `classify` tells
    them (an image or video project's: no DICOM series to group)."""
    node = _Dir()
    for rel in file_list:
        node.add(rel.split("/"))
    return _items(file_list, node, project_type)[0]


def _items(file_list: list[str], node: _Dir, project_type: str) -> tuple[list[Item], list[str]]:
    """The dataset's items, and (volumes only) the loose DICOM files still to be grouped into series. The items'
    paths are the very strings of the dataset's file list (joined copies would cost ~80 bytes a file more)."""
    files = {rel: rel for rel in file_list}
    media_dir = MEDIA_DIRS[project_type]
    media_node = node.dirs.get(media_dir, _Dir())
    ann_files = set(node.dirs["ann"].files) if "ann" in node.dirs else set()
    kind = ITEM_KIND.get(project_type, "file")
    media, loose = _media_of(media_node, media_dir, project_type)
    items, claimed = [], set()
    for name, paths in sorted(media.items()):
        ann = _annotation_for(name, ann_files, claimed)
        items.append(Item(name, kind, tuple(files.get(p, p) for p in paths), ann and files.get(ann, ann),
                          _companions(name, files, project_type)))
    for ann_name in sorted(ann_files - claimed):
        if ann_name.endswith(".json"):  # annotation-only item: the media was not downloaded
            name = ann_name[: -len(".json")]
            ann = f"ann/{ann_name}"
            items.append(Item(name, kind, (), files.get(ann, ann), _companions(name, files, project_type)))
    items.sort(key=lambda i: i.name)
    return items, loose


def _media_of(media_node: _Dir, media_dir: str, project_type: str) -> tuple[dict[str, tuple[str, ...]], list[str]]:
    """Item name -> its media files (relative to the dataset), and loose DICOM files of a volume project."""
    if project_type != "volumes":
        suffixes = MEDIA_SUFFIXES.get(project_type)
        return {n: (f"{media_dir}/{n}",) for n in media_node.files if suffixes is None or suffix(n) in suffixes}, []
    media = {n: (f"{media_dir}/{n}",) for n in media_node.files if n.lower().endswith(VOLUME_FILE_SUFFIXES)}
    loose = sorted(f"{media_dir}/{n}" for n in media_node.files if is_dicom_name(n))
    for folder, sub in media_node.dirs.items():  # a folder of slices is one DICOM series
        media[folder] = tuple(sorted(sub.walk(f"{media_dir}/{folder}/")))
    return media, loose


def is_dicom_name(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return base.lower().endswith(".dcm") or "." not in base


def _annotation_for(name: str, ann_files: set[str], claimed: set[str]) -> str | None:
    stem = name.rsplit(".", 1)[0]
    for candidate in (f"{name}.json", f"{stem}.json"):
        if candidate in ann_files and candidate not in claimed:
            claimed.add(candidate)
            return f"ann/{candidate}"
    return None


def _companions(name: str, files: set[str] | dict[str, str], project_type: str) -> tuple[str, ...]:
    """The item's companion files that exist, per the SDK's folder names for the type (with `files` a map of each
    path to itself, those very strings)."""
    if project_type == "volumes":
        found = [f for f in files if f.startswith(tuple(f"{folder}/{name}/" for folder in COMPANION_FOLDERS))]
    else:
        candidates = [f"{folder}/{name}{suffix}" for folder, suffix in COMPANION_FILES.get(project_type, {}).items()]
        found = [files[c] if isinstance(files, dict) else c for c in candidates if c in files]
    return tuple(sorted(found))


def suffix(name: str) -> str:
    """The lower-cased suffix that decides what a file in a media folder is ("" for none)."""
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""
