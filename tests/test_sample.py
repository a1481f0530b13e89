"""pvc.sample: generated projects are deterministic, well-formed Supervisely projects, and mutate as reported."""

from __future__ import annotations

import base64
import io
import json
import shutil
import tempfile
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from pvc.sample import main, make_image_project, mutate_image_project

GEOMETRIES = {"rectangle", "polygon", "bitmap", "line", "point", "graph"}
KINDS = {("JPEG", "RGB"), ("JPEG", "L"), ("PNG", "RGB"), ("PNG", "L"), ("PNG", "RGBA")}


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def annotations(root: Path) -> dict[Path, dict]:
    return {p: json.loads(p.read_bytes()) for p in sorted(root.glob("**/ann/*.json"))}


def image_of(ann_path: Path) -> Path:
    return ann_path.parent.parent / "img" / ann_path.name.removesuffix(".json")


def objects(root: Path) -> list[tuple[dict, dict]]:
    """(annotation, object) pairs over the whole project."""
    return [(ann, obj) for ann in annotations(root).values() for obj in ann["objects"]]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_image_project(tmp_path_factory.mktemp("sample") / "proj", items=60, seed=5)


@pytest.fixture(scope="module")
def meta(project: Path) -> dict:
    return json.loads((project / "meta.json").read_bytes())


@pytest.mark.parametrize("noise", [False, True])
def test_same_arguments_give_a_byte_identical_tree(tmp_path: Path, noise: bool) -> None:
    first = tree(make_image_project(tmp_path / "a", items=14, seed=3, noise=noise))
    assert first == tree(make_image_project(tmp_path / "b", items=14, seed=3, noise=noise))
    assert first != tree(make_image_project(tmp_path / "c", items=14, seed=4, noise=noise))


def test_meta_json_covers_every_geometry_and_tag_type(project: Path, meta: dict) -> None:
    text = (project / "meta.json").read_text("utf-8")
    assert text == json.dumps(json.loads(text), indent=4)
    assert meta["projectType"] == "images"
    assert {c["shape"] for c in meta["classes"]} == GEOMETRIES
    assert all(c["color"].startswith("#") and len(c["color"]) == 7 for c in meta["classes"])
    graph = next(c for c in meta["classes"] if c["shape"] == "graph")
    assert graph["geometry_config"]["nodes"] and graph["geometry_config"]["edges"]
    types = {t["value_type"]: t for t in meta["tags"]}
    assert set(types) == {"none", "any_number", "any_string", "oneof_string"}
    assert types["oneof_string"]["values"]


def test_every_annotation_has_one_image_of_its_size(project: Path) -> None:
    kinds = set()
    for ann_path, ann in annotations(project).items():
        images = list((ann_path.parent.parent / "img").glob("*"))
        assert sum(p.name == ann_path.name.removesuffix(".json") for p in images) == 1
        with Image.open(image_of(ann_path)) as im:
            im.load()
            assert im.size == (ann["size"]["width"], ann["size"]["height"])
            assert 40 <= min(im.size) and max(im.size) <= 200
            kinds.add((im.format, im.mode))
    assert kinds == KINDS
    for img_dir in project.glob("**/img"):
        assert {p.name + ".json" for p in img_dir.iterdir()} == {p.name for p in (img_dir.parent / "ann").iterdir()}


def test_objects_match_their_classes_and_tags(project: Path, meta: dict) -> None:
    classes = {c["title"]: c for c in meta["classes"]}
    tag_metas = {t["name"]: t for t in meta["tags"]}
    template = set(classes["person"]["geometry_config"]["nodes"])
    pairs = objects(project)
    assert {obj["geometryType"] for _, obj in pairs} == GEOMETRIES
    assert any("id" in obj and obj["classId"] == classes[obj["classTitle"]]["id"] for _, obj in pairs)
    for ann in annotations(project).values():
        assert 1 <= len(ann["objects"]) <= 10
        for tag in ann["tags"] + [t for obj in ann["objects"] for t in obj["tags"]]:
            value_type = tag_metas[tag["name"]]["value_type"]
            assert ("value" in tag) == (value_type != "none")
            if value_type == "any_number":
                assert isinstance(tag["value"], float)
            elif value_type == "oneof_string":
                assert tag["value"] in tag_metas[tag["name"]]["values"]
    for ann, obj in pairs:
        assert obj["geometryType"] == obj["shape"] == classes[obj["classTitle"]]["shape"]
        w, h = ann["size"]["width"], ann["size"]["height"]
        if "points" in obj:
            rings = [obj["points"]["exterior"], *obj["points"]["interior"]]
            assert all(0 <= x < w and 0 <= y < h for ring in rings for x, y in ring)
        if obj["geometryType"] == "graph":
            assert set(obj["nodes"]) == template
            assert all(0 <= n["loc"][0] < w and 0 <= n["loc"][1] < h for n in obj["nodes"].values())


def test_some_polygons_have_holes(project: Path) -> None:
    polygons = [obj for _, obj in objects(project) if obj["geometryType"] == "polygon"]
    assert any(obj["points"]["interior"] for obj in polygons)
    assert any(not obj["points"]["interior"] for obj in polygons)


def test_bitmaps_decode_to_cropped_one_bit_masks(project: Path) -> None:
    bitmaps = [(ann, obj["bitmap"]) for ann, obj in objects(project) if obj["geometryType"] == "bitmap"]
    assert bitmaps
    for ann, bitmap in bitmaps:
        png = zlib.decompress(base64.b64decode(bitmap["data"]))
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[24:26] == b"\x01\x03"  # IHDR: bit depth 1, palette
        with Image.open(io.BytesIO(png)) as mask:
            assert mask.mode == "P"
            assert mask.getbbox() == (0, 0, mask.width, mask.height)  # cropped to the mask's bounding box
            x, y = bitmap["origin"]
            assert x >= 0 and y >= 0
            assert x + mask.width <= ann["size"]["width"] and y + mask.height <= ann["size"]["height"]


def test_layout_has_nested_dataset_tricky_names_companions_and_extras(project: Path) -> None:
    assert list((project / "train" / "datasets" / "hard_cases" / "ann").glob("*.json"))
    assert (project / "val set" / "ann").is_dir()
    names = [p.name for p in project.glob("**/img/*")]
    assert any(" " in n and not n.isascii() for n in names)
    assert any("猫" in n for n in names)
    assert (project / "README.md").is_file() and (project / "train" / "notes.txt").is_file()
    assert (project / "docs" / "readme.txt").is_file()
    assert not list(project.glob("**/key_id_map.json"))
    metas, infos = list(project.glob("**/meta/*.json")), list(project.glob("**/img_info/*.json"))
    assert metas and infos
    for companion in metas + infos:
        assert image_of(companion).is_file()
    for path in infos:
        info, data = json.loads(path.read_bytes()), image_of(path).read_bytes()
        assert info["name"] == image_of(path).name and info["size"] == len(data)


def test_flags_turn_off_nesting_extras_and_tricky_names(tmp_path: Path) -> None:
    root = make_image_project(tmp_path / "p", items=20, datasets=3, nested=False, extras=False, tricky_names=False)
    assert sorted(p.name for p in root.iterdir()) == ["meta.json", "test", "train", "val"]
    assert all(p.name.isascii() and " " not in p.name for p in root.rglob("*"))
    assert len(list(root.glob("**/ann/*.json"))) == 20


def test_noise_images_are_incompressible_and_16_to_64_kb(tmp_path: Path) -> None:
    root = make_image_project(tmp_path / "p", items=20, noise=True)
    for path in root.glob("**/img/*"):
        data = path.read_bytes()
        assert 15_000 <= len(data) <= 68_000
        assert len(zlib.compress(data)) > 0.95 * len(data)


def test_refuses_a_non_empty_root_and_too_few_items(tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").touch()
    with pytest.raises(FileExistsError):
        make_image_project(tmp_path / "full")
    with pytest.raises(ValueError):
        make_image_project(tmp_path / "small", items=2, datasets=2)
    (tmp_path / "empty").mkdir()
    assert make_image_project(tmp_path / "empty", items=3) == tmp_path / "empty"


def test_mutate_changes_exactly_what_it_reports(tmp_path: Path) -> None:
    root = make_image_project(tmp_path / "p", items=60, seed=2)
    before, old_anns = tree(root), annotations(root)
    report = mutate_image_project(root, seed=9, edit=0.1, add=0.05, delete=0.05)
    after = tree(root)
    assert set(after) - set(before) == set(report["added"])
    assert set(before) - set(after) == set(report["deleted"])
    assert {p for p in before.keys() & after.keys() if before[p] != after[p]} == set(report["edited"])
    assert len(report["edited"]) == 6 and all(p.endswith(".json") and "/ann/" in p for p in report["edited"])
    assert sorted(p.split("/")[-2] for p in report["added"]) == ["ann"] * 3 + ["img"] * 3
    deleted_anns = [p for p in report["deleted"] if "/ann/" in p]
    assert len(deleted_anns) == 3
    for p in deleted_anns:
        assert image_of(root / p).relative_to(root).as_posix() in report["deleted"]
    for p in report["edited"]:
        assert_edited(old_anns[root / p], json.loads(after[p]))
    for p in report["added"]:
        if p.endswith(".json"):
            ann = json.loads(after[p])
            with Image.open(image_of(root / p)) as im:
                assert im.size == (ann["size"]["width"], ann["size"]["height"])


def assert_edited(old: dict, new: dict) -> None:
    """One object added; one polygon vertex moved if the annotation had a polygon, else nothing else."""
    assert len(new["objects"]) == len(old["objects"]) + 1
    changed = [(a, b) for a, b in zip(old["objects"], new["objects"]) if a != b]
    if any(obj["geometryType"] == "polygon" for obj in old["objects"]):
        [(a, b)] = changed
        assert a["geometryType"] == "polygon"
        moved = [u for u, v in zip(a["points"]["exterior"], b["points"]["exterior"]) if u != v]
        assert len(moved) == 1 and a["points"]["interior"] == b["points"]["interior"]
    else:
        assert changed == []


@pytest.mark.parametrize(("items", "deleted"), [(12, 1), (8, 0)])
def test_mutate_minimums(tmp_path: Path, items: int, deleted: int) -> None:
    report = mutate_image_project(make_image_project(tmp_path / "p", items=items))
    assert len(report["edited"]) == 1
    assert len(report["added"]) == 2
    assert len([p for p in report["deleted"] if "/ann/" in p]) == deleted


def test_mutate_is_deterministic_and_repeatable(tmp_path: Path) -> None:
    root = make_image_project(tmp_path / "a", items=30)
    copy = Path(shutil.copytree(root, tmp_path / "b"))
    assert mutate_image_project(root, seed=4) == mutate_image_project(copy, seed=4)
    assert tree(root) == tree(copy)
    second = mutate_image_project(root, seed=4)  # same seed again: new names, nothing overwritten
    assert all(p not in tree(copy) for p in second["added"])


def test_main_generates_a_project_and_prints_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main([str(tmp_path / "p"), "--items", "6", "--datasets", "1", "--seed", "2"])
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "6 items" in out
    assert len(list((tmp_path / "p").glob("**/ann/*.json"))) == 6


@settings(max_examples=25, deadline=None)
@given(items=st.integers(1, 12), datasets=st.integers(1, 5), nested=st.booleans(), seed=st.integers(0, 2**32))
def test_any_small_project_is_well_formed(items: int, datasets: int, nested: bool, seed: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "p"
        if items < datasets + nested:
            with pytest.raises(ValueError):
                make_image_project(root, items=items, datasets=datasets, nested=nested, seed=seed)
            return
        make_image_project(root, items=items, datasets=datasets, nested=nested, seed=seed)
        anns = annotations(root)
        assert len(anns) == items
        for ann_path, ann in anns.items():
            with Image.open(image_of(ann_path)) as im:
                assert im.size == (ann["size"]["width"], ann["size"]["height"])
