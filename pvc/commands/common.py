"""What every command shares: opening the project, the option types, reading a description file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pvc.errors import BadInput

if TYPE_CHECKING:
    from pvc.api import Project

__all__ = ["open_project", "ProjectOpt", "JsonOpt", "VersionArg", "LockTimeoutOpt", "EndpointOpt", "RegionOpt",
           "read_description"]


def open_project(path: Path, *, init: bool = False, check_config: bool = True) -> Project:
    """The project API, imported on first use: `pvc --help` and usage errors need no store code."""
    from pvc.api import Project

    return Project.init(path) if init else Project(path, check_config=check_config)


ProjectOpt = Annotated[Path, typer.Option("--project", "-C", help="Project directory (default: here or a parent with .pvc/).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
VersionArg = Annotated[str, typer.Argument(help="Version: 3, v3, latest, a tag, or a manifest hash prefix (>= 6 hex).")]
LockTimeoutOpt = Annotated[float, typer.Option(help="Seconds to wait for another writer.")]
EndpointOpt = Annotated[str | None, typer.Option(help="S3-compatible endpoint, e.g. http://minio:9000 (MinIO, Ceph, ...).")]
RegionOpt = Annotated[str | None, typer.Option(help="S3 region (default: the environment's or the profile's).")]


def read_description(path: Path) -> dict:
    """A description from a file holding one JSON object (e.g. workflow metadata)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BadInput(path, f"unreadable ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise BadInput(path, f"malformed JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise BadInput(path, "the description must be a JSON object")
    return doc
