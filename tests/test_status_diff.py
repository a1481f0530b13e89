"""status, diff and discard on real projects: what changed, at the item and annotation level."""

from __future__ import annotations

import json
import os

import pytest
from helpers import tree_bytes
from PIL import Image

import pvc
from pvc.core import diff as diff_module
from pvc.core.snapshot import Snapshot
from pvc.sample import make_image_project
from pvc.store.backend import ObjectAccess
from pvc.store.model import Page


def _ann(project, index=0):
    return sorted(project.glob("train/ann/*.json"))[index]


def _edit_json(path, change):
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc, indent=4))


@pytest.fixture
def committed(initialised, cli):
    assert cli("commit", "-m", "v1", cwd=initialised).code == 0
    return initialised


def _modified(report):
    return {m["item"]: m for m in report["items"]["modified"]}


def test_clean_tree(committed, cli):
    result = cli("status")
    assert result.code == 0 and "nothing to commit" in result.out
    doc = cli("status", "--json").json()
    assert doc["clean"] is True and doc["from"] == 1 and doc["to"] == "working"
    assert doc["items"] == {"added": [], "removed": [], "modified": []}


def test_edit_one_polygon(committed, cli):
    ann = next(p for p in sorted(committed.rglob("ann/*.json"))
               if any(o["geometryType"] == "polygon" for o in json.loads(p.read_text())["objects"]))
    doc = json.loads(ann.read_text())
    polygon = next(o for o in doc["objects"] if o["geometryType"] == "polygon")
    polygon["points"]["exterior"][0][0] += 3
    ann.write_text(json.dumps(doc))
    report = cli("status", "--json").json()
    assert [m["item"] for m in report["items"]["modified"]] == [ann.name[: -len(".json")]]
    item = report["items"]["modified"][0]
    assert item["changed"] == ["annotation"]
    assert item["objects"] == {"added": 0, "removed": 0, "changed": 1}
    assert report["items"]["added"] == [] and report["items"]["removed"] == []


def test_many_edited_annotations_are_read_in_parallel_with_the_same_result(committed, cli, monkeypatch):
    """Past a few changed annotations both sides are fetched in parallel first; the report is the same."""
    edited = []
    for ann in sorted(committed.rglob("ann/*.json")):
        doc = json.loads(ann.read_text())
        if doc["objects"]:
            doc["objects"].pop()
            ann.write_text(json.dumps(doc))
            edited.append(ann.name[: -len(".json")])
    assert len(edited) >= 8
    fetched = []
    real = diff_module._prefetch_annotations
    monkeypatch.setattr(diff_module, "_prefetch_annotations", lambda *a: fetched.append(real(*a)) or fetched[-1])
    parallel = cli("status", "--json").json()
    assert sum(len(f) for f in fetched) == 2 * len(edited)  # old and new side of each
    assert sorted(m["item"] for m in parallel["items"]["modified"]) == sorted(edited)
    assert all(m["objects"] == {"added": 0, "removed": 1, "changed": 0} for m in parallel["items"]["modified"])
    monkeypatch.setattr(diff_module, "_prefetch_annotations", lambda *a: {})
    assert cli("status", "--json").json() == parallel


def test_add_object_of_a_new_class(committed, cli):
    _edit_json(committed / "meta.json", lambda d: d["classes"].append(
        {"title": "tree", "shape": "rectangle", "color": "#00AA00", "geometry_config": {}}))
    _edit_json(_ann(committed), lambda d: d["objects"].append(
        {"classTitle": "tree", "geometryType": "rectangle", "shape": "rectangle", "tags": [],
         "points": {"exterior": [[0, 0], [4, 4]], "interior": []}}))
    report = cli("status", "--json").json()
    assert report["meta"]["classes_added"] == ["tree"]
    assert report["classes"]["tree"] == {"before": 0, "after": 1}
    assert _modified(report)[_ann(committed).name[:-5]]["objects"]["added"] == 1
    assert "tree" in cli("diff", "--stat").out


def test_delete_an_item(committed, cli):
    img = sorted(committed.glob("train/img/*"))[0]
    img.unlink()
    (committed / "train" / "ann" / f"{img.name}.json").unlink()
    for companion in committed.glob(f"train/*/{img.name}.json"):
        companion.unlink()
    report = cli("status", "--json").json()
    assert report["items"]["removed"] == [{"dataset": "train", "item": img.name}]
    assert report["items"]["modified"] == [] and report["files"] == {"added": [], "removed": [], "modified": []}


def test_rename_a_class_in_meta(committed, cli):
    _edit_json(committed / "meta.json", lambda d: d["classes"][0].update(title="automobile"))
    report = cli("status", "--json").json()
    assert report["meta"]["classes_added"] == ["automobile"] and report["meta"]["classes_removed"] == ["car"]


def test_replace_pixels_keep_annotation(committed, cli):
    img = next(p for p in sorted(committed.glob("train/img/*.png")))
    with Image.open(img) as im:
        size, mode = im.size, im.mode
    Image.new(mode, size, 77 if mode == "L" else (77,) * len(mode)).save(img)
    report = cli("status", "--json").json()
    assert _modified(report)[img.name]["changed"] == ["media"]
    assert "objects" not in _modified(report)[img.name]


def test_touch_without_change_is_clean(committed, cli):
    for path in list(committed.glob("train/img/*"))[:3]:
        os.utime(path, ns=(1, 1))
    assert cli("status", "--json").json()["clean"] is True


def test_added_item_and_extra_file(committed, cli):
    Image.new("RGB", (20, 10)).save(committed / "train" / "img" / "new one.png")
    (committed / "train" / "ann" / "new one.png.json").write_text(
        json.dumps({"size": {"height": 10, "width": 20}, "tags": [], "objects": []}))
    (committed / "notes.md").write_text("hello")
    report = cli("status", "--json").json()
    assert report["items"]["added"] == [{"dataset": "train", "item": "new one.png"}]
    assert report["files"]["added"] == ["notes.md"]


def test_status_before_the_first_commit(initialised, cli):
    report = cli("status", "--json", cwd=initialised).json()
    assert report["from"] is None and len(report["items"]["added"]) == 24


def test_diff_between_versions_and_filters(committed, cli):
    _edit_json(_ann(committed), lambda d: d["tags"].append({"name": "weather", "value": "snow"}))
    nested = sorted(committed.glob("train/datasets/hard_cases/ann/*.json"))[0]
    _edit_json(nested, lambda d: d["objects"].pop())
    cli("commit", "-m", "v2")
    full = cli("diff", "1", "2", "--json").json()
    assert full["from"] == 1 and full["to"] == 2
    assert {(m["dataset"], m["item"]) for m in full["items"]["modified"]} == {
        ("train", _ann(committed).name[:-5]), ("train/hard_cases", nested.name[:-5])}
    only = cli("diff", "1", "2", "--json", "--dataset", "train/hard_cases").json()
    assert [m["item"] for m in only["items"]["modified"]] == [nested.name[:-5]]
    assert only["items"]["modified"][0]["objects"]["removed"] == 1
    by_item = cli("diff", "1", "2", "--json", "--item", _ann(committed).name[:-5]).json()
    assert len(by_item["items"]["modified"]) == 1
    assert cli("diff", "2", "2", "--json").json()["clean"] is True
    assert cli("diff", "--json").json()["clean"] is True  # latest vs an unchanged working tree


def test_diff_reads_only_pages_that_differ(tmp_path, cli, monkeypatch):
    root = make_image_project(tmp_path / "big", items=1500, datasets=1, nested=False, seed=2,
                              extras=False, tricky_names=False)
    cli("init", root)
    cli("commit", cwd=root)
    _edit_json(sorted(root.glob("*/ann/*.json"))[700], lambda d: d["objects"].pop())
    cli("commit")
    reads: list[bytes] = []
    real = ObjectAccess.get_object

    def counting(self, oid, cls):
        obj = real(self, oid, cls)
        if cls is Page:
            reads.append(oid)
        return obj

    monkeypatch.setattr(ObjectAccess, "get_object", counting)
    report = pvc.Project(root).diff(1, 2)
    assert len(report["items"]["modified"]) == 1
    project = pvc.Project(root)
    snap = Snapshot(project._repo.store, bytes.fromhex(project.version.get(2).manifest))
    pages_total = sum(len(ds.tree.files) + len(ds.tree.items) for ds in snap.datasets())
    assert len(reads) <= 6 < pages_total  # the changed files/items pages of each side, and one lookup each


def test_discard_then_undo_gives_back_the_exact_bytes(committed, cli):
    clean = tree_bytes(committed)
    _edit_json(_ann(committed), lambda d: d["objects"].clear())
    (committed / "train" / "extra.txt").write_text("new file")
    sorted(committed.glob("train/img/*"))[-1].unlink()
    dirty = tree_bytes(committed)
    preview = cli("discard", "--json").json()
    assert preview["applied"] is False and tree_bytes(committed) == dirty
    assert preview["removed"] == ["train/extra.txt"] and len(preview["restored"]) == 2
    done = cli("discard", "--yes", "--json").json()
    assert done["applied"] is True and done["undo"] == "pvc discard --undo" and done["saved_state"]
    assert tree_bytes(committed) == clean
    assert cli("status", "--json").json()["clean"] is True
    assert cli("log", "--json").json()[0]["number"] == 1  # no numbered version was made
    assert cli("discard", "--undo").code == 0
    assert tree_bytes(committed) == dirty


def test_discard_without_versions_is_refused(initialised, cli):
    result = cli("discard", "--yes", cwd=initialised)
    assert result.code == 1 and "no versions yet" in result.err


def test_undo_keeps_edits_made_after_the_discard(committed, cli):
    _edit_json(_ann(committed), lambda d: d["objects"].clear())
    first_dirty = tree_bytes(committed)
    cli("discard", "--yes")
    (committed / "later.txt").write_text("made after the discard")
    second_dirty = tree_bytes(committed)
    assert cli("discard", "--undo").code == 0
    assert tree_bytes(committed) == first_dirty
    assert cli("discard", "--undo").code == 0  # the later edits were saved before the undo
    assert tree_bytes(committed) == second_dirty


def test_diff_of_an_unknown_dataset_is_a_usage_error(committed, cli):
    result = cli("diff", "--dataset", "no-such")
    assert result.code == 1 and "no-such" in result.err


def test_damaged_saved_state_is_a_clear_error(committed, cli):
    stash = committed / ".pvc" / "stash"
    stash.mkdir()
    (stash / "1-abc.json").write_text("{not json")
    result = cli("discard", "--undo")
    assert result.code == 2 and "damaged saved state" in result.err and result.err.count("\n") == 1


def test_a_broken_annotation_is_a_problem_of_status_not_a_stop(committed, cli):
    broken, edited = _ann(committed, 0), _ann(committed, 1)
    broken.write_text('{"objects": [ {"classTitle": "car",')  # truncated: what an editor crash leaves
    _edit_json(edited, lambda d: d["objects"].pop())
    image = sorted(committed.glob("train/img/*"))[0]
    image.write_bytes(b"not an image at all")
    result = cli("status", "--json", cwd=committed)
    assert result.code == 0, result.err
    report = result.json()
    problems = {p["path"]: p["problem"] for p in report["problems"]}
    rel = lambda p: p.relative_to(committed).as_posix()  # noqa: E731
    assert set(problems) == {rel(broken), rel(image)} and "malformed JSON" in problems[rel(broken)]
    modified = _modified(report)
    assert modified[edited.name[: -len(".json")]]["objects"]["removed"] == 1  # the rest is reported as usual
    assert {"annotation"} <= set(modified[broken.name[: -len(".json")]]["changed"])
    human = cli("status")
    assert human.code == 0 and f"problem: {rel(broken)}: malformed JSON" in human.err
    assert cli("diff", "--json").json()["problems"] == report["problems"]
    assert cli("diff", "1", "1", "--json").json()["problems"] == []
    assert cli("commit").code == 1  # still refused: status vouched for nothing
    assert cli("status", "--json").json()["problems"] == report["problems"]  # and again from the stat cache


def test_discard_puts_a_broken_file_back_and_undo_brings_it_back(committed, cli):
    broken = _ann(committed, 0)
    good_bytes = broken.read_bytes()
    broken.write_text("{ not json")
    preview = cli("discard", "--json", cwd=committed)
    assert preview.code == 0 and [p["path"] for p in preview.json()["changes"]["problems"]] == \
        [broken.relative_to(committed).as_posix()]
    done = cli("discard", "--yes", "--json")
    assert done.code == 0, done.err
    assert broken.read_bytes() == good_bytes and cli("status", "--json").json()["clean"]
    assert cli("discard", "--undo").code == 0
    assert broken.read_text() == "{ not json"
    assert cli("commit").code == 1 and cli("commit", "--allow-invalid").code == 0


@pytest.mark.parametrize("odd", [["a", "list"], {"an": "object"}, 7, None])
def test_a_meta_tag_named_by_something_else_than_a_string_is_reported_not_a_crash(committed, cli, odd):
    _edit_json(committed / "meta.json", lambda d: d.setdefault("tags", []).append(
        {"name": odd, "value_type": "none", "color": "#123456"}))
    status = cli("status", "--json")
    assert status.code == 0, status.err
    assert status.json()["meta"]["tags_added"] == [json.dumps(odd, sort_keys=True)]
    assert cli("commit", "-m", "odd names").code == 0
    diff = cli("diff", "1", "2", "--json")
    assert diff.code == 0 and "Traceback" not in diff.err
    assert diff.json()["meta"]["tags_added"] == [json.dumps(odd, sort_keys=True)]


def test_a_meta_class_titled_by_a_list_is_reported_by_status_and_refused_by_commit(committed, cli):
    _edit_json(committed / "meta.json", lambda d: d["classes"].append(
        {"title": ["a", "list"], "shape": "rectangle", "color": "#00AA00", "geometry_config": {}}))
    status = cli("status", "--json")
    assert status.code == 0, status.err
    assert status.json()["meta"]["classes_added"] == ['["a", "list"]']
    commit = cli("commit", "-m", "odd title")
    assert commit.code == 1 and "meta.json" in commit.err and "Traceback" not in commit.err


def test_status_and_diff_against_the_working_tree_are_the_same_without_the_c_page_reader(tmp_path, cli, monkeypatch):
    """Pages of the working tree are compared from their bytes by pvc/_pages.c where it is built; pages.py, which
    decodes them, gives the same report."""
    from pvc.sample import mutate_image_project
    from pvc.store import pagediff

    project = make_image_project(tmp_path / "proj", items=120, datasets=3, seed=13)
    assert cli("init", project).code == 0 and cli("commit", "-m", "v1", "-C", project).code == 0
    mutate_image_project(project, seed=4)
    (project / "extra.txt").write_text("a file of the project\n")
    answers = []
    for native in (True, False):
        if not native:
            monkeypatch.setattr(pagediff, "_pages", None)
        status, diff = cli("status", "--json", "-C", project), cli("diff", "--json", "-C", project)
        assert status.code == 0 and diff.code == 0, (status.err, diff.err)
        answers.append((status.out, diff.out))
    assert answers[0] == answers[1]
    assert json.loads(answers[0][0])["items"]["modified"]
