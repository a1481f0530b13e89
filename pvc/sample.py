"""Deterministic generator of realistic Supervisely image projects, for the demo, tests and benchmarks.

Layout and JSON follow the SDK's local format (supervisely-format.md sections 1.2, 2, 3). Every random choice
comes from one `random.Random(seed)` and images are saved with explicit parameters, so the same arguments give
a byte-identical tree.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import math
import random
import time
import zlib
from pathlib import Path

from PIL import Image, ImageDraw

__all__ = ["make_image_project", "mutate_image_project", "main"]

# (title, geometry type string as in meta.json and `geometryType`, colour); one class per geometry.
_CLASSES = [
    ("car", "rectangle", "#E53935"), ("road", "polygon", "#43A047"), ("lemon", "bitmap", "#FDD835"),
    ("lane", "line", "#1E88E5"), ("landmark", "point", "#8E24AA"), ("person", "graph", "#FB8C00"),
]
_CLASS_ID = {title: 7001 + i for i, (title, _, _) in enumerate(_CLASSES)}
# Keypoint template of the graph class: node id -> relative [x, y] inside the object's box.
_SKELETON = {"head": (0.5, 0.0), "neck": (0.5, 0.3), "l_hand": (0.0, 0.5), "r_hand": (1.0, 0.5), "hip": (0.5, 1.0)}
_BONES = [("head", "neck"), ("neck", "l_hand"), ("neck", "r_hand"), ("neck", "hip")]
_WEATHER = ["sunny", "cloudy", "rain", "snow"]
_COMMENTS = ["blurry", "check later", "größer als üblich", "partly occluded", "ok"]
_TAG_METAS = [  # name, value_type, applicable_type, colour
    ("reviewed", "none", "all", "#9E9E9E"), ("confidence", "any_number", "objectsOnly", "#00ACC1"),
    ("comment", "any_string", "all", "#6D4C41"), ("weather", "oneof_string", "imagesOnly", "#3949AB"),
]
_DATASET_NAMES = ["train", "val", "test", "holdout"]
_TRICKY_STEMS = ["straße {:03d}", "猫 {:03d}", "café au lait {:03d}", "Ölfeld-{:03d}", "naïve shot {:03d}"]
# (format, mode): JPEG RGB is the common case, as in real projects.
_KINDS = [("JPEG", "RGB"), ("JPEG", "RGB"), ("JPEG", "L"), ("PNG", "RGB"), ("PNG", "L"), ("PNG", "RGBA")]
# Encoded bytes per pixel of random noise, measured with the save parameters of `_encode`.
_NOISE_BYTES_PER_PIXEL = {
    ("JPEG", "RGB"): 0.93, ("JPEG", "L"): 0.81, ("PNG", "RGB"): 3, ("PNG", "L"): 1, ("PNG", "RGBA"): 4,
}


def make_image_project(root: Path, *, items: int = 24, datasets: int = 2, nested: bool = True, seed: int = 0,
                       noise: bool = False, extras: bool = True, tricky_names: bool = True) -> Path:
    """Write a Supervisely image project of `items` items at `root` (absent or empty) and return it."""
    root = Path(root)
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} exists and is not empty")
    dirs = _dataset_dirs(root, datasets, nested, tricky_names)
    if items < len(dirs):
        raise ValueError(f"need at least one item per dataset ({len(dirs)}), got items={items}")
    rng = random.Random(seed)
    _write_json(root / "meta.json", _project_meta())
    for k in range(items):
        ds = dirs[k % len(dirs)]
        fmt, mode = rng.choice(_KINDS)
        name = _item_name(rng, k, fmt, tricky_names)
        data, ann = _write_item(rng, ds, name, fmt, mode, noise)
        _write_companions(rng, ds, name, data, ann, item_id=300000 + k, dataset_id=900 + k % len(dirs))
    if extras:  # files the layout does not know about, as people leave them next to their data
        _write_bytes(root / "README.md", f"# Sample project\n\n{items} generated items.\n".encode())
        _write_bytes(dirs[0] / "notes.txt", b"Labelled by team A; see docs/readme.txt.\n")
        _write_bytes(root / "docs" / "readme.txt", b"Free-form notes kept with the project.\n")
    return root


def mutate_image_project(
    root: Path, *, seed: int = 1, edit: float = 0.01, add: float = 0.01, delete: float = 0.005
) -> dict[str, list[str]]:
    """Edit, add and delete items in place, like a labelling session would.

    Fractions are of the current item count: at least one item is edited and one added, and at
    least one is deleted when there are 10 items or more. Returns `{"edited", "added", "deleted"}`,
    each a sorted list of the files (posix paths relative to `root`) written, created or removed.
    """
    root = Path(root)
    rng = random.Random(seed)
    anns = _annotation_files(root)
    if not anns:
        raise ValueError(f"{root} holds no items")
    n = len(anns)
    n_delete = min(max(round(delete * n), 1 if n >= 10 else 0), n - 1)
    n_edit = min(max(round(edit * n), 1), n - n_delete)
    picked = rng.sample(anns, n_edit + n_delete)
    datasets = sorted({p.parent.parent for p in anns}, key=lambda p: p.as_posix())
    edited = [_edit_annotation(rng, p) for p in picked[:n_edit]]
    deleted = [f for p in picked[n_edit:] for f in _delete_item(p)]
    added = [f for k in range(max(round(add * n), 1)) for f in _add_item(rng, rng.choice(datasets), seed, k)]
    return {key: sorted(p.relative_to(root).as_posix() for p in paths)
            for key, paths in (("edited", edited), ("added", added), ("deleted", deleted))}



def _dataset_dirs(root: Path, datasets: int, nested: bool, tricky: bool) -> list[Path]:
    """Top-level dataset folders, then the nested child of the first one."""
    if datasets < 1:
        raise ValueError(f"need at least one dataset, got datasets={datasets}")
    names = [_DATASET_NAMES[i] if i < len(_DATASET_NAMES) else f"part_{i}" for i in range(datasets)]
    if tricky:
        names[-1] += " set"
    dirs = [root / name for name in names]
    if nested:
        dirs.append(dirs[0] / "datasets" / "hard_cases")
    return dirs


def _project_meta() -> dict:
    """`meta.json` as `ProjectMeta.to_json` writes it, with server ids as a download keeps them."""
    template = {
        "nodes": {nid: {"label": nid, "loc": [round(x * 100), round(y * 100)], "color": "#FB8C00"}
                  for nid, (x, y) in _SKELETON.items()},
        "edges": [{"src": a, "dst": b, "color": "#FFFFFF"} for a, b in _BONES],
    }
    classes = [
        {"title": title, "shape": geometry, "color": color,
         "geometry_config": template if geometry == "graph" else {},
         "id": _CLASS_ID[title], "hotkey": "", "description": ""}
        for title, geometry, color in _CLASSES
    ]
    tags = []
    for i, (name, value_type, applicable, color) in enumerate(_TAG_METAS):
        tag = {"name": name, "value_type": value_type, "color": color}
        if value_type == "oneof_string":
            tag["values"] = _WEATHER
        tags.append(tag | {"id": 8001 + i, "hotkey": "", "applicable_type": applicable, "classes": []})
    return {"classes": classes, "tags": tags, "projectType": "images"}


def _item_name(rng: random.Random, k: int, fmt: str, tricky: bool) -> str:
    """Unique file name of item `k`; every 7th one is tricky (spaces, non-ASCII) when asked."""
    ext = ".png" if fmt == "PNG" else rng.choice([".jpg", ".jpg", ".jpg", ".jpeg"])
    stem = _TRICKY_STEMS[k // 7 % len(_TRICKY_STEMS)].format(k) if tricky and k % 7 == 3 else f"img_{k:05d}"
    return stem + ext



def _write_item(rng: random.Random, ds: Path, name: str, fmt: str, mode: str, noise: bool) -> tuple[bytes, dict]:
    """Write `img/<name>` and `ann/<name>.json`; return the image bytes and the annotation."""
    image = _noise_image(rng, fmt, mode) if noise else _drawn_image(rng, mode)
    data = _encode(image, fmt)
    ann = _annotation(rng, *image.size)
    _write_bytes(ds / "img" / name, data)
    _write_json(ds / "ann" / f"{name}.json", ann)
    return data, ann


def _write_companions(rng: random.Random, ds: Path, name: str, data: bytes, ann: dict, *,
                      item_id: int, dataset_id: int) -> None:
    """Sometimes write `meta/<name>.json` (ImageInfo.meta) and `img_info/<name>.json` (ImageInfo)."""
    if rng.random() < 0.3:
        meta = {"camera": f"cam-{rng.randint(1, 4)}", "frame": rng.randint(0, 9999)}
        _write_json(ds / "meta" / f"{name}.json", meta)
    if rng.random() < 0.2:
        ext = name.rsplit(".", 1)[1]
        stamp = _stamp(rng)
        _write_json(ds / "img_info" / f"{name}.json", {
            "id": item_id, "name": name, "link": None,
            "hash": base64.b64encode(hashlib.sha256(data).digest()).decode(),
            "mime": "image/png" if ext == "png" else "image/jpeg", "ext": ext, "size": len(data),
            "width": ann["size"]["width"], "height": ann["size"]["height"],
            "labels_count": len(ann["objects"]), "dataset_id": dataset_id,
            "created_at": stamp, "updated_at": stamp, "meta": {},
            "path_original": f"/images/original/{item_id}.{ext}",
            "full_storage_url": f"https://app.example.com/images/original/{item_id}.{ext}", "tags": [],
        })


def _drawn_image(rng: random.Random, mode: str) -> Image.Image:
    """A small picture: a plain background with a few filled shapes."""
    size = (rng.randint(40, 200), rng.randint(40, 200))
    image = Image.new(mode, size, _colour(rng, mode))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(1, 4)):
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape(_box(rng, *size), fill=_colour(rng, mode))
    return image


def _noise_image(rng: random.Random, fmt: str, mode: str) -> Image.Image:
    """Incompressible random pixels, sized so the encoded file is roughly 16-64 KB."""
    pixels = rng.uniform(16, 64) * 1024 / _NOISE_BYTES_PER_PIXEL[fmt, mode]
    aspect = rng.uniform(0.75, 1.33)
    w, h = round(math.sqrt(pixels * aspect)), round(math.sqrt(pixels / aspect))
    return Image.frombytes(mode, (w, h), rng.randbytes(w * h * len(mode)))


def _encode(image: Image.Image, fmt: str) -> bytes:
    """Encode with every parameter explicit, so the bytes never depend on Pillow defaults."""
    buf = io.BytesIO()
    if fmt == "JPEG":
        image.save(buf, "JPEG", quality=90, subsampling=2, optimize=False, progressive=False)
    else:
        image.save(buf, "PNG", compress_level=6, optimize=False)
    return buf.getvalue()


def _colour(rng: random.Random, mode: str) -> tuple[int, ...]:
    return tuple(rng.randrange(256) for _ in mode[:3]) + ((255,) if mode == "RGBA" else ())


def _box(rng: random.Random, w: int, h: int) -> list[int]:
    """A box `[left, top, right, bottom]` of at least 4x4 px inside a `w` x `h` image."""
    left, top = rng.randrange(w - 4), rng.randrange(h - 4)
    return [left, top, rng.randint(left + 3, w - 1), rng.randint(top + 3, h - 1)]


def _stamp(rng: random.Random) -> str:
    month, day, hour, minute = rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23), rng.randint(0, 59)
    return f"2024-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:00.000Z"



def _annotation(rng: random.Random, w: int, h: int) -> dict:
    """An image annotation as `Annotation.to_json` lays it out."""
    tags = [{"name": "weather", "value": rng.choice(_WEATHER)}]
    if rng.random() < 0.3:
        tags.append({"name": "comment", "value": rng.choice(_COMMENTS)})
    if rng.random() < 0.3:
        tags.append({"name": "reviewed", "labelerLogin": "alice", "createdAt": _stamp(rng)})
    return {
        "description": rng.choice(["", "", "night shot", "déjà vu"]),
        "size": {"height": h, "width": w},
        "tags": tags,
        "objects": [_object(rng, w, h) for _ in range(rng.randint(1, 10))],
        "customBigData": {},
    }


def _object(rng: random.Random, w: int, h: int) -> dict:
    """One label: class, tags, the geometry keys at top level; some carry server ids."""
    title, geometry, _ = rng.choice(_CLASSES)
    obj = {"id": rng.randint(10**7, 10**8), "classId": _CLASS_ID[title]} if rng.random() < 0.3 else {}
    tags = [{"name": "confidence", "value": round(rng.random(), 3)}] if rng.random() < 0.4 else []
    return obj | {
        "classTitle": title, "description": "", "tags": tags, **_GEOMETRIES[geometry](rng, w, h),
        "geometryType": geometry, "shape": geometry,
    }


def _rectangle(rng: random.Random, w: int, h: int) -> dict:
    left, top, right, bottom = _box(rng, w, h)
    return {"points": {"exterior": [[left, top], [right, bottom]], "interior": []}}


def _polygon(rng: random.Random, w: int, h: int) -> dict:
    """A star-shaped polygon; half of them have a hole well inside."""
    r = min(w, h) * rng.uniform(0.2, 0.45)
    cx, cy = rng.uniform(r, w - 1 - r), rng.uniform(r, h - 1 - r)
    holes = [_ring(rng, cx, cy, r * 0.3, 4)] if rng.random() < 0.5 else []
    return {"points": {"exterior": _ring(rng, cx, cy, r, rng.randint(5, 9)), "interior": holes}}


def _ring(rng: random.Random, cx: float, cy: float, r: float, n: int) -> list[list[int]]:
    """`n` vertices at evenly spread angles and radii in [0.7r, r], so the ring encloses 0.45r."""
    points = []
    for i in range(n):
        angle, radius = 2 * math.pi * (i + rng.uniform(-0.2, 0.2)) / n, r * rng.uniform(0.7, 1.0)
        points.append([int(cx + radius * math.cos(angle)), int(cy + radius * math.sin(angle))])
    return points


def _bitmap(rng: random.Random, w: int, h: int) -> dict:
    """A blob mask encoded as the SDK does: base64(zlib(1-bit palette PNG of the cropped mask))."""
    left, top, right, bottom = _box(rng, w, h)
    mask = Image.new("L", (right - left + 1, bottom - top + 1), 0)
    draw = ImageDraw.Draw(mask)
    draw.ellipse([0, 0, mask.width - 1, mask.height - 1], fill=1)
    bite = [rng.randint(mask.width // 2 + 1, mask.width), rng.randint(mask.height // 2 + 1, mask.height)]
    draw.rectangle(bite + list(mask.size), fill=0)  # cut a corner off; the centre stays set
    x0, y0, x1, y1 = mask.getbbox()
    mask = mask.crop((x0, y0, x1, y1))
    mask.putpalette([0, 0, 0, 255, 255, 255])
    buf = io.BytesIO()
    mask.save(buf, "PNG", transparency=0, optimize=False)
    data = base64.b64encode(zlib.compress(buf.getvalue())).decode()
    return {"bitmap": {"origin": [left + x0, top + y0], "data": data}}


def _line(rng: random.Random, w: int, h: int) -> dict:
    exterior = [[rng.randrange(w), rng.randrange(h)] for _ in range(rng.randint(2, 6))]
    return {"points": {"exterior": exterior, "interior": []}}


def _point(rng: random.Random, w: int, h: int) -> dict:
    return {"points": {"exterior": [[rng.randrange(w), rng.randrange(h)]], "interior": []}}


def _graph(rng: random.Random, w: int, h: int) -> dict:
    """Keypoints of the class template, placed in a random box; a few nodes are disabled."""
    left, top, right, bottom = _box(rng, w, h)
    nodes = {}
    for nid, (x, y) in _SKELETON.items():
        nodes[nid] = {"loc": [round(left + x * (right - left)), round(top + y * (bottom - top))]}
        if rng.random() < 0.1:
            nodes[nid]["disabled"] = True
    return {"nodes": nodes}


_GEOMETRIES = {"rectangle": _rectangle, "polygon": _polygon, "bitmap": _bitmap,
               "line": _line, "point": _point, "graph": _graph}



def _annotation_files(root: Path) -> list[Path]:
    """Every `ann/*.json` under `root` outside hidden folders (such as a `.pvc/` store), sorted."""
    found = [p for p in root.rglob("*.json") if p.parent.name == "ann"
             and not any(part.startswith(".") for part in p.relative_to(root).parts)]
    return sorted(found, key=lambda p: p.as_posix())


def _edit_annotation(rng: random.Random, ann_path: Path) -> Path:
    """Nudge one polygon vertex towards the image centre (if any polygon) and add an object."""
    ann = json.loads(ann_path.read_bytes())
    w, h = ann["size"]["width"], ann["size"]["height"]
    polygons = [o for o in ann["objects"] if o.get("geometryType") == "polygon"]
    if polygons:
        vertices = rng.choice(polygons)["points"]["exterior"]
        i, step = rng.randrange(len(vertices)), rng.randint(1, 3)
        x, y = vertices[i]
        vertices[i] = [x + step if x < w / 2 else x - step, y + step if y < h / 2 else y - step]
    ann["objects"].append(_object(rng, w, h))
    _write_json(ann_path, ann)
    return ann_path


def _delete_item(ann_path: Path) -> list[Path]:
    """Remove an item's image, annotation and companions; return the removed files."""
    ds, name = ann_path.parent.parent, ann_path.name.removesuffix(".json")
    files = [ds / "img" / name, ann_path, ds / "meta" / ann_path.name, ds / "img_info" / ann_path.name]
    files = [f for f in files if f.exists()]
    for f in files:
        f.unlink()
    return files


def _add_item(rng: random.Random, ds: Path, seed: int, k: int) -> list[Path]:
    """Write a new drawn item in `ds` under a name no item there has; return its two files."""
    fmt, mode = rng.choice(_KINDS)
    stem, ext = f"added_s{seed}_{k:04d}", ".png" if fmt == "PNG" else ".jpg"
    n = 0
    while (ds / "img" / f"{stem}{ext}").exists() or (ds / "ann" / f"{stem}{ext}.json").exists():
        n += 1
        stem = f"added_s{seed}_{k:04d}_{n}"
    _write_item(rng, ds, stem + ext, fmt, mode, noise=False)
    return [ds / "img" / f"{stem}{ext}", ds / "ann" / f"{stem}{ext}.json"]



def _write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _write_json(path: Path, obj: object) -> None:
    """JSON as the SDK dumps it: indent=4, insertion order, ASCII escapes, no final newline."""
    _write_bytes(path, json.dumps(obj, indent=4).encode())


def main(argv: list[str] | None = None) -> None:
    """`python -m pvc.sample DIR --items N --datasets D --seed S [--noise]`: generate a project."""
    parser = argparse.ArgumentParser(prog="python -m pvc.sample", description="Generate a sample image project.")
    parser.add_argument("dir", type=Path, help="project folder to create (absent or empty)")
    parser.add_argument("--items", type=int, default=24, help="number of images (default 24)")
    parser.add_argument("--datasets", type=int, default=2, help="top-level datasets (default 2), plus a nested one")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--noise", action="store_true", help="incompressible 16-64 KB images, for benchmarks")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        root = make_image_project(args.dir, items=args.items, datasets=args.datasets, seed=args.seed, noise=args.noise)
    except (FileExistsError, ValueError) as err:
        parser.error(str(err))
    files = [p for p in root.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    seconds = time.perf_counter() - start
    print(f"{root}: {args.items} items, {len(files)} files, {size / 1e6:.1f} MB in {seconds:.1f}s")


if __name__ == "__main__":
    main()
