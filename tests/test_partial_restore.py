"""Partial restore: some datasets (nested names too), some classes, some paths. The result is a valid project
(whole meta.json, the chosen datasets' structure, every chosen item with its companions), the report says what
was chosen, and only the objects restored (and the structure above them) are read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import tree_bytes
from test_media_projects import video_project, volume_project  # noqa: F401  (fixtures)

import pvc
from pvc.core.snapshot import Snapshot
from pvc.sample import make_image_project
from pvc.store.packed import PackedStore


@pytest.fixture
def committed(tmp_path, cli) -> Path:
    proj = make_image_project(tmp_path / "proj", items=18, datasets=2, seed=5)
    assert cli("init", proj).code == 0
    assert cli("commit", "-m", "all", cwd=proj).code == 0
    return proj


@pytest.fixture
def reads(monkeypatch) -> set[bytes]:
    """Every object id the store is asked for (content, a stream of it, its chunk list, or its stored record)."""
    seen: set[bytes] = set()
    for name in ("get", "write_to", "chunk_list", "read_range", "read_records", "visit_records"):
        original = getattr(PackedStore, name)
        many = name in ("read_records", "visit_records")

        def spy(self, oid, *args, _original=original, _many=many, **kwargs):
            if _many:
                oid = list(oid)
                seen.update(oid)
            else:
                seen.add(oid)
            return _original(self, oid, *args, **kwargs)

        monkeypatch.setattr(PackedStore, name, spy)
    return seen


def test_one_nested_dataset_reads_only_what_it_restores(committed, cli, tmp_path, reads):
    with pvc.Project(committed) as project:
        snap = Snapshot(project._repo.store, bytes.fromhex(project.version.get(1).manifest))
        trees = {ds.name: ds.oid for ds in snap.datasets()}
        pages = {ref.oid for ds in snap.datasets() for ref in (*ds.tree.files, *ds.tree.items)
                 if ds.name != "train/hard_cases"}
        every = list(snap.files())
    assert "train/hard_cases" in trees and "val set" in trees
    wanted = [e for e in every if e.dataset == "train/hard_cases" or e.dataset is None]
    reads.clear()

    with pvc.Project(committed) as project:
        result = project.version.restore(version_num=1, dest=tmp_path / "part", datasets=["train/hard_cases"])
    assert result.datasets == ["train/hard_cases"] and result.files == len(wanted)
    blobs = {e.oid for e in every}
    assert reads & blobs == {e.oid for e in wanted}  # every chosen file, and no other file
    assert trees["val set"] not in reads and trees["train"] in reads  # on the way, opened; not chosen, never
    assert not reads & pages  # no page of a dataset not chosen (train's own items are not read either)

    restored = tree_bytes(tmp_path / "part")
    assert restored == {e.path: (committed / e.path).read_bytes() for e in wanted}
    assert restored["meta.json"] == (committed / "meta.json").read_bytes()
    assert {d for d, _ in _items_of_restored(cli, tmp_path / "part")} == {"train/hard_cases"}


def _items_of_restored(cli, folder: Path) -> set[tuple[str, str]]:
    assert cli("commit", "-m", "part", cwd=folder).code == 0  # still a valid project: it commits and lists
    return {(i["dataset"], i["item"]) for i in cli("ls", "--json").json() if i["item"]}


def test_class_and_include_choose_whole_items(committed, cli, tmp_path):
    with pvc.Project(committed) as project:
        items = {(i.dataset, i.item): i for i in project.ls("latest")}
    with_car = {k for k, i in items.items() if "car" in ((i.annotation or {}).get("objects") or {})}
    assert 0 < len(with_car) < len(items)
    result = cli("restore", "1", "--to", tmp_path / "cars", "--class", "car", "--json", cwd=committed)
    assert result.code == 0, result.err
    doc = result.json()
    assert doc["selection"] == {"datasets": [], "classes": ["car"], "include": []} and doc["items"] == len(with_car)
    assert _items_of_restored(cli, tmp_path / "cars") == with_car
    original, restored = tree_bytes(committed), tree_bytes(tmp_path / "cars")
    assert all(original[p] == data for p, data in restored.items())
    folder = {i.dataset: i.path.rsplit("/img/", 1)[0] for i in items.values() if i.path}
    companions = {p for p in original if "/meta/" in p or "/img_info/" in p}
    of_cars = {f"{folder[d]}/{sub}/{name}.json" for d, name in with_car for sub in ("meta", "img_info")} & companions
    assert of_cars and {p for p in restored if p in companions} == of_cars  # companions travel with their item

    pick = sorted(items)[0]
    pattern = f"{pick[0]}/{pick[1][:-3]}*"
    chosen = cli("restore", "1", "--to", tmp_path / "one", "--include", pattern, "--json", cwd=committed).json()
    assert chosen["items"] >= 1 and pick in _items_of_restored(cli, tmp_path / "one")
    both = cli("restore", "1", "--to", tmp_path / "both", "--class", "car", "--include", "*.png", "--json",
               cwd=committed).json()
    assert both["items"] == len({k for k in with_car if k[1].endswith(".png")})


def test_partial_restore_refuses_names_that_match_nothing(committed, cli, tmp_path):
    for args, says in ((["--dataset", "nope"], "dataset 'nope' is not in this version"),
                       (["--class", "unicorn"], "'unicorn' is not a class or tag")):
        result = cli("restore", "1", "--to", tmp_path / "x", *args, cwd=committed)
        assert result.code == 1 and says in result.err and result.err.count("\n") == 1
        assert not (tmp_path / "x").exists()
    empty = cli("restore", "1", "--to", tmp_path / "none", "--include", "no/such/*", "--json", cwd=committed).json()
    assert empty["items"] == 0
    for ds in ("train", "val set"):  # every chosen dataset keeps its folders, so it still is a dataset
        assert (tmp_path / "none" / ds / "img").is_dir() and (tmp_path / "none" / ds / "ann").is_dir()


def test_partial_restore_of_video_and_volume_projects(video_project, volume_project, cli, tmp_path):  # noqa: F811
    for project in (video_project, volume_project):
        assert cli("init", project).code == 0 and cli("commit", "-m", "v1", cwd=project).code == 0
    clip = cli("restore", "1", "--to", tmp_path / "clip", "--include", "ds0/video/clip*", "--json", cwd=video_project)
    assert clip.code == 0 and clip.json()["items"] == 1
    files = set(tree_bytes(tmp_path / "clip"))
    assert {"ds0/video/clip.mp4", "ds0/ann/clip.mp4.json", "ds0/video_info/clip.mp4.json",
            "ds0/metadata/clip.mp4.meta.json", "meta.json"} <= files and "ds0/video/vfr.mkv" not in files
    first = cli("commit", "-m", "clip only", "--json", cwd=tmp_path / "clip").json()
    assert first["files_hashed"] == 0
    assert [i["item"] for i in cli("ls", "--json").json()] == ["clip.mp4"]

    organs = cli("restore", "1", "--to", tmp_path / "series", "--include", "ds/series_a", "--json", cwd=volume_project)
    assert organs.code == 0 and organs.json()["items"] == 1
    files = set(tree_bytes(tmp_path / "series"))
    assert {f"ds/volume/series_a/s{k}.dcm" for k in range(4)} | {"ds/ann/series_a.json"} <= files
    assert "ds/volume/ct.nrrd" not in files
    committed = cli("commit", "-m", "one series", "--json", cwd=tmp_path / "series").json()
    assert committed["files_hashed"] == 0  # the series' metadata came from the version, not the slices
    series = cli("ls", "--json").json()
    assert [i["item"] for i in series] == ["series_a"] and series[0]["meta"]["format"] == "dicom"
    origin = cli("show", "--json").json()["origin"]
    assert origin["selection"] == {"datasets": [], "classes": [], "include": ["ds/series_a"]}


def test_a_dataset_brings_its_nested_datasets(committed, cli, tmp_path):
    result = cli("restore", "1", "--to", tmp_path / "train", "--dataset", "train", "--json", cwd=committed).json()
    assert result["datasets"] == ["train", "train/hard_cases"] and not (tmp_path / "train" / "val set").exists()
    assert {d for d, _ in _items_of_restored(cli, tmp_path / "train")} == {"train", "train/hard_cases"}
    assert json.loads((tmp_path / "train" / "meta.json").read_text()) == json.loads((committed / "meta.json").read_text())
