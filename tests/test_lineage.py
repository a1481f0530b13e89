"""A restored project remembers where it came from and shares its source's objects: its first commit reads and
stores nothing restored unchanged, its versions carry `origin`, and the source's gc keeps what it needs, for as
long as it exists (also against a commit there racing the gc, in two processes)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import tree_bytes
from test_media_projects import video_project, volume_project  # noqa: F401  (fixtures)

from pvc.sample import make_image_project
from pvc.store.links import LinkedProjects


@pytest.fixture
def image_project(tmp_path) -> Path:
    return make_image_project(tmp_path / "images", items=8, datasets=2, seed=21)


def _own_packs(project: Path) -> list[Path]:
    return sorted((project / ".pvc" / "packs").glob("*.pack"))


@pytest.mark.parametrize("kind", ["image_project", "video_project", "volume_project"])
def test_restored_project_commits_sharing_the_source_objects(kind, request, cli, tmp_path):
    source = request.getfixturevalue(kind)
    assert cli("init", source).code == 0
    assert cli("commit", "-m", "source v1", cwd=source).code == 0
    manifest = cli("show", "--json").json()["manifest"]
    copy = tmp_path / "copy"
    restored = cli("restore", "1", "--to", copy, "--json")
    assert restored.code == 0, restored.err
    assert restored.json()["linked_store"] and restored.json()["origin"]["manifest"] == manifest
    assert tree_bytes(copy) == tree_bytes(source)

    first = cli("commit", "-m", "continued", "--json", cwd=copy)  # no `pvc init` needed
    assert first.code == 0, first.err
    assert first.json()["manifest"] == manifest and first.json()["files_hashed"] == 0
    assert _own_packs(copy) == []  # nothing restored unchanged is stored again
    record = cli("show", "--json").json()
    origin = record["origin"]
    assert origin["project"] == str(source) and origin["version"] == 1 and origin["manifest"] == manifest
    assert origin["store"] == json.loads((source / ".pvc" / "config").read_text())["id"]
    assert "restored from" in cli("show").out and str(source) in cli("log").out

    edited = next(p for p in sorted(copy.rglob("ann/*.json")))
    edited.write_text(edited.read_text().replace("}", "} ", 1))
    second = cli("commit", "-m", "edited one annotation", "--json").json()
    assert second["files_hashed"] == 1 and second["created"]
    stored = sum(p.stat().st_size for p in _own_packs(copy))
    assert 0 < stored < 20_000  # the annotation and the pages, trees and manifest above it
    assert cli("show", "2", "--json").json()["origin"] is None  # only a version with no parent here has one
    assert cli("gc", "--grace", "0", "--json").json()["reachable"] > 0  # its own gc keeps its own packs alone
    assert sum(p.stat().st_size for p in _own_packs(copy)) <= stored and cli("verify").code == 0
    assert cli("restore", "1", "--to", tmp_path / "again", "--verify").code == 0
    assert tree_bytes(tmp_path / "again") == tree_bytes(source)


def test_source_gc_keeps_what_a_linked_project_needs_until_it_is_gone(image_project, cli, tmp_path):
    source = image_project
    assert cli("init", source).code == 0
    (source / "big.bin").write_bytes(os.urandom(1 << 20))
    assert cli("commit", "-m", "with big", cwd=source).code == 0
    linked = tmp_path / "linked"
    assert cli("restore", "1", "--to", linked).code == 0
    assert cli("commit", "-m", "mine", cwd=linked).code == 0
    (source / "big.bin").unlink()
    assert cli("commit", "-m", "without big", cwd=source).code == 0
    assert cli("delete", "1", "--yes").code == 0
    registrations = list((source / ".pvc" / "linked").glob("*.json"))
    assert len(registrations) == 1 and json.loads(registrations[0].read_text())["project"] == str(linked)

    kept = cli("gc", "--grace", "0", "--json").json()  # v1 is deleted here, but the linked project's v1 is it
    assert kept["bytes_freed"] < 1 << 20
    assert [(s["project"], s["state"]) for s in kept["linked"]] == [(str(linked), "linked")]
    assert cli("verify", cwd=linked).code == 0
    assert cli("restore", "1", "--to", tmp_path / "from-linked", "--no-link").code == 0
    assert (tmp_path / "from-linked" / "big.bin").stat().st_size == 1 << 20

    shutil.rmtree(linked)
    dry = cli("gc", "--grace", "0", "--dry-run", "--json", cwd=source).json()
    assert [s["state"] for s in dry["linked"]] == ["gone"] and registrations[0].exists()
    before = sum(p.stat().st_size for p in _own_packs(source))
    said = cli("gc", "--grace", "0")
    assert said.code == 0 and f"dropped the link to {linked}: {linked} has no pvc store any more" in said.out
    assert before - sum(p.stat().st_size for p in _own_packs(source)) >= 1 << 20 and not registrations[0].exists()
    assert cli("gc", "--grace", "0", "--json").json()["linked"] == []


def test_a_project_restored_from_a_restored_one_keeps_both_sources(image_project, cli, tmp_path):
    assert cli("init", image_project).code == 0
    assert cli("commit", "-m", "a", cwd=image_project).code == 0
    middle, last = tmp_path / "middle", tmp_path / "last"
    assert cli("restore", "1", "--to", middle).code == 0
    (middle / "extra.txt").write_text("middle's own\n")
    assert cli("commit", "-m", "b", cwd=middle).code == 0
    assert cli("restore", "1", "--to", last, cwd=middle).code == 0
    alternates = (last / ".pvc" / "alternates").read_text().splitlines()
    assert alternates == [str(middle / ".pvc" / "packs"), str(image_project / ".pvc" / "packs")]
    assert cli("commit", "-m", "c", "--json", cwd=last).json()["files_hashed"] == 0 and _own_packs(last) == []
    for source in (middle, image_project):  # registered with both: each one's gc keeps what `last` needs
        assert [s["state"] for s in cli("gc", "--grace", "0", "--json", cwd=source).json()["linked"]].count("linked") >= 1
    assert cli("verify", cwd=last).code == 0


def test_restore_from_a_source_that_cannot_be_written_says_how_to_copy_instead(image_project, cli, tmp_path,
                                                                                  monkeypatch):
    assert cli("init", image_project).code == 0
    assert cli("commit", "-m", "a", cwd=image_project).code == 0

    def read_only(self, registration):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(LinkedProjects, "add", read_only)  # as on a read-only mount (root ignores chmod)
    result = cli("restore", "1", "--to", tmp_path / "r")
    assert result.code == 1 and "--no-link" in result.err and result.err.count("\n") == 1
    assert not (tmp_path / "r").exists() and list(tmp_path.glob(".r.*")) == []
    assert cli("restore", "1", "--to", tmp_path / "r", "--no-link").code == 0


# A linked project commits (relying on an object only its source holds, from a deleted version there) while the
# source collects garbage: in either order, the linked project ends whole.
COMMIT = """
import sys
from pvc.cli import main
sys.exit(main(["commit", "-m", "race", "--lock-timeout", "120", "-C", sys.argv[1]]))
"""
GC = """
import sys
from pvc.cli import main
sys.exit(main(["gc", "--grace", "0", "--lock-timeout", "120", "-C", sys.argv[1]]))
"""


def test_a_linked_commit_and_a_source_gc_in_two_processes(image_project, cli, tmp_path):
    assert cli("init", image_project).code == 0
    env = {k: v for k, v in os.environ.items() if k != "PVC_DEBUG"}
    for round_ in range(3):
        (image_project / "round.bin").write_bytes(os.urandom(300_000))
        assert cli("commit", "-m", f"r{round_}", cwd=image_project).code == 0
        number = cli("show", "--json").json()["number"]
        linked = tmp_path / f"linked{round_}"
        assert cli("restore", str(number), "--to", linked).code == 0
        (image_project / "round.bin").unlink()
        (image_project / f"other{round_}.txt").write_text("moved on\n")
        assert cli("commit", "-m", "moved on").code == 0
        assert cli("delete", str(number), "--yes").code == 0  # round.bin is garbage in the source now
        procs = [subprocess.Popen([sys.executable, "-c", script, str(path)], env=env, stderr=subprocess.PIPE, text=True)
                 for script, path in ((COMMIT, linked), (GC, image_project))]
        for proc in procs:
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err
        assert cli("verify", cwd=linked).code == 0, f"round {round_}"
        assert cli("restore", "1", "--to", tmp_path / f"check{round_}", "--verify").code == 0
        assert tree_bytes(tmp_path / f"check{round_}") == tree_bytes(linked)
        assert cli("gc", "--grace", "0", cwd=image_project).code == 0 and cli("verify", cwd=linked).code == 0


def test_a_linked_project_pushes_the_objects_it_shares_with_its_source(image_project, cli, tmp_path):
    """The objects a restored project reads from its source's packs go to its remote like its own: a clone of
    that remote is whole, and knows nothing of the source."""
    assert cli("init", image_project).code == 0 and cli("commit", "-m", "v1", cwd=image_project).code == 0
    copy = tmp_path / "copy"
    assert cli("restore", "1", "--to", copy).code == 0
    (copy / "NOTES.txt").write_text("from the copy\n")
    assert cli("commit", "-m", "own", cwd=copy).code == 0
    assert cli("remote", "add", "origin", tmp_path / "remote", cwd=copy).code == 0
    pushed = cli("push", "--json", cwd=copy)
    assert pushed.code == 0, pushed.err
    assert pushed.json()["pushed"] == [1]
    clone = cli("clone", tmp_path / "remote", tmp_path / "clone", "--json")
    assert clone.code == 0, clone.err
    assert tree_bytes(tmp_path / "clone") == tree_bytes(copy)
    assert not (tmp_path / "clone" / ".pvc" / "alternates").exists()
    shutil.rmtree(image_project)  # the clone reads nothing of the source
    assert cli("verify", cwd=tmp_path / "clone").code == 0
    assert cli("restore", "1", "--to", tmp_path / "again", "--verify", cwd=tmp_path / "clone").code == 0


def test_a_restore_renamed_into_place_between_gcs_look_and_its_open_is_found_where_it_went(tmp_path, cli, monkeypatch):
    """gc looks at a restoring project's staging folder, and the restore renames it into place before gc opens it:
    gc finds the store at its place instead of failing (a race the concurrent battery met)."""
    from pvc.core import lineage
    from pvc.errors import NotAProject
    from pvc.store.links import Registration

    project = make_image_project(tmp_path / "proj", items=6, datasets=1, seed=2)
    assert cli("init", project).code == 0
    from pvc.store.repository import Repository

    repo = Repository(project)
    store_id = repo.store_id
    repo.close()
    staging = tmp_path / ".proj.pvc-restore-gone"
    (staging / ".pvc").mkdir(parents=True)
    (staging / ".pvc" / "config").write_text("{}")  # there when gc looks ...
    real = lineage._store_id

    def renamed_meanwhile(path):
        if path == staging:
            raise NotAProject(f"{path}/.pvc/config: missing (not a pvc store)")  # ... gone when it opens
        return real(path)

    monkeypatch.setattr(lineage, "_store_id", renamed_meanwhile)
    found = lineage.registration_state(Registration(store_id, str(project), str(staging), 1, "now"))
    assert (found.state, found.path) == ("linked", str(project))


def test_a_linked_project_deleted_while_gc_reads_it_is_dropped_not_an_error(image_project, cli, tmp_path, monkeypatch):
    """gc finds a linked project where it was registered, and its owner deletes it before gc has read it (a race the
    concurrent battery met): gc looks again, finds it gone, drops its registration and goes on."""
    from pvc.core import lineage
    from pvc.core.gc import gc
    from pvc.store.repository import Repository

    assert cli("init", image_project).code == 0
    assert cli("commit", "-m", "v1", cwd=image_project).code == 0
    copy = tmp_path / "copy"
    assert cli("restore", "1", "--to", copy, cwd=image_project).code == 0
    real = lineage._reach_at
    deleted = []

    def deleted_meanwhile(path):
        if path == copy and not deleted:
            shutil.rmtree(copy)  # between gc's look and its read
            deleted.append(path)
        return real(path)

    monkeypatch.setattr(lineage, "_reach_at", deleted_meanwhile)
    repo = Repository(image_project)
    try:
        gc(repo)
        assert deleted and repo.linked.list() == []
    finally:
        repo.close()
