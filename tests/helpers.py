"""Helpers the tests import (conftest.py holds only fixtures: a conftest module cannot be imported by name
once tests/store/ has one of its own)."""

from __future__ import annotations

import os
from pathlib import Path


def tree_bytes(root: Path, skip: tuple[str, ...] = (".pvc",)) -> dict[str, bytes]:
    """Every file under `root` (relative posix path -> bytes), for byte-exact comparisons."""
    files = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        dirnames[:] = [d for d in dirnames if not (rel_dir == "." and d in skip)]
        for name in filenames:
            path = Path(dirpath) / name
            files[path.relative_to(root).as_posix()] = path.read_bytes()
    return files


def store_state(project: Path) -> dict[str, bytes]:
    """The visible store (packs, indexes, refs) as bytes, to check that a failed command changed nothing."""
    pvc_dir = project / ".pvc"
    state = {p.name: p.read_bytes() for p in (pvc_dir / "packs").iterdir()}
    for name in ("versions", "versions.bak"):
        if (pvc_dir / name).exists():
            state[name] = (pvc_dir / name).read_bytes()
    return state


def put_raw(store, obj: dict) -> bytes:
    """Store a structured object given as a plain map, shape unchecked: how tests craft malformed objects."""
    from pvc.store.objects import encode

    return store.put(encode(obj), compress=True)


# the credentials the loopback S3 server's tests use (conftest.py's s3_server puts them in the environment)
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "pvc-test-key", "AWS_SECRET_ACCESS_KEY": "pvc-test-secret",
                  "AWS_REGION": "us-east-1"}
