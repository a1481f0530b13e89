"""Helpers for the verify/gc tests and the battery: damage a store, add garbage, read versions back."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import time
from pathlib import Path

from helpers import tree_bytes

from pvc.api import Project
from pvc.core.snapshot import FileEntry, Snapshot
from pvc.store.local.packs import Location
from pvc.store.repository import Repository


def flip(path: Path, pos: int, mask: int = 0xFF) -> None:
    """XOR one byte of a file in place (mask != 0, so the byte always changes)."""
    data = bytearray(path.read_bytes())
    data[pos] ^= mask
    path.write_bytes(bytes(data))


def locate(project: Path, oid: bytes) -> tuple[Path, Location]:
    repo = Repository(project)
    try:
        loc = repo.store.locate(oid)
        assert loc is not None, oid.hex()
        return repo.store.pack_path(loc.pack), loc
    finally:
        repo.close()


def flip_object(project: Path, oid: bytes, at: int = 10) -> None:
    """Damage the stored bytes of one object (not its header)."""
    pack, loc = locate(project, oid)
    flip(pack, loc.offset + min(at, loc.stored_len - 1))


def files_of(project: Path, number: int) -> list[FileEntry]:
    """Every file of a version, with the dataset and item it belongs to."""
    repo = Repository(project)
    try:
        record = repo.versions()[number - 1]
        return list(Snapshot(repo.store, bytes.fromhex(record.manifest)).files())
    finally:
        repo.close()


def blob_of(project: Path, relpath: str, number: int = 1) -> bytes:
    return next(e.oid for e in files_of(project, number) if e.path == relpath)


def add_orphans(project: Path, count: int = 5, size: int = 3000, seed: int = 0) -> list[bytes]:
    """Store objects no version names (as a commit killed after publishing its packs leaves them)."""
    rng = random.Random(seed)
    repo = Repository(project)
    try:
        with repo.lock(10):
            store = repo.reopen_store()
            ids = [store.put(rng.randbytes(size), compress=False) for _ in range(count)]
            store.flush()
        return ids
    finally:
        repo.close()


def age_packs(project: Path, seconds: float = 7200) -> None:
    """Make every pack look `seconds` old (gc spares packs younger than its grace period)."""
    when = time.time() - seconds
    for path in (project / ".pvc" / "packs").glob("*.pack"):
        os.utime(path, (when, when))


def sha_tree(root: Path) -> dict[str, str]:
    """Every file under `root` (outside `.pvc/`) -> sha256 of its bytes: byte-exact, without keeping the bytes."""
    return {path: hashlib.sha256(data).hexdigest() for path, data in tree_bytes(root).items()}


def restored_sha(project: Path, number: int, dest: Path) -> dict[str, str]:
    """Restore version `number` (every object re-hashed) and fingerprint it; the copy is removed after."""
    with Project(project) as p:
        p.version.restore(version_num=number, dest=dest, verify=True)
    try:
        return sha_tree(dest)
    finally:
        shutil.rmtree(dest)
