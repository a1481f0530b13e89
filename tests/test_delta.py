"""`status` from the change (pvc/core/capture/delta.py): the working tree's manifest built from the paths changed since
the last commit is exactly what the full build gives, on random edit sequences with statuses in between (whose saved
stat cache carries the changed paths on); it reads only the pages the change touches; where the change alone cannot
tell the result (meta.json, a new or removed dataset) the full build runs; and the report is the same either way."""

from __future__ import annotations

import io
import json
import os
import random
import tempfile
import time
from itertools import accumulate
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_incremental import (OPS, _apply, _committed_then_edited, _items, _latest, _settle, _tag_checked,  # noqa: F401
                              small_pages)
from test_media_projects import KEY, video_project  # noqa: F401 (a fixture)

import msgpack
import pytest

from pvc.core.capture import capture, delta
from pvc.core.commit import commit
from pvc.core import diff as diff_module
from pvc.core.diff import diff_snapshots
from pvc.core.status import status, version_snapshot, working_snapshot
from pvc.project.walk import RECORD
from pvc.sample import make_image_project
from pvc.store import pagediff, pages
from pvc.store.model import FileValue, ItemEntry, Manifest, Page
from pvc.store.overlay import OverlayStore
from pvc.store.repository import Repository

NATIVE = pagediff.NATIVE_PAGES  # the build from the change needs pvc/_pages.c; without it the full build runs

# ops whose paths the change alone can place; the others touch meta.json or make or remove a dataset
PLACEABLE = {"edit_ann", "edit_image", "touch", "add_item", "rename_item", "add_many", "add_extra", "delete_companion"}


def _full(repo: Repository):
    return capture(repo, OverlayStore(repo.store), report_invalid=True, expect=_latest(repo))


def _from_change(repo: Repository):
    return capture(repo, OverlayStore(repo.store), report_invalid=True, expect=_latest(repo), from_change=True)


def _full_status(repo: Repository, monkeypatch) -> dict:
    with monkeypatch.context() as m:
        m.setattr(delta, "delta_capture", lambda *a, **k: None)
        return status(repo)


def _known_diff_is_the_compared_one(repo: Repository) -> None:
    """The working tree's diff from what the build from the change says changed (Capture.changes) is the diff that
    compares the pages."""
    working, cap = working_snapshot(repo, repo.latest().manifest, from_change=True)
    base = version_snapshot(repo, repo.latest().manifest, working)
    told = diff_snapshots(base, working, source=1, target="working", known=cap.changes)
    assert told == diff_snapshots(base, working, source=1, target="working")
    assert cap.partial or not cap.changes


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10**6), ops=st.lists(st.sampled_from(OPS), min_size=1, max_size=7),
       between=st.lists(st.sampled_from(["nothing", "status", "commit"]), min_size=7, max_size=7))
def test_status_from_change_equals_full_build(small_pages, monkeypatch, seed, ops, between):
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        root = make_image_project(Path(tmp) / "proj", items=30, datasets=2, seed=seed % 97)
        repo = Repository.init(root)
        commit(repo, title="v1")
        since_commit: list[str] = []
        for step, (op, then) in enumerate(zip(ops, between)):
            _apply(op, root, rng, step)
            since_commit.append(op)
            repo = Repository(root)
            full = _full(repo)
            repo = Repository(root)
            cap = _from_change(repo)
            assert cap.manifest_id == full.manifest_id, f"after {ops[: step + 1]} ({between[:step]})"
            assert cap.invalid == full.invalid
            if set(since_commit) <= PLACEABLE and NATIVE:
                # (an op with nothing left to act on, such as deleting a companion when none is left, leaves the
                # tree as committed: the walk says so and nothing is built)
                assert cap.partial or cap.unchanged, f"after {since_commit}: the full build ran"
            if then == "status" or step == len(ops) - 1:
                _known_diff_is_the_compared_one(Repository(root))
                repo = Repository(root)
                assert status(repo) == _full_status(Repository(root), monkeypatch), f"after {ops[: step + 1]}"
            elif then == "commit":
                commit(Repository(root), title=f"after {op}")
                since_commit = []


@pytest.mark.skipif(not NATIVE, reason="pvc/_pages.c is not built")
def test_status_from_change_reads_only_the_pages_it_touches(small_pages, tmp_path, monkeypatch):
    root, _ = _committed_then_edited(tmp_path, items=80, datasets=3, seed=5, index=17, edit=_tag_checked)
    read = []
    real_table = delta._Map.table
    monkeypatch.setattr(delta._Map, "table", lambda self, j: read.append((id(self), j)) or real_table(self, j))
    cap = _from_change(Repository(root))
    assert (cap.partial or not NATIVE) and cap.files_hashed == 1
    assert 0 < len(set(read)) <= 6, read  # the item's page, its files' page, a neighbour at most
    full = _full(Repository(root))
    assert cap.manifest_id == full.manifest_id
    assert full.pages_built + full.pages_reused > 40  # pages the version has


def test_meta_json_or_a_new_dataset_makes_the_full_build_run(tmp_path):
    root = make_image_project(tmp_path / "proj", items=20, datasets=2, seed=3)
    repo = Repository.init(root)
    commit(repo, title="v1")
    meta = json.loads((root / "meta.json").read_text())
    meta["classes"].append({"title": "new", "shape": "rectangle", "color": "#00FF00"})
    (root / "meta.json").write_text(json.dumps(meta))
    cap = _from_change(Repository(root))
    assert not cap.partial and cap.manifest_id == _full(Repository(root)).manifest_id
    commit(Repository(root), title="v2")
    _apply("add_dataset", root, random.Random(2), 0)
    cap = _from_change(Repository(root))
    assert not cap.partial and cap.manifest_id == _full(Repository(root)).manifest_id


def test_changes_seen_by_a_status_stay_known_to_the_next(tmp_path, monkeypatch):
    """A status that takes the full way saves the stat cache with the edited file's new hash; the next status still
    reports the edit, from the paths the cache lists as changed since the commit (the walk finds nothing changed
    since that status), and reads no file."""
    root, ann = _committed_then_edited(tmp_path, items=20, datasets=2, seed=4, index=3,
                                       edit=lambda doc: doc.update(objects=[]))
    repo = Repository(root)
    st = ann.stat()
    os.utime(ann, ns=(st.st_atime_ns, st.st_mtime_ns - 60 * 10**9))  # not racy: the status may vouch for it
    time.sleep(0.02)  # (and its ctime, now, a tick older than the status's scan)
    first = _full_status(Repository(root), monkeypatch)
    base = Repository(root).stat_cache().base
    assert base is not None and base[0] == _latest(repo) and ann.relative_to(root).as_posix() in base[2]
    cap = _from_change(Repository(root))
    assert (cap.partial or not NATIVE) and cap.files_hashed == 0
    again = status(Repository(root))
    assert again == first == _full_status(Repository(root), monkeypatch)
    assert [m["item"] for m in again["items"]["modified"]] == [ann.name[: -len(".json")]]
    commit(Repository(root), title="v2")
    assert Repository(root).stat_cache().base[2] == []  # a commit: the entries are its files


@pytest.mark.skipif(not NATIVE, reason="pvc/_pages.c is not built")
def test_status_reads_the_difference_from_the_change_without_comparing_pages(tmp_path, monkeypatch):
    """A status built from the change reports from what that build changed (Capture.changes): an edited annotation,
    an added item, a deleted one and a file outside any item, in two datasets, each with its old and new value; no
    page is compared, and the report is the full build's."""
    root = make_image_project(tmp_path / "proj", items=40, datasets=2, nested=True, seed=12)
    commit(Repository.init(root), title="v1")
    anns = _items(root)
    _apply("edit_ann", root, random.Random(3), 0)
    _apply_delete(anns[5])
    _apply("add_item", root, random.Random(4), 1)
    (anns[-1].parent.parent / "notes.txt").write_text("new")
    expected = _full_status(Repository(root), monkeypatch)
    repo = Repository(root)
    real = diff_module.changed_entries

    def same_pages_only(root_a, root_b, *rest):  # (the root's files map: the same pages on both sides)
        assert root_a == root_b, "pages compared"
        return real(root_a, root_b, *rest)

    with monkeypatch.context() as m:
        m.setattr(diff_module, "changed_entries", same_pages_only)
        report = status(repo)
    assert report == expected and not report["clean"]
    assert report["items"]["added"] and report["items"]["removed"] and report["items"]["modified"]
    assert any(p.endswith("notes.txt") for p in report["files"]["added"])


def test_unreadable_stats_do_not_vouch_that_an_emptied_tree_is_the_version(tmp_path):
    """Stats that cannot be read tell nothing of which files are gone: a tree emptied of every file is not the last
    version (with readable stats it is the removal of every file, too)."""
    root = make_image_project(tmp_path / "proj", items=10, datasets=1, seed=4)
    _settle(root)
    commit(Repository.init(root), title="v1")
    index = root / ".pvc" / "index"
    head, doc = msgpack.Unpacker(io.BytesIO(index.read_bytes()), raw=False, strict_map_key=False)
    index.write_bytes(msgpack.packb(head, use_bin_type=True)
                      + msgpack.packb(doc | {"stats": b"not a zstd frame"}, use_bin_type=True))
    for path in sorted(root.rglob("*"), reverse=True):
        if ".pvc" not in path.relative_to(root).parts:
            path.unlink() if path.is_file() else path.rmdir()
    report = status(Repository(root))
    assert not report["clean"] and "meta.json" in report["files"]["removed"]


def test_deleted_items_and_a_nested_dataset(tmp_path, monkeypatch):
    root = make_image_project(tmp_path / "proj", items=40, datasets=2, nested=True, seed=8)
    repo = Repository.init(root)
    commit(repo, title="v1")
    anns = _items(root)
    nested = [a for a in anns if "/datasets/" in a.as_posix()]
    assert nested
    for ann in (anns[2], nested[0]):
        _apply_delete(ann)
    cap = _from_change(Repository(root))
    assert (cap.partial or not NATIVE) and cap.manifest_id == _full(Repository(root)).manifest_id
    report = status(Repository(root))
    assert report == _full_status(Repository(root), monkeypatch)
    assert len(report["items"]["removed"]) == 2


def _apply_delete(ann: Path) -> None:
    ds, name = ann.parent.parent, ann.name[: -len(".json")]
    for p in (ann, ds / "img" / name, ds / "meta" / f"{name}.json", ds / "img_info" / f"{name}.json"):
        p.unlink(missing_ok=True)


def test_a_legacy_stem_annotation_changes_which_item_claims_it(tmp_path, monkeypatch):
    """`ann/<stem>.json` goes to the first media file of that stem that has no `ann/<name>.json`: adding or removing
    one changes other items, and the build from the change finds them."""
    root = make_image_project(tmp_path / "proj", items=10, datasets=1, nested=False, seed=9)
    repo = Repository.init(root)
    ds = next(p for p in root.iterdir() if p.is_dir() and p.name != ".pvc")
    media = sorted((ds / "img").iterdir())[0]
    stem = media.name.rsplit(".", 1)[0]
    (ds / "img" / f"{stem}.bmp").write_bytes(media.read_bytes())  # no annotation of its own
    commit(repo, title="v1")
    (ds / "ann" / f"{stem}.json").write_text(json.dumps({"size": {"height": 4, "width": 4}, "tags": [], "objects": []}))
    cap = _from_change(Repository(root))
    assert (cap.partial or not NATIVE) and cap.manifest_id == _full(Repository(root)).manifest_id
    commit(Repository(root), title="v2")
    (ds / "ann" / f"{media.name}.json").unlink()  # now both media files compete for the stem's annotation
    cap = _from_change(Repository(root))
    assert (cap.partial or not NATIVE) and cap.manifest_id == _full(Repository(root)).manifest_id
    assert status(Repository(root)) == _full_status(Repository(root), monkeypatch)


def test_video_project_from_change(video_project, monkeypatch):  # noqa: F811 (the fixture)
    repo = Repository.init(video_project)
    commit(repo, title="v1")
    ann = video_project / "ds0" / "ann" / "clip.mp4.json"
    doc = json.loads(ann.read_text())
    doc["frames"].append({"index": 41, "figures": [{"key": "f41", "objectKey": KEY, "geometryType": "rectangle",
                                                    "geometry": {"points": {"exterior": [[2, 2], [6, 6]],
                                                                            "interior": []}}}]})
    ann.write_text(json.dumps(doc))  # a frame past the video's end: a problem the manifest lists
    cap = _from_change(Repository(video_project))
    full = _full(Repository(video_project))
    assert (cap.partial or not NATIVE) and cap.manifest_id == full.manifest_id
    report = status(Repository(video_project))
    assert report == _full_status(Repository(video_project), monkeypatch)
    assert [m["item"] for m in report["items"]["modified"]] == ["clip.mp4"]


@pytest.mark.skipif(not NATIVE, reason="pvc/_pages.c is not built")
def test_commit_from_change_classifies_nothing_and_saves_only_the_change(tmp_path, monkeypatch):
    """A commit after a small change builds from it too: the layout of the whole project is not worked out, the
    manifest is the full build's, the stat cache keeps its columns and adds the change after them, and the next
    status is the stat-only clean answer."""
    import pvc.core.capture as capture_module

    root = make_image_project(tmp_path / "proj", items=30, datasets=2, seed=12)
    _settle(root)
    repo = Repository.init(root)
    commit(repo, title="v1")
    _apply("edit_ann", root, random.Random(3), 0)
    _apply("add_item", root, random.Random(4), 1)
    full = _full(Repository(root)).manifest_id
    with monkeypatch.context() as m:
        m.setattr(capture_module, "_layout", lambda *a: (_ for _ in ()).throw(AssertionError("the full build ran")))
        result = commit(Repository(root), title="v2")
    assert result.created and bytes.fromhex(result.version.manifest) == full
    cache = Repository(root).stat_cache()
    changes = cache._index.get("changes")
    assert changes and len(changes["entries"]) == result.files_hashed == 3  # the edit, an image and its annotation
    assert cache.base == (full, cache.base[1], [])
    assert status(Repository(root))["clean"] is True
    again = commit(Repository(root), title="same")
    assert not again.created and again.files_hashed == 0


def test_a_commit_of_what_a_status_saw_moves_the_base(tmp_path):
    """A status saves what it hashed; a commit right after hashes nothing and the cache already holds its entries, but
    its base must still move to the new version, or every later status and commit would run the full build."""
    root = make_image_project(tmp_path / "proj", items=20, datasets=2, seed=1)
    commit(Repository.init(root), title="v1")
    _apply("remove_dataset", root, random.Random(0), 0)  # a change only the full build handles
    status(Repository(root))
    result = commit(Repository(root), title="v2")
    assert result.created and result.files_hashed == 0
    assert Repository(root).stat_cache().base[0] == bytes.fromhex(result.version.manifest)
    _apply("edit_ann", root, random.Random(1), 1)
    cap = _from_change(Repository(root))
    assert (cap.partial or not NATIVE) and cap.manifest_id == _full(Repository(root)).manifest_id


def test_entries_saved_after_the_columns_keep_their_own_racy_cutoff(tmp_path):
    """An entry saved by `save_changes` is trusted only if its file's mtime is older than the scan that hashed it
    began, as the columns' entries are; a damaged changes record vouches for nothing."""
    from pvc.project.scan import FileInfo
    from pvc.store.statcache import CacheEntry, StatCache, StatKey

    cache_path = tmp_path / "index"
    a = FileInfo("a", f"{tmp_path}/", 10, 1_000, 1, 1_000, False, False)
    b = FileInfo("b", f"{tmp_path}/", 20, 2_000, 2, 2_000, False, False)
    cache = StatCache(cache_path)
    cache.save({"a": CacheEntry(StatKey(10, 1_000, 1, 1_000), b"\1" * 32, "file", None)}, 5_000)
    cache = StatCache(cache_path)
    entry = CacheEntry(StatKey(20, 2_000, 2, 2_000), b"\2" * 32, "file", None)
    assert cache.save_changes({"b": entry}, [], 2_000, b"\3" * 32, {}, base=None)  # b's mtime is not before it
    cache = StatCache(cache_path)
    assert [e is not None for e in cache.get_all([a, b], {"a": "file", "b": "file"})] == [True, False]
    assert StatCache(cache_path).save_changes({"b": entry}, ["a"], 3_000, b"\3" * 32, {}, base=None)
    cache = StatCache(cache_path)
    got = cache.get_all([a, b], {"a": "file", "b": "file"})
    assert got[0] is None and got[1] is not None and got[1].oid == b"\2" * 32  # a is gone, b is vouched for now
    assert cache.differences([a, b]) == ([0], [])
    assert cache.differences([b]) == ([], [])
    cache._index["changes"]["entries"][0][1] = "not a size"
    cache._changed = None
    assert cache.get_all([a, b], {"a": "file", "b": "file"}) == [None, None]


@pytest.mark.skipif(not NATIVE, reason="pvc/_pages.c is not built")
@pytest.mark.parametrize("kind", ["files", "items"])
def test_native_runs_cut_and_encode_pages_as_the_model_does(kind):
    """`_pages.runs` and `_pages.one_page` give the very pages `pages.page_runs` and `model.Page.encode` give, keys
    of every length (msgpack's str headers) and outside ASCII included."""
    from pvc import _pages

    rng = random.Random(7)
    keys = sorted({"".join(rng.choices("abcxyz_é/.", k=rng.choice([1, 5, 31, 32, 40, 255, 256, 300])))
                   for _ in range(2_500)} | {"b" * 70_000, "y" * 65_536})  # str8, str16 and str32 headers
    if kind == "files":
        values = [FileValue(bytes([i % 256]) * 32, i * 1000, 0o644) for i in range(len(keys))]
    else:
        values = [ItemEntry("image", f"img/{i}.png", None, (), {"width": i}, None, sorted_values=True)
                  for i in range(len(keys))]
    entries = [(k, msgpack.packb(v.encode(), use_bin_type=True)) for k, v in zip(keys, values)]
    closed, rest = _pages.runs(kind, entries, pages.PAGE_MIN, pages.PAGE_AVG, pages.PAGE_MAX)
    runs = pages.page_runs(keys)
    assert len(closed) == len(runs) - 1 and rest == entries[runs[-1][0]:]
    for (first, data, count), (lo, hi) in zip(closed + [_pages.one_page(kind, rest)], runs):
        assert (first, data, count) == (keys[lo], Page(kind, tuple(zip(keys[lo:hi], values[lo:hi]))).encode(), hi - lo)
    # the same entries given as runs of pages' entries (spliced from their bytes) and pairs, mixed: the same pages
    pieces, at, spliced = [], 0, 0
    while at < len(entries):
        size = rng.choice([1, 7, 40, 300])
        part = entries[at:at + size]
        if rng.random() < 0.5:
            pieces.append(part[0])
            at += 1
            continue
        page = Page(kind, tuple(zip(keys[at:at + size], values[at:at + size]))).encode()
        table = _pages.table(kind, page, part[0][0], len(part), None)  # (None: a key no files page may hold)
        lo = rng.randrange(len(part))
        pieces += part if table is None else [*part[:lo], (page, table, lo, len(part))]
        spliced += table is not None
        at += len(part)
    closed_too, rest_too = _pages.runs(kind, pieces, pages.PAGE_MIN, pages.PAGE_AVG, pages.PAGE_MAX)
    assert closed_too == closed
    assert _pages.one_page(kind, rest_too) == _pages.one_page(kind, rest)
    assert all(isinstance(piece, tuple) and len(piece) in (2, 4) for piece in rest_too)
    assert spliced  # runs of pages were spliced, not only pairs


def _write(root: Path, rel: str, data: bytes | str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())


def _png(seed: int) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (4, 3), (seed % 256, seed * 7 % 256, 9)).save(buf, "PNG")
    return buf.getvalue()


def _ann(n: int, cls: str = "cat") -> str:
    return json.dumps({"size": {"width": 4, "height": 3}, "tags": [],
                       "objects": [{"classTitle": cls, "geometryType": "rectangle"}] * n})


def _meta(project_type: str | None = "images") -> str:
    doc = {"classes": [{"title": "cat", "shape": "rectangle"}], "tags": []}
    return json.dumps(doc | ({"projectType": project_type} if project_type else {}))


def test_a_map_made_from_nothing_is_cut_into_pages(tmp_path):
    """A dataset whose items map was empty gets 250 images: the new map is cut where a full build cuts it."""
    root = tmp_path / "p"
    _write(root, "meta.json", _meta())
    _write(root, "ds/img/readme.txt", "no images yet")
    commit(Repository.init(root), title="v1")
    for k in range(250):
        _write(root, f"ds/img/i{k:04d}.png", _png(k))
    assert len(pages.page_runs([f"i{k:04d}.png" for k in range(250)])) > 1
    cap = _from_change(Repository(root))
    assert (cap.partial or not NATIVE) and cap.manifest_id == _full(Repository(root)).manifest_id


def test_a_racy_file_hashed_again_is_not_taken_from_an_old_page(tmp_path, monkeypatch):
    """A commit reads a file modified in the tick its scan began (racy); it is rewritten within that tick (same stat,
    other bytes); a status from the change reads it again and saves it. A full build after that must not take the
    commit's page of it by id: the page records do not outlive a save of changes."""
    from pvc.record import replace
    import time

    import pvc.core.capture.walk as walk

    root = tmp_path / "p"
    _write(root, "meta.json", _meta())
    for k in range(5):
        _write(root, f"ds/img/a{k}.png", _png(k))
        _write(root, f"ds/ann/a{k}.png.json", _ann(1))
    racy = "ds/ann/a2.png.json"
    tick = time.time_ns() + 1_500_000_000  # after the commit's scan began, before the later scans begin
    real = walk.native_walk, walk.scan

    def pinned(files):
        return [replace(f, mtime_ns=tick, ctime_ns=tick, ino=4242) if f.relpath == racy else f
                for f in files]

    def pinned_records(walked):  # the same stat, in the C walk's records
        if walked is None:
            return None
        records, flags = walked
        out, at = bytearray(), 0
        while at < len(records):
            end = records.index(b"\0", at) + 1
            stats = records[end : end + RECORD.size]
            if records[at : end - 1].decode() == racy:
                stats = RECORD.pack(RECORD.unpack(stats)[0], tick, 4242, tick)
            out += records[at:end] + stats
            at = end + RECORD.size
        return bytes(out), flags

    monkeypatch.setattr(walk, "native_walk", lambda *a, **k: pinned_records(real[0](*a, **k)))
    monkeypatch.setattr(walk, "scan", lambda *a, **k: pinned(real[1](*a, **k)))
    _write(root, racy, _ann(1, "dog"))
    commit(Repository.init(root), title="v1")
    _write(root, racy, _ann(1, "cat"))  # same size: the stat the walk reports stays the same
    time.sleep(1.6)
    status(Repository(root))  # from the change: the racy file is read again, and saved after the columns
    truth = _full(Repository(root)).manifest_id
    (root / ".pvc" / "index").unlink()
    assert truth == _full(Repository(root)).manifest_id  # what a build that trusts no cache gives
    (root / "meta.json").write_text(_meta() + " ")  # a change only the full build handles
    result = commit(Repository(root), title="v2")
    assert Repository(root).store.get_object(bytes.fromhex(result.version.manifest), Manifest).classes == {"cat": 5}


def test_a_point_cloud_episode_annotation_makes_the_full_build_run(tmp_path):
    """meta.json without a type: a dataset's annotation.json beside pointcloud/ decides what its datasets count as."""
    root = tmp_path / "p"
    _write(root, "meta.json", _meta(None))
    for ds in ("A", "E"):
        for k in range(3):
            _write(root, f"{ds}/img/a{k}.png", _png(k))
            _write(root, f"{ds}/ann/a{k}.png.json", _ann(1))
    _write(root, "E/pointcloud/p.pcd", "x")
    _write(root, "E/annotation.json", "{}")
    _write(root, "C/pointcloud/p.pcd", "x")
    _write(root, "D/pointcloud/p.pcd", "x")
    commit(Repository.init(root), title="v1")
    (root / "E" / "annotation.json").unlink()
    cap = _from_change(Repository(root))
    assert not cap.partial and cap.manifest_id == _full(Repository(root)).manifest_id


def test_an_item_named_by_an_empty_stem_keeps_its_companions(tmp_path):
    root = tmp_path / "p"
    _write(root, "meta.json", _meta())
    for k in range(3):
        _write(root, f"ds/img/a{k}.png", _png(k))
        _write(root, f"ds/ann/a{k}.png.json", _ann(1))
    _write(root, "ds/ann/.json", _ann(1))  # an annotation-only item named ""
    commit(Repository.init(root), title="v1")
    _write(root, "ds/meta/.json", "{}")  # its companion
    cap = _from_change(Repository(root))
    assert (cap.partial or not NATIVE) and cap.manifest_id == _full(Repository(root)).manifest_id


def test_many_changes_are_saved_whole_once_too_many_for_after_the_columns(tmp_path):
    """Past max(1,000, an eighth of the entries) changed entries, the save writes every entry anew (not nothing):
    the next status reads no file."""
    import time

    from pvc.core.status import working_snapshot

    root = tmp_path / "p"
    _write(root, "meta.json", _meta())
    _write(root, "ds/img/a.png", _png(1))
    for k in range(4_400):  # a quarter of the files at most change, for the build from the change
        _write(root, f"ds/extra/f{k:05d}.txt", f"v1 {k}")
    _settle(root)
    commit(Repository.init(root), title="v1")
    for k in range(1_050):
        (root / "ds" / "extra" / f"f{k:05d}.txt").write_text(f"v2 {k}")
    time.sleep(0.05)  # the edits older than the next scan's start: not racy
    read = []
    for _ in range(2):
        repo = Repository(root)
        _, cap = working_snapshot(repo, repo.latest().manifest, from_change=True)
        assert cap.partial or not NATIVE
        read.append(cap.files_hashed)
    assert read == [1_050, 0]


def test_a_stat_cache_written_before_the_base_existed_is_read_and_builds_in_full(tmp_path, monkeypatch):
    """Earlier pvc wrote format-6 caches (the stats as msgpack integers, the inodes as differences), at first without
    `base`, `changes` and `ids_from`: such a file still vouches for its entries (nothing is read again), has no base,
    and the next capture is the full build; the next commit writes the base, in format 7."""
    import zstandard

    from pvc.store import statcache

    root = make_image_project(tmp_path / "proj", items=20, datasets=2, seed=21)
    _settle(root)
    commit(Repository.init(root), title="v1")
    index = root / ".pvc" / "index"
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    unpacker.feed(index.read_bytes())
    head, doc = unpacker.unpack(), unpacker.unpack()
    assert head["format"] == 7 and doc.pop("base") is not None
    blob, sizes, mtimes, inodes, ctimes = statcache._columns(zstandard.ZstdDecompressor().decompress(doc["stats"]))
    inodes = list(inodes)
    steps = inodes[:1] + [b - a for a, b in zip(inodes, inodes[1:])]
    doc["stats"] = zstandard.ZstdCompressor().compress(msgpack.packb(
        [blob.decode().split("\0"), list(sizes), list(mtimes), steps, list(ctimes)]))
    results = msgpack.unpackb(zstandard.ZstdDecompressor().decompress(doc["results"]), raw=False, strict_map_key=False)
    ends = [0, *accumulate(statcache._unshuffled(results["lengths"], "I"))]
    role_of = statcache._unshuffled(results["role_of"], "H")
    doc["results"] = zstandard.ZstdCompressor().compress(msgpack.packb(  # format 6: roles and infos as arrays
        {"derived": results["derived"], "roles": [results["roles"][n] for n in role_of],
         "infos": [msgpack.unpackb(results["infos"][a:b], raw=False) for a, b in zip(ends, ends[1:])]},
        use_bin_type=True))
    index.write_bytes(msgpack.packb(head | {"format": 6}, use_bin_type=True) + msgpack.packb(doc, use_bin_type=True))
    _apply("edit_ann", root, random.Random(5), 0)
    assert Repository(root).stat_cache().base is None
    cap = _from_change(Repository(root))
    assert not cap.partial and cap.files_hashed == 1  # every other file vouched for by the old cache
    assert cap.manifest_id == _full(Repository(root)).manifest_id
    commit(Repository(root), title="v2")
    assert Repository(root).stat_cache().base[0] == _latest(Repository(root))
    assert msgpack.Unpacker(io.BytesIO(index.read_bytes()), raw=False).unpack()["format"] == 7
