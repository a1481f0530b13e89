"""Shared fixtures: real sample projects (Pillow images, Supervisely annotations) and a CLI runner."""

from __future__ import annotations

import json
import os
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


# -- a real S3-protocol server on loopback, for the remote tests ----------------------------------------------

@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on 127.0.0.1 (a free port), for the whole session; yields its endpoint URL.

    The credentials tests use are in the environment, as a user's would be; the instance-metadata endpoint of
    the AWS credential chain points at a closed loopback port, so no request ever leaves the machine."""
    from moto.server import ThreadedMotoServer

    from helpers import S3_CREDENTIALS

    saved = {k: os.environ.get(k) for k in (*S3_CREDENTIALS, "AWS_METADATA_ENDPOINT", "AWS_PROFILE", "AWS_SESSION_TOKEN")}
    os.environ.update(S3_CREDENTIALS)
    os.environ["AWS_METADATA_ENDPOINT"] = "http://127.0.0.1:9"
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("AWS_SESSION_TOKEN", None)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def s3_bucket(s3_server, request) -> str:
    """A new, empty bucket on the loopback server; its name."""
    import re

    import boto3

    name = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-") + f"-{os.urandom(3).hex()}"
    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1").create_bucket(Bucket=name)
    return name
