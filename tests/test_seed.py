"""The stat cache a restore or a clone writes (pvc/core/capture/seed.py) gives each file the role a commit gives it:
the roles read from the version's items equal `classify`'s on the files restored, for image projects (companions,
nested datasets, project files), video projects and volume projects (NRRD, NIfTI, NumPy, DICOM series in a folder,
loose and single slices)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
from test_media_projects import video_project, volume_project  # noqa: F401 (fixtures)

from pvc import cli as full_cli
from pvc.core.capture.seed import roles_of
from pvc.core.selection import plan_restore
from pvc.core.snapshot import Snapshot
from pvc.project.layout import classify
from pvc.sample import make_image_project
from pvc.store.repository import Repository


def _roles_both_ways(project: Path) -> tuple[dict[str, str], dict[str, str]]:
    with contextlib.redirect_stdout(io.StringIO()):
        assert full_cli.main(["init", str(project)]) == 0
        assert full_cli.main(["commit", "-m", "v1", "-C", str(project)]) == 0
    repo = Repository(project)
    try:
        snap = Snapshot(repo.store, bytes.fromhex(repo.versions()[-1].manifest))
        plan = plan_restore(snap)
        from_items = roles_of(snap.manifest.project_type, plan.files, plan.items, plan.folders)
        classified = classify([f.path for f in plan.files], snap.manifest.project_type).roles
        paths = [f.path for f in plan.files]
        return {p: from_items.get(p, "file") for p in paths}, {p: classified.get(p, "file") for p in paths}
    finally:
        repo.close()


@pytest.mark.parametrize("nested", [False, True])
def test_roles_of_an_image_project(tmp_path, nested):
    project = make_image_project(tmp_path / "proj", items=24, datasets=3, seed=3, nested=nested)
    (project / "README.md").write_text("notes\n")
    mine, theirs = _roles_both_ways(project)
    assert mine == theirs
    assert {"meta", "image", "ann", "file"} <= set(mine.values())


def test_roles_of_a_video_project(video_project):  # noqa: F811
    mine, theirs = _roles_both_ways(video_project)
    assert mine == theirs and {"video", "video_ann"} <= set(mine.values())


def test_roles_of_a_volume_project(volume_project):  # noqa: F811
    mine, theirs = _roles_both_ways(volume_project)
    assert mine == theirs and {"volume", "dicom", "volume_ann"} <= set(mine.values())
