"""Video and volume projects end to end: metadata in `ls`, flags in `show`, round trips, companions."""

from __future__ import annotations

import json
from pathlib import Path

import av
import blake3
import nibabel
import numpy as np
import nrrd
import pytest
from helpers import tree_bytes
from pydicom.uid import generate_uid
from test_restore import _drop_object
from test_video_meta import decoded, write_video
from test_volume_meta import write_dicom

import pvc
from pvc.project.video import frame_times

KEY = "0123456789abcdef0123456789abcdef"


def _meta(project_type: str) -> str:
    classes = [{"title": "car", "shape": "rectangle", "color": "#FF0000", "geometry_config": {}},
               {"title": "organ", "shape": "mask_3d", "color": "#00FF00", "geometry_config": {}}]
    return json.dumps({"classes": classes, "tags": [], "projectType": project_type}, indent=4)


def _video_ann(frames_count: int, figure_frames: list[int]) -> dict:
    obj = {"key": KEY, "classTitle": "car", "tags": []}
    frames = [{"index": i, "figures": [{"key": f"f{i}", "objectKey": KEY, "geometryType": "rectangle",
                                         "geometry": {"points": {"exterior": [[1, 1], [5, 5]], "interior": []}}}]}
              for i in figure_frames]
    return {"size": {"height": 48, "width": 64}, "description": "", "key": "v" * 32, "tags": [],
            "objects": [obj], "frames": frames, "framesCount": frames_count}


@pytest.fixture
def video_project(tmp_path) -> Path:
    root = tmp_path / "videos"
    ds = root / "ds0"
    for sub in ("video", "ann", "video_info", "metadata"):
        (ds / sub).mkdir(parents=True)
    (root / "meta.json").write_text(_meta("videos"))
    (root / "key_id_map.json").write_text(json.dumps({"tags": {}, "objects": {}, "figures": {}, "videos": {}}))
    write_video(ds / "video" / "clip.mp4", "mpeg4", n=40)
    write_video(ds / "video" / "vfr.mkv", "mpeg4", n=12, pts_ms=[0, 30, 70, 100, 180, 200, 260, 300, 390, 400, 480, 500])
    (ds / "ann" / "clip.mp4.json").write_text(json.dumps(_video_ann(40, [0, 5, 39])))
    (ds / "ann" / "vfr.mkv.json").write_text(json.dumps(_video_ann(15, [0, 13])))  # disagrees with the media
    (ds / "video_info" / "clip.mp4.json").write_text(json.dumps({"frames_count": 40}))
    (ds / "metadata" / "clip.mp4.meta.json").write_text(json.dumps({"streamOffset": 0}))
    return root


def test_video_project_round_trip_and_metadata(video_project, cli, tmp_path):
    assert cli("init", video_project).code == 0
    result = cli("commit", "-m", "videos", "--json", cwd=video_project)
    assert result.code == 0, result.err
    items = {i["item"]: i for i in cli("ls", "1", "--json").json()}
    clip = items["clip.mp4"]
    assert clip["kind"] == "video"
    assert clip["meta"]["frames"] == len(decoded(video_project / "ds0" / "video" / "clip.mp4")) == 40
    assert clip["meta"]["width"] == 64 and clip["meta"]["codec"] == "mpeg4" and "pts" in clip["meta"]
    assert clip["annotation"]["objects"] == {"car": 1} and clip["annotation"]["figures"] == 3
    assert clip["problems"] == []
    vfr = items["vfr.mkv"]
    assert vfr["meta"]["frames"] == 12
    times = pvc_frame_times(vfr["meta"])
    with av.open(str(video_project / "ds0" / "video" / "vfr.mkv")) as container:
        assert times == [f.time for f in container.decode(video=0)]
    assert any("framesCount 15 != media frame count 12" in p for p in vfr["problems"])
    shown = cli("show", "1", "--json").json()
    assert shown["stats"]["problems"] >= 1 and {p["item"] for p in shown["problems"]} == {"vfr.mkv"}
    assert "framesCount 15" in cli("show", "1").out
    assert cli("restore", "1", "--to", tmp_path / "out").code == 0
    assert tree_bytes(tmp_path / "out") == tree_bytes(video_project)


def pvc_frame_times(meta: dict) -> list[float]:
    return frame_times(meta)


def test_video_companions_travel_with_their_item(video_project, cli, tmp_path):
    cli("init", video_project)
    cli("commit", cwd=video_project)
    clip = next(i for i in pvc.Project(video_project).ls(1) if i.item == "clip.mp4")
    _drop_object(video_project, bytes.fromhex(clip.blob))
    doc = cli("restore", "1", "--to", tmp_path / "out", "--skip-missing", "--json").json()
    assert [(s["item"], s["reason"].split()[0]) for s in doc["skipped"]] == [("clip.mp4", "missing")]
    restored = set(tree_bytes(tmp_path / "out"))
    assert not {p for p in restored if "clip.mp4" in p}  # media, annotation, video_info, metadata: all gone
    assert "ds0/video/vfr.mkv" in restored and "ds0/ann/vfr.mkv.json" in restored


def test_undecodable_video_is_refused_unless_allowed(video_project, cli):
    (video_project / "ds0" / "video" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100)
    cli("init", video_project)
    result = cli("commit", cwd=video_project)
    assert result.code == 1 and "broken.mp4" in result.err and "not a readable video" in result.err
    assert cli("commit", "--allow-invalid").code == 0
    items = {i["item"]: i for i in cli("ls", "--json").json()}
    assert "not a readable video" in items["broken.mp4"]["meta"]["invalid"]


def _slices(folder: Path, uid: str, n: int, names=None) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    names = names or [f"s{k}.dcm" for k in range(n)]
    return [write_dicom(folder / names[k], uid, [1, 0, 0, 0, 1, 0], [0, 0, 3.0 * k]) for k in range(n)]


@pytest.fixture
def volume_project(tmp_path) -> Path:
    root = tmp_path / "volumes"
    ds = root / "ds"
    (ds / "ann").mkdir(parents=True)
    (root / "meta.json").write_text(_meta("volumes"))
    (root / "key_id_map.json").write_text(json.dumps({"tags": {}, "objects": {}, "figures": {}, "videos": {}}))
    vol = ds / "volume"
    vol.mkdir()
    header = {"space": "left-posterior-superior", "space directions": np.diag([0.5, 0.5, 2.0]),
              "space origin": np.array([10.0, 20.0, 30.0])}
    nrrd.write(str(vol / "ct.nrrd"), np.zeros((6, 5, 4), np.int16), header)
    nibabel.save(nibabel.Nifti1Image(np.zeros((4, 4, 3), np.float32), np.diag([1.0, 1.0, 2.5, 1.0])), vol / "mr.nii.gz")
    np.save(vol / "raw.npy", np.zeros((3, 4, 5), np.uint8))
    _slices(vol / "series_a", generate_uid(), 4)  # a folder of slices: one item named after the folder
    loose_uid = generate_uid()
    _slices(vol, loose_uid, 3, names=["x1.dcm", "x2.dcm", "x3.dcm"])  # loose slices of one series
    _slices(vol, generate_uid(), 1, names=["single.dcm"])
    mask_dir = ds / "mask" / "ct.nrrd"
    mask_dir.mkdir(parents=True)
    nrrd.write(str(mask_dir / f"{KEY}.nrrd"), np.zeros((6, 5, 4), np.uint8), header)
    nrrd.write(str(mask_dir / "ffffffffffffffffffffffffffffffff.nrrd"), np.zeros((2, 2, 2), np.uint8))
    ann = {"volumeMeta": {}, "key": "k" * 32, "tags": [], "objects": [{"key": "o" * 32, "classTitle": "organ", "tags": []}],
           "planes": [{"name": n, "normal": {}, "slices": []} for n in ("sagittal", "coronal", "axial")],
           "spatialFigures": [{"key": KEY, "objectKey": "o" * 32, "geometryType": "mask_3d", "geometry": {}}]}
    (ds / "ann" / "ct.nrrd.json").write_text(json.dumps(ann))
    (ds / "ann" / "series_a.json").write_text(json.dumps({**ann, "spatialFigures": []}))
    (ds / "ann" / f"{loose_uid}.json").write_text(json.dumps({**ann, "spatialFigures": []}))
    return root


def test_volume_project_round_trip_and_metadata(volume_project, cli, tmp_path):
    assert cli("init", volume_project).code == 0
    result = cli("commit", "-m", "volumes", "--json", cwd=volume_project)
    assert result.code == 0, result.err
    items = {i["item"]: i for i in cli("ls", "1", "--json").json()}
    loose_uid = next(n for n in items if n.startswith("1.2."))
    assert set(items) == {"ct.nrrd", "mr.nii.gz", "raw.npy", "series_a", "single.dcm", loose_uid}
    ct = items["ct.nrrd"]["meta"]
    assert ct["dimensionsIJK"] == {"x": 6, "y": 5, "z": 4} and ct["ACS"] == "RAS"
    assert ct["spacing"] == [0.5, 0.5, 2.0] and ct["origin"][:2] == [-10.0 - 0.5 * 5, -20.0 - 0.5 * 4]
    assert items["mr.nii.gz"]["meta"]["format"] == "nifti" and items["raw.npy"]["meta"]["format"] == "npy"
    series = items["series_a"]
    assert series["meta"]["format"] == "dicom" and series["meta"]["dimensionsIJK"]["z"] == 4
    assert series["meta"]["spacing"][2] == pytest.approx(3.0)
    assert "PatientName" not in json.dumps(series["meta"]) and series["meta"]["dicom"]["Modality"] == "CT"
    assert len(series["files"]) == 4 and series["path"] == "ds/volume/series_a"
    assert items[loose_uid]["meta"]["dimensionsIJK"]["z"] == 3 and items[loose_uid]["annotation"] is not None
    assert items["ct.nrrd"]["annotation"]["spatial_figures"] == 1
    assert items["ct.nrrd"]["problems"] == ["mask/ct.nrrd/ffffffffffffffffffffffffffffffff.nrrd matches no spatialFigures key"]
    assert cli("restore", "1", "--to", tmp_path / "out").code == 0
    assert tree_bytes(tmp_path / "out") == tree_bytes(volume_project)
    again = cli("commit", "--json").json()
    assert again["created"] is False and again["files_hashed"] == 0


def test_missing_slice_skips_the_whole_series_and_masks_go_with_their_volume(volume_project, cli, tmp_path):
    cli("init", volume_project)
    cli("commit", cwd=volume_project)
    project = pvc.Project(volume_project)
    slice_blob = project.read_file(1, "ds/volume/series_a/s2.dcm")
    ct = next(i for i in project.ls(1) if i.item == "ct.nrrd")
    _drop_object(volume_project, blake3.blake3(slice_blob).digest())
    _drop_object(volume_project, bytes.fromhex(ct.blob))
    doc = cli("restore", "1", "--to", tmp_path / "out", "--skip-missing", "--json").json()
    assert sorted(s["item"] for s in doc["skipped"]) == ["ct.nrrd", "series_a"]
    restored = set(tree_bytes(tmp_path / "out"))
    assert not any(p.startswith(("ds/volume/series_a/", "ds/mask/ct.nrrd/")) for p in restored)
    assert "ds/ann/ct.nrrd.json" not in restored and "ds/volume/mr.nii.gz" in restored


def test_large_volume_is_chunked_and_an_edit_stores_little(volume_project, cli, tmp_path):
    cli("init", volume_project)
    config = volume_project / ".pvc" / "config"
    config.write_text(json.dumps(json.loads(config.read_text()) | {"chunk_threshold": 1 << 20}))
    rng = np.random.default_rng(0)
    data = rng.integers(0, 4000, size=(128, 128, 768), dtype=np.int16)  # 24 MiB
    big = volume_project / "ds" / "volume" / "big.nrrd"
    nrrd.write(str(big), data, {"encoding": "raw", "space": "left-posterior-superior"})
    cli("commit", cwd=volume_project)
    packs = volume_project / ".pvc" / "packs"
    before = sum(p.stat().st_size for p in packs.glob("*.pack"))
    raw = bytearray(big.read_bytes())
    middle = len(raw) // 2
    raw[middle : middle + (256 << 10)] = rng.integers(0, 255, size=256 << 10, dtype=np.uint8).tobytes()
    big.write_bytes(bytes(raw))
    assert cli("commit", "--json").json()["created"] is True
    grown = sum(p.stat().st_size for p in packs.glob("*.pack")) - before
    assert grown < 6 << 20 < len(raw) // 4  # a few ~1 MiB chunks around the edit, not the 24 MiB file
    assert cli("restore", "2", "--to", tmp_path / "out", "--verify").code == 0
    assert (tmp_path / "out" / "ds" / "volume" / "big.nrrd").read_bytes() == bytes(raw)


def test_status_and_diff_of_video_annotations(video_project, cli):
    cli("init", video_project)
    cli("commit", cwd=video_project)
    ann_path = video_project / "ds0" / "ann" / "clip.mp4.json"
    doc = json.loads(ann_path.read_text())
    doc["frames"].append({"index": 20, "figures": [{"key": "f20", "objectKey": KEY, "geometryType": "rectangle",
                                                    "geometry": {"points": {"exterior": [[2, 2], [6, 6]], "interior": []}}}]})
    ann_path.write_text(json.dumps(doc))
    modified = cli("status", "--json").json()["items"]["modified"]
    assert [m["item"] for m in modified] == ["clip.mp4"]
    change = modified[0]["annotation"]
    assert change["figures"] == {"added": 1, "removed": 0, "changed": 0} and change["frames_changed"] == 1
    cli("commit", "-m", "one more figure")
    assert cli("diff", "1", "2", "--json").json()["items"]["modified"][0]["annotation"]["figures"]["added"] == 1
    assert cli("discard", "--yes").code == 0 and cli("status", "--json").json()["clean"] is True


def test_status_and_diff_of_volume_annotations(volume_project, cli):
    cli("init", volume_project)
    cli("commit", cwd=volume_project)
    ann_path = volume_project / "ds" / "ann" / "ct.nrrd.json"
    doc = json.loads(ann_path.read_text())
    doc["spatialFigures"] = []
    ann_path.write_text(json.dumps(doc))
    (volume_project / "ds" / "mask" / "ct.nrrd" / f"{KEY}.nrrd").unlink()
    report = cli("status", "--json").json()
    item = next(m for m in report["items"]["modified"] if m["item"] == "ct.nrrd")
    assert set(item["changed"]) == {"annotation", "companions"}
    assert item["annotation"]["figures"]["removed"] == 1


def test_a_broken_dicom_series_is_refused_again_and_reported_by_status(tmp_path, cli):
    root = tmp_path / "vols"
    (root / "ds" / "ann").mkdir(parents=True)
    (root / "meta.json").write_text(_meta("volumes"))
    series, uid = root / "ds" / "volume" / "broken", generate_uid()
    series.mkdir(parents=True)
    for name in ("a.dcm", "b.dcm"):  # two slices at one position: no volume
        write_dicom(series / name, uid, [1, 0, 0, 0, 1, 0], [0, 0, 0])
    cli("init", root)
    first = cli("commit", cwd=root)
    assert first.code == 1 and "do not form a volume" in first.err
    assert cli("commit", "--allow-invalid").code == 0
    again = cli("commit")  # the series' metadata cached as invalid must not let it through
    assert again.code == 1 and "do not form a volume" in again.err
    report = cli("status", "--json").json()
    assert [p["path"] for p in report["problems"]] == ["ds/volume/broken/a.dcm"] and report["clean"]
