"""The project type of projects saved by the Supervisely SDK, whose meta.json says nothing about it.

`ProjectMeta.to_json` writes `projectType` only when the meta was built with one, and `VideoProject` /
`VolumeProject` (and a locally made `Project`) build it without: their meta.json is `{"classes", "tags"}`,
dumped with `indent=4` in insertion order. The files below are written the same way, with the keys the SDK's
`ObjClass.to_json` and `TagMeta.to_json` write, and the media are real files (PyAV, pynrrd, Pillow).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import nrrd
import pytest
from PIL import Image
from test_media_projects import _video_ann
from test_video_meta import write_video


def sdk_class(title: str, shape: str, color: str) -> dict:
    """`ObjClass.to_json`: title, description, shape, color, geometry_config, hotkey (no id: made locally)."""
    return {"title": title, "description": "", "shape": shape, "color": color, "geometry_config": {}, "hotkey": ""}


def sdk_tag(name: str) -> dict:
    """`TagMeta.to_json` of an `any_string` tag."""
    return {"name": name, "value_type": "any_string", "color": "#0F8A5F", "hotkey": "", "applicable_type": "all",
            "classes": [], "target_type": "all"}


def sdk_meta(path: Path, classes: list[dict], **declared) -> None:
    """meta.json as `Project.set_meta` writes it: `json.dump(meta.to_json(), indent=4)`."""
    path.write_text(json.dumps({"classes": classes, "tags": [sdk_tag("weather")], **declared}, indent=4))


def _video_project(root: Path, *, media: bool = True, **declared) -> Path:
    ds = root / "ds0"
    (ds / "ann").mkdir(parents=True)
    sdk_meta(root / "meta.json", [sdk_class("car", "rectangle", "#FF0000")], **declared)
    (root / "key_id_map.json").write_text(json.dumps({"tags": {}, "objects": {}, "figures": {}, "videos": {}}, indent=4))
    if media:
        (ds / "video").mkdir()
        write_video(ds / "video" / "clip.mp4", "mpeg4", n=20)
    (ds / "ann" / "clip.mp4.json").write_text(json.dumps(_video_ann(20, [0, 7]), indent=4))
    return root


def _volume_project(root: Path, *, media: bool = True) -> Path:
    ds = root / "ds0"
    (ds / "ann").mkdir(parents=True)
    sdk_meta(root / "meta.json", [sdk_class("organ", "mask_3d", "#00FF00")])
    (root / "key_id_map.json").write_text(json.dumps({"tags": {}, "objects": {}, "figures": {}, "videos": {}}, indent=4))
    if media:
        (ds / "volume").mkdir()
        nrrd.write(str(ds / "volume" / "ct.nrrd"), np.zeros((6, 5, 4), np.int16), {"space": "left-posterior-superior"})
    ann = {"volumeMeta": {"ACS": "RAS", "dimensionsIJK": {"x": 6, "y": 5, "z": 4}}, "key": "k" * 32, "tags": [],
           "objects": [{"key": "o" * 32, "classTitle": "organ", "tags": []}],
           "planes": [{"name": n, "normal": {"x": 0, "y": 0, "z": 0}, "slices": []} for n in ("sagittal", "coronal", "axial")],
           "spatialFigures": []}
    (ds / "ann" / "ct.nrrd.json").write_text(json.dumps(ann, indent=4))
    return root


def _image_project(root: Path, **declared) -> Path:
    ds = root / "ds0"
    (ds / "img").mkdir(parents=True)
    (ds / "ann").mkdir()
    sdk_meta(root / "meta.json", [sdk_class("lemon", "rectangle", "#FFFF00")], **declared)
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 30, 30)).save(buf, "PNG")
    (ds / "img" / "a.png").write_bytes(buf.getvalue())
    ann = {"description": "", "tags": [], "size": {"height": 24, "width": 32}, "objects": []}
    (ds / "ann" / "a.png.json").write_text(json.dumps(ann, indent=4))
    return root


def _commit(cli, root: Path) -> dict:
    assert cli("init", root).code == 0
    result = cli("commit", "--json", cwd=root)
    assert result.code == 0, result.err
    return result.json()


def test_a_video_project_saved_by_the_sdk_is_versioned_as_videos(cli, tmp_path):
    root = _video_project(tmp_path / "videos")
    assert "projectType" not in json.loads((root / "meta.json").read_text())
    assert _commit(cli, root)["warnings"] == []
    shown = cli("show", "--json").json()
    assert (shown["project_type"], shown["warnings"]) == ("videos", [])
    [item] = cli("ls", "--json").json()
    assert (item["item"], item["kind"], item["path"]) == ("clip.mp4", "video", "ds0/video/clip.mp4")
    assert item["meta"]["frames"] == 20 and item["annotation"]["figures"] == 2
    assert "Supervisely videos project" in cli("show").out


def test_a_volume_project_saved_by_the_sdk_is_versioned_as_volumes(cli, tmp_path):
    root = _volume_project(tmp_path / "volumes")
    _commit(cli, root)
    assert cli("show", "--json").json()["project_type"] == "volumes"
    [item] = cli("ls", "--json").json()
    assert (item["kind"], item["meta"]["dimensionsIJK"]) == ("volume", {"x": 6, "y": 5, "z": 4})


def test_an_image_project_saved_by_the_sdk_stays_images(cli, tmp_path):
    root = _image_project(tmp_path / "images")
    _commit(cli, root)
    assert cli("show", "--json").json()["project_type"] == "images"
    [item] = cli("ls", "--json").json()
    assert (item["kind"], item["meta"]["width"]) == ("image", 32)


@pytest.mark.parametrize("make, expected", [(_video_project, "videos"), (_volume_project, "volumes")])
def test_an_annotation_only_download_takes_its_type_from_the_annotations(cli, tmp_path, make, expected):
    root = make(tmp_path / "p", media=False)
    _commit(cli, root)
    assert cli("show", "--json").json()["project_type"] == expected
    [item] = cli("ls", "--json").json()
    assert item["path"] is None and item["kind"] == expected[:-1]


def test_a_declared_type_the_layout_contradicts_is_kept_and_said(cli, tmp_path):
    root = _image_project(tmp_path / "mislabelled", projectType="videos")
    doc = _commit(cli, root)
    [warning] = doc["warnings"]
    assert "projectType 'videos'" in warning and "ds0" in warning and "img/" in warning
    shown = cli("show", "--json").json()
    assert shown["project_type"] == "videos" and shown["warnings"] == [warning]
    assert "warning" in cli("show").out
    (root / "ds0" / "ann" / "a.png.json").write_text(json.dumps({"objects": [], "tags": []}))
    human = cli("commit", "-m", "again")
    assert human.code == 0 and "warning: meta.json says projectType 'videos'" in human.err
