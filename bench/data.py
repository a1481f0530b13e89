"""Benchmark data: the image project (pvc.sample), its mutation, a video and a volume project, a big file.

Everything is seeded, so two runs with the same settings measure the same bytes.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from pathlib import Path

from pvc.sample import make_image_project, mutate_image_project

__all__ = ["image_project", "mutate", "jpeg_project", "mutate_jpeg", "video_project", "volume_project", "big_file", "edit_in_place",
           "listing", "tree_bytes", "copy_tree", "remove", "Snapshot"]

EDIT, ADD, DELETE = 0.01, 0.01, 0.005


def image_project(root: Path, items: int, datasets: int, seed: int) -> Path:
    """N noise JPEG/PNG items (16-64 KB, incompressible) with annotations, as `python -m pvc.sample --noise`."""
    return make_image_project(root, items=items, datasets=datasets, seed=seed, noise=True)


def mutate(root: Path, seed: int) -> dict[str, list[str]]:
    """A labelling session: edit 1% of annotations, add 1% items, delete 0.5% (deterministic per tree)."""
    return mutate_image_project(root, seed=seed, edit=EDIT, add=ADD, delete=DELETE)


# --------------------------------------------------------------------------- the JPEG-only profile


def jpeg_project(root: Path, items: int, datasets: int, seed: int, tiny: bool = False) -> Path:
    """The second profile, unlike pvc.sample's: JPEG-only items (gradient + noise at quality 90, ~16-62 KB), one
    annotation JSON per image with 1-10 polygons and rectangles (~0.7-4.6 KB), flat datasets, no companions.
    `tiny`: 28-52 px images (~1-2 KB), for runs of 100k items and more that measure per-item costs."""
    import numpy as np

    rng = np.random.default_rng(seed)
    _write_json(root / "meta.json", {"classes": [
        {"title": t, "shape": shape, "color": c, "geometry_config": {}, "id": 9001 + i, "hotkey": "", "description": ""}
        for i, (t, shape, c) in enumerate((("car", "rectangle", "#E53935"), ("road", "polygon", "#43A047"),
                                           ("sign", "rectangle", "#1E88E5"), ("tree", "polygon", "#8E24AA")))],
        "tags": [], "projectType": "images"})
    for k in range(items):
        _jpeg_item(rng, root / f"ds{k % datasets}", f"frame_{k:07d}.jpg", tiny)
    return root


def _jpeg_item(rng, ds: Path, name: str, tiny: bool) -> None:
    import io

    import numpy as np
    from PIL import Image

    w = int(rng.integers(28, 52)) if tiny else int(rng.integers(280, 520))
    h = int(w * rng.uniform(0.6, 0.8))
    yy, xx = np.mgrid[0:h, 0:w]
    a, b = rng.uniform(0.2, 1.0, 2)
    base = (xx * a * 255 / w + yy * b * 255 / h) % 256
    pixels = np.clip(base[..., None] * np.array([1.0, 0.8, 0.6]) + rng.normal(0, 9, (h, w, 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=90)
    (ds / "img").mkdir(parents=True, exist_ok=True)
    (ds / "img" / name).write_bytes(buf.getvalue())
    _write_json(ds / "ann" / f"{name}.json", _jpeg_annotation(rng, w, h))


def _jpeg_annotation(rng, w: int, h: int) -> dict:
    objects = []
    for i in range(int(rng.integers(1, 11))):
        if rng.random() < 0.5:
            x0, y0 = int(rng.integers(0, max(1, w - 20))), int(rng.integers(0, max(1, h - 20)))
            geometry = {"points": {"exterior": [[x0, y0], [x0 + int(rng.integers(10, 200)), y0 + int(rng.integers(10, 120))]],
                                   "interior": []}}
            cls, shape = ("car", "rectangle") if rng.random() < 0.6 else ("sign", "rectangle")
        else:
            n = int(rng.integers(4, 14))
            cx, cy = rng.uniform(0, w), rng.uniform(0, h)
            ring = [[int(cx + rng.uniform(-60, 60)), int(cy + rng.uniform(-60, 60))] for _ in range(n)]
            geometry = {"points": {"exterior": ring, "interior": []}}
            cls, shape = ("road", "polygon") if rng.random() < 0.5 else ("tree", "polygon")
        objects.append({"id": int(rng.integers(10**8, 10**9)), "classId": 0, "classTitle": cls, "geometryType": shape,
                        "labelerLogin": "annotator", "createdAt": "2026-11-20T10:00:00.000Z",
                        "updatedAt": "2026-11-20T10:00:00.000Z", "description": "", "tags": [], **geometry})
    return {"description": "", "tags": [], "size": {"height": h, "width": w}, "objects": objects}


def mutate_jpeg(root: Path, seed: int, tiny: bool = False) -> dict[str, list[str]]:
    """The profile's labelling session: 1% of annotations rewritten, 1% items added, 0.5% deleted."""
    import numpy as np

    rng = np.random.default_rng(seed)
    anns = sorted(root.glob("ds*/ann/*.json"))
    n = len(anns)
    picked = [anns[i] for i in rng.choice(n, size=max(1, round(0.015 * n)), replace=False)]
    cut = max(1, round(0.01 * n))
    edited, deleted, added = [], [], []
    for ann in picked[:cut]:
        doc = json.loads(ann.read_text())
        doc["objects"] = _jpeg_annotation(rng, doc["size"]["width"], doc["size"]["height"])["objects"]
        _write_json(ann, doc)
        edited.append(ann)
    for ann in picked[cut:]:
        image = ann.parent.parent / "img" / ann.name[: -len(".json")]
        ann.unlink()
        image.unlink()
        deleted += [ann, image]
    datasets = sorted({a.parent.parent for a in anns})
    for k in range(max(1, round(0.01 * n))):
        ds = datasets[k % len(datasets)]
        name = f"added_{seed}_{k:06d}.jpg"
        _jpeg_item(rng, ds, name, tiny)
        added += [ds / "img" / name, ds / "ann" / f"{name}.json"]
    return {key: sorted(p.relative_to(root).as_posix() for p in paths)
            for key, paths in (("edited", edited), ("added", added), ("deleted", deleted))}


# --------------------------------------------------------------------------- video


def video_project(root: Path, videos: int, frames: int, seed: int) -> Path:
    """A Supervisely video project: `videos` H.264 MP4 files (PyAV) with one tracked box each."""
    import av
    import numpy as np

    rng = random.Random(seed)
    w, h = 640, 360
    ds = root / "ds0"
    (ds / "video").mkdir(parents=True)
    (ds / "ann").mkdir()
    _write_json(root / "meta.json", {"classes": [{"title": "car", "shape": "rectangle", "color": "#E53935",
                                                   "geometry_config": {}, "id": 7001, "hotkey": "", "description": ""}],
                                     "tags": [], "projectType": "videos"})
    yy, xx = np.mgrid[0:h, 0:w]
    for k in range(videos):
        name = f"clip_{k:03d}.mp4"
        noise = np.random.default_rng(seed * 1000 + k)
        with av.open(str(ds / "video" / name), "w") as out:
            stream = out.add_stream("libx264", rate=30, options={"preset": "ultrafast", "crf": "20"})
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            for i in range(frames):  # moving gradient + grain: a few MB per minute, like real footage
                base = ((xx + 3 * i + 40 * k) % 256 * 0.6 + (yy + i) % 256 * 0.4).astype(np.int16)
                img = np.clip(base + noise.integers(-12, 13, size=(h, w)), 0, 255).astype(np.uint8)
                rgb = np.dstack([img, np.roll(img, 7 * k + 5, axis=1), 255 - img])
                out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
            out.mux(stream.encode())
        _write_json(ds / "ann" / f"{name}.json", _video_annotation(rng, w, h, frames))
    return root


def _video_annotation(rng: random.Random, w: int, h: int, frames: int) -> dict:
    obj_key = rng.randbytes(16).hex()
    figures = []
    for i in range(0, frames, 3):
        x, y = rng.randrange(w - 60), rng.randrange(h - 40)
        figures.append({"index": i, "figures": [{
            "key": rng.randbytes(16).hex(), "objectKey": obj_key, "geometryType": "rectangle",
            "geometry": {"points": {"exterior": [[x, y], [x + 50, y + 30]], "interior": []}}}]})
    return {"size": {"height": h, "width": w}, "description": "", "key": rng.randbytes(16).hex(), "tags": [],
            "objects": [{"key": obj_key, "classTitle": "car", "tags": []}], "frames": figures,
            "framesCount": frames}


# --------------------------------------------------------------------------- volume


def volume_project(root: Path, total_mb: int, seed: int) -> Path:
    """A Supervisely volume project: raw int16 NRRD volumes (a CT-like phantom plus noise), ~`total_mb` MiB."""
    import nrrd
    import numpy as np

    rng = np.random.default_rng(seed)
    x, y, z = 256, 256, 128  # 16 MiB of int16 voxels per volume
    count = max(1, round(total_mb / (x * y * z * 2 / 2**20)))
    ds = root / "ds0"
    (ds / "volume").mkdir(parents=True)
    (ds / "ann").mkdir()
    _write_json(root / "meta.json", {"classes": [], "tags": [], "projectType": "volumes"})
    zz, yy, xx = np.mgrid[0:x, 0:y, 0:z].astype(np.float32)
    r2 = (zz - x / 2) ** 2 + (yy - y / 2) ** 2 + ((xx - z / 2) * 2) ** 2
    phantom = np.where(r2 < (x * 0.45) ** 2, 40.0, -1000.0) + np.where(r2 < (x * 0.2) ** 2, 400.0, 0.0)
    for k in range(count):
        data = (phantom + rng.normal(0, 20, size=phantom.shape)).astype(np.int16)
        name = f"scan_{k:03d}.nrrd"
        header = {"space": "left-posterior-superior", "space directions": np.diag([0.7, 0.7, 1.5]),
                  "space origin": np.array([-90.0, -90.0, -100.0 - k]), "encoding": "raw",
                  "kinds": ["domain", "domain", "domain"], "endian": "little"}
        nrrd.write(str(ds / "volume" / name), data, header)
        _write_json(ds / "ann" / f"{name}.json", _volume_annotation(k, (x, y, z), int(data.min()), int(data.max())))
    return root


def _volume_annotation(k: int, dims: tuple[int, int, int], lo: int, hi: int) -> dict:
    planes = [{"name": n, "normal": {"x": float(i == 0), "y": float(i == 1), "z": float(i == 2)}, "slices": []}
              for i, n in enumerate(("sagittal", "coronal", "axial"))]
    meta = {"ACS": "RAS", "intensity": {"min": lo, "max": hi}, "windowWidth": hi - lo, "windowCenter": (hi + lo) / 2,
            "rescaleSlope": 1, "rescaleIntercept": 0, "channelsCount": 1,
            "dimensionsIJK": {"x": dims[0], "y": dims[1], "z": dims[2]},
            "IJK2WorldMatrix": [0.7, 0, 0, 90.0, 0, 0.7, 0, 90.0, 0, 0, 1.5, -100.0 - k, 0, 0, 0, 1]}
    return {"volumeMeta": meta, "key": f"{k:032x}", "tags": [], "objects": [], "planes": planes,
            "spatialFigures": []}


# --------------------------------------------------------------------------- big file


def big_file(path: Path, size_mb: int, seed: int) -> Path:
    """`size_mb` MiB of seeded random (incompressible) bytes."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        for _ in range(size_mb):
            f.write(rng.randbytes(1 << 20))
    return path


def edit_in_place(path: Path, size: int, seed: int) -> int:
    """Overwrite `size` bytes in the middle of `path` (not aligned to anything); return the offset."""
    offset = os.path.getsize(path) // 2 + 12345
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, random.Random(seed).randbytes(size), offset)
    finally:
        os.close(fd)
    return offset


# --------------------------------------------------------------------------- trees


def listing(root: Path, skip: frozenset[str] = frozenset()) -> dict[str, int]:
    """relpath -> size of every regular file under `root`, skipping top-level entries named in `skip`."""
    found: dict[str, int] = {}
    stack = [(root, "")]
    while stack:
        folder, prefix = stack.pop()
        with os.scandir(folder) as it:
            for entry in it:
                if not prefix and entry.name in skip:
                    continue
                rel = prefix + entry.name
                if entry.is_dir(follow_symlinks=False):
                    stack.append((Path(entry.path), rel + "/"))
                elif entry.is_file(follow_symlinks=False):
                    found[rel] = entry.stat(follow_symlinks=False).st_size
    return found


def tree_bytes(root: Path) -> tuple[int, int]:
    """(apparent bytes, bytes allocated on disk) of everything under `root`."""
    apparent = disk = 0
    for folder, _, files in os.walk(root):
        for name in files:
            st = os.lstat(os.path.join(folder, name))
            apparent += st.st_size
            disk += st.st_blocks * 512
    return apparent, disk


def copy_tree(src: Path, dst: Path) -> Path:
    """`cp -a` (keeps mtimes, so stat caches copied along stay valid)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", "--reflink=auto", os.fspath(src), os.fspath(dst)], check=True)
    return dst


class Snapshot:
    """A saved state of a directory (a tool's store) that can be put back quickly, many times.

    `save` copies the tree aside once and remembers every file's (inode, size, mtime). `restore`
    deletes files created since, and copies back only the files that were replaced or changed, so
    rolling a store with thousands of objects back to v1 costs one walk plus the few files a
    commit touched, not a full copy.
    """

    def __init__(self, root: Path, saved: Path) -> None:
        self.root, self.saved = root, saved
        copy_tree(root, saved)
        self.state = _stat_tree(root)

    def restore(self) -> None:
        now = _stat_tree(self.root)
        for rel, st in now.items():
            if rel not in self.state:
                os.unlink(self.root / rel)
        for rel, st in self.state.items():
            if now.get(rel) != st:
                dst = self.root / rel
                dst.parent.mkdir(parents=True, exist_ok=True)
                if dst.exists():
                    dst.unlink()
                shutil.copy2(self.saved / rel, dst, follow_symlinks=False)
                self.state[rel] = _stat_entry(os.lstat(dst))
        for folder, _, _ in os.walk(self.root, topdown=False):  # folders made since, now empty
            if not (self.saved / os.path.relpath(folder, self.root)).exists():
                try:
                    os.rmdir(folder)
                except OSError:
                    pass

    def drop(self) -> None:
        remove(self.saved)


def _stat_entry(st: os.stat_result) -> tuple[int, int, int]:
    return st.st_ino, st.st_size, st.st_mtime_ns


def _stat_tree(root: Path) -> dict[str, tuple[int, int, int]]:
    found = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            found[os.path.relpath(path, root)] = _stat_entry(os.lstat(path))
    return found


def remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def _write_json(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(json.dumps(obj, indent=4).encode())

