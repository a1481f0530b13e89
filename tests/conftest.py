"""Shared fixtures: real sample projects (Pillow images, Supervisely annotations) and a CLI runner."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from pvc.entry import main
from pvc.sample import make_image_project


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run `pvc ARGS` in-process (through the real entry point) in directory `cwd`."""

    def run(*args: str, cwd: Path | None = None) -> CliResult:
        if cwd is not None:
            monkeypatch.chdir(cwd)
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture
def project(tmp_path) -> Path:
    """A small Supervisely image project with nested datasets, companions, extras and tricky names."""
    return make_image_project(tmp_path / "proj", items=24, datasets=2, seed=11)


@pytest.fixture
def initialised(project, cli) -> Path:
    assert cli("init", project).code == 0
    return project
