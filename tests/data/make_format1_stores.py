"""How the archives of old stores in tests/data were made, from the repository root of the pvc that wrote them:

    format1-stores.tar.gz   pvc at commit ca748cd (store format 1, refs format 1):
                            `.venv/bin/python tests/data/make_format1_stores.py OUT_DIR`
    refs2-stores.tar.gz     pvc at commit 086c351 (store format 1, refs format 2, remotes; no store id):
                            `.venv/bin/python tests/data/make_format1_stores.py OUT_DIR fixture@refs2`

then `tar -czf ARCHIVE -C OUT_DIR images videos volumes`.

It is kept to document the fixture, not to be run again: the point of the archive is that it was written by
an older pvc. tests/test_compat.py opens these stores with the current code.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for the media writers

import nrrd  # noqa: E402
import numpy as np  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402

from pvc.sample import make_image_project, mutate_image_project  # noqa: E402
from test_video_meta import write_video  # noqa: E402
from test_volume_meta import write_dicom  # noqa: E402


AUTHOR = sys.argv[2] if len(sys.argv) > 2 else "fixture@format1"


def pvc(*args: str, cwd: Path) -> None:
    subprocess.run([sys.executable, "-m", "pvc", *args], cwd=cwd, check=True, capture_output=True,
                   env={"PVC_AUTHOR": AUTHOR, "PATH": "/usr/bin:/bin"})


def meta(project_type: str) -> str:
    classes = [{"title": "car", "shape": "rectangle", "color": "#FF0000", "geometry_config": {}},
               {"title": "organ", "shape": "mask_3d", "color": "#00FF00", "geometry_config": {}}]
    return json.dumps({"classes": classes, "tags": [], "projectType": project_type}, indent=4)


def images(root: Path) -> None:
    make_image_project(root, items=10, datasets=2, seed=5)
    pvc("init", cwd=root)
    pvc("commit", "-m", "first", "--description", "hello", cwd=root)
    mutate_image_project(root, seed=6)
    pvc("commit", "-m", "second", cwd=root)


def videos(root: Path) -> None:
    ds = root / "ds0"
    for sub in ("video", "ann"):
        (ds / sub).mkdir(parents=True)
    (root / "meta.json").write_text(meta("videos"))
    write_video(ds / "video" / "clip.mp4", "mpeg4", n=20)
    write_video(ds / "video" / "vfr.mkv", "mpeg4", n=6, pts_ms=[0, 30, 70, 100, 180, 200])
    key = "0123456789abcdef0123456789abcdef"
    ann = {"size": {"height": 48, "width": 64}, "description": "", "key": "v" * 32, "tags": [],
           "objects": [{"key": key, "classTitle": "car", "tags": []}], "framesCount": 20,
           "frames": [{"index": 3, "figures": [{"key": "f3", "objectKey": key, "geometryType": "rectangle",
                                                "geometry": {"points": {"exterior": [[1, 1], [5, 5]], "interior": []}}}]}]}
    (ds / "ann" / "clip.mp4.json").write_text(json.dumps(ann))
    pvc("init", cwd=root)
    pvc("commit", "-m", "videos", cwd=root)


def volumes(root: Path) -> None:
    ds = root / "ds0"
    for sub in ("volume/series", "ann"):
        (ds / sub).mkdir(parents=True)
    (root / "meta.json").write_text(meta("volumes"))
    data = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    nrrd.write(str(ds / "volume" / "ct.nrrd"), data, {"space": "left-posterior-superior",
                                                      "space directions": np.diag([0.5, 0.6, 2.0]),
                                                      "space origin": [1.0, 2.0, 3.0]})
    uid = generate_uid()
    for i in range(3):
        write_dicom(ds / "volume" / "series" / f"s{i}.dcm", uid, [1, 0, 0, 0, 1, 0], [0, 0, 2.5 * i])
    (ds / "ann" / "ct.nrrd.json").write_text(json.dumps({"volumeMeta": {}, "objects": [], "planes": [],
                                                         "spatialFigures": [], "tags": []}))
    pvc("init", cwd=root)
    pvc("commit", "-m", "volumes", cwd=root)


if __name__ == "__main__":
    out = Path(sys.argv[1])
    for name, make in (("images", images), ("videos", videos), ("volumes", volumes)):
        (out / name).mkdir(parents=True)
        make(out / name)
