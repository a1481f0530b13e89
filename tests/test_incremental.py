"""The incremental build (pvc/core/capture/build.py): a commit after an edit takes every page none of whose files
changed by id, and its manifest is exactly what a full build gives, on random edit sequences; so is a build that
takes nothing from the stat cache (the entries it keeps hold each info as the bytes sliced from the cache file, and
an info read anew must give the same pages), and `status`, which reads the working tree's pages from their bytes,
reports what the pages.py comparison of decoded pages reports."""

from __future__ import annotations

import json
import os
import time
import random
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pvc.core.capture import capture
from pvc.core.commit import commit
from pvc.core.status import status
from pvc.sample import make_image_project
from pvc.store import pagediff, pages
from pvc.store.overlay import OverlayStore
from pvc.store.repository import Repository
from pvc.store.statcache import StatCache

OPS = ("edit_ann", "edit_image", "touch", "delete_item", "add_item", "rename_item", "add_dataset", "remove_dataset",
       "delete_companion", "add_extra", "edit_meta", "add_many", "delete_many")


@pytest.fixture
def small_pages(monkeypatch):
    """Pages of 2-6 entries, so that a project of a few dozen items has many, and edits split and merge them."""
    monkeypatch.setattr(pages, "PAGE_MIN", 2)
    monkeypatch.setattr(pages, "PAGE_AVG", 3)
    monkeypatch.setattr(pages, "PAGE_MAX", 6)


def _full_build(repo: Repository, monkeypatch) -> bytes:
    """The manifest id with nothing remembered of earlier pages: every page made anew."""
    with monkeypatch.context() as m:
        m.setattr(StatCache, "pages", property(lambda self: {}))
        cap = capture(repo, OverlayStore(repo.store), expect=_latest(repo))
        assert cap.pages_reused == 0
        return cap.manifest_id


def _rehashed_build(repo: Repository, monkeypatch) -> bytes:
    """The manifest id with nothing taken from the stat cache: every file read and described anew."""
    with monkeypatch.context() as m:
        m.setattr(StatCache, "get_all", lambda self, files, roles: [None] * len(files))
        return capture(repo, OverlayStore(repo.store), expect=_latest(repo)).manifest_id


def _status_by_decoded_pages(repo: Repository, monkeypatch) -> dict:
    """`status` as pages.py reports it: every differing page decoded whole and compared as objects."""
    with monkeypatch.context() as m:
        m.setattr(pagediff, "_pages", None)
        return status(repo)


def _latest(repo: Repository) -> bytes | None:
    latest = repo.latest()
    return bytes.fromhex(latest.manifest) if latest else None


def _settle(root: Path) -> None:
    """Every file's mtime a minute back, and their ctimes (now) a tick older than the next scan's start: none is racy
    (modified in the tick the scan starts), as on a real project."""
    for f in root.rglob("*"):
        if f.is_file():
            st = f.stat()
            os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns - 60 * 10**9))
    time.sleep(0.01)


def _items(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("ann/*.json"))


def _item_files(ann: Path) -> list[Path]:
    """An item's files: its annotation, its media and the companions named after it."""
    ds, name = ann.parent.parent, ann.name[: -len(".json")]
    return [p for p in (ann, ds / "img" / name, ds / "meta" / f"{name}.json", ds / "img_info" / f"{name}.json")
            if p.exists()]


def _apply(op: str, root: Path, rng: random.Random, step: int) -> None:
    anns = _items(root)
    ann = rng.choice(anns)
    ds = ann.parent.parent
    if op == "edit_ann":
        doc = json.loads(ann.read_text())
        doc["objects"] = doc.get("objects", [])[:1] + [{"classTitle": f"edited{step}", "geometryType": "rectangle",
                                                         "points": {"exterior": [[1, 1], [3, 4]], "interior": []}}]
        ann.write_text(json.dumps(doc))
    elif op == "edit_image":
        media = ds / "img" / ann.name[: -len(".json")]
        if media.exists():
            with Image.open(media) as old:
                fmt = old.format
            Image.new("RGB", (5 + step, 7), (step * 9 % 256, 3, 4)).save(media, format=fmt)
    elif op == "touch":
        for f in _item_files(ann):
            os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns - 10**9 * (step + 1)))
    elif op == "delete_item" and len(anns) > 2:
        for f in _item_files(ann):
            f.unlink()
    elif op == "add_item":
        _copy_item(ann, f"added_{step}_{rng.randrange(10**6)}")
    elif op == "rename_item":
        _copy_item(ann, f"renamed_{step}_{rng.randrange(10**6)}")
        for f in _item_files(ann):
            f.unlink()
    elif op == "add_dataset":
        _copy_item(ann, "first.png", ds=root / f"ds_new_{step}")
        _copy_item(ann, "second.png", ds=root / f"ds_new_{step}")
    elif op == "remove_dataset":
        tops = sorted({a.relative_to(root).parts[0] for a in anns})
        if len(tops) > 1:
            shutil.rmtree(root / rng.choice(tops))
    elif op == "delete_companion":
        found = sorted(root.rglob("meta/*.json")) + sorted(root.rglob("img_info/*.json"))
        if found:
            rng.choice(found).unlink()
    elif op == "add_extra":
        (ds / f"extra_{step}.txt").write_text(f"note {step}\n")
    elif op == "edit_meta":
        meta = json.loads((root / "meta.json").read_text())
        meta["classes"] = meta["classes"][1:] + meta["classes"][:1] + [
            {"title": f"edited{step}", "shape": "rectangle", "color": "#FF0000"}]
        (root / "meta.json").write_text(json.dumps(meta))
    elif op == "add_many":  # a run of inserts in one dataset: pages split
        for k in range(12):
            _copy_item(ann, f"{ann.name[:3]}run{step}_{k:02d}")
    elif op == "delete_many" and len(anns) > 14:  # a run of deletes: pages merge
        start = rng.randrange(len(anns) - 12)
        for a in anns[start : start + 12]:
            for f in _item_files(a):
                f.unlink()


def _copy_item(ann: Path, name: str, ds: Path | None = None) -> None:
    """A new item `name` in `ds` (default: the item's dataset) with a copy of the item's annotation and image."""
    src_ds = ann.parent.parent
    ds = ds or src_ds
    media = src_ds / "img" / ann.name[: -len(".json")]
    suffix = media.suffix if media.exists() else ".png"
    name = name if name.endswith(suffix) else name + suffix
    (ds / "img").mkdir(parents=True, exist_ok=True)
    (ds / "ann").mkdir(parents=True, exist_ok=True)
    if media.exists():
        shutil.copyfile(media, ds / "img" / name)
    else:
        Image.new("RGB", (6, 6)).save(ds / "img" / name)
    shutil.copyfile(ann, ds / "ann" / f"{name}.json")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10**6), ops=st.lists(st.sampled_from(OPS), min_size=1, max_size=6))
def test_incremental_build_equals_full_build(small_pages, monkeypatch, seed, ops):
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        root = make_image_project(Path(tmp) / "proj", items=30, datasets=2, seed=seed % 97)
        repo = Repository.init(root)
        commit(repo, title="v1")
        reused = 0
        for step, op in enumerate(ops):
            _apply(op, root, rng, step)
            repo = Repository(root)
            full = _full_build(repo, monkeypatch)
            cap = capture(repo, OverlayStore(repo.store), expect=_latest(repo))
            assert cap.manifest_id == full, f"after {ops[: step + 1]}"
            if step == len(ops) - 1:  # (once an example: each costs a capture or two)
                assert _rehashed_build(repo, monkeypatch) == full, f"after {ops}"
                if pagediff.NATIVE_PAGES:
                    assert status(repo) == _status_by_decoded_pages(repo, monkeypatch), f"after {ops}"
            reused += cap.pages_reused
            result = commit(repo, title=f"after {op}")
            assert bytes.fromhex(result.version.manifest) == full
        # unchanged pages were taken by id (a build that never reuses would pass the equality above)
        assert reused > 0 or all(op in ("edit_meta", "remove_dataset") for op in ops)


def _committed_then_edited(tmp_path: Path, *, items: int, datasets: int, seed: int, index: int, edit) -> tuple[Path, Path]:
    """A settled sample project, committed, then the annotation of its item `index` changed by `edit(doc)`."""
    root = make_image_project(tmp_path / "proj", items=items, datasets=datasets, seed=seed)
    _settle(root)
    commit(Repository.init(root), title="v1")
    ann = _items(root)[index]
    doc = json.loads(ann.read_text())
    edit(doc)
    ann.write_text(json.dumps(doc))
    return root, ann


def _tag_checked(doc: dict) -> None:
    doc["tags"] = [{"name": "checked", "value": None}]


def test_one_edit_builds_one_page(small_pages, tmp_path):
    """One annotation edited: the page of the dataset's files map and the page of its items map that hold it are
    built, every other page of every map is taken by id."""
    root, _ = _committed_then_edited(tmp_path, items=60, datasets=3, seed=5, index=17, edit=_tag_checked)
    repo = Repository(root)
    cap = capture(repo, OverlayStore(repo.store), expect=_latest(repo))
    assert cap.files_hashed == 1
    assert cap.pages_built == 2
    assert cap.pages_reused > 10


def test_remembered_page_whose_object_is_gone_is_built(small_pages, tmp_path, monkeypatch):
    """A remembered page the store does not hold (a status's page, never committed) is built, not referenced."""
    root = make_image_project(tmp_path / "proj", items=40, datasets=2, seed=6)
    repo = Repository.init(root)
    commit(repo, title="v1")
    cache = repo.stat_cache()
    remembered = cache.pages
    assert remembered
    missing = {page[1] for page in remembered.values()}
    real_has = OverlayStore.has
    monkeypatch.setattr(OverlayStore, "has", lambda self, oid: oid not in missing and real_has(self, oid))
    _apply("edit_ann", root, random.Random(1), 0)
    repo = Repository(root)
    cap = capture(repo, OverlayStore(repo.store), expect=_latest(repo))
    assert cap.pages_reused == 0
    assert cap.manifest_id == _full_build(repo, monkeypatch)
