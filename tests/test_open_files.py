"""A long history under a low open-files limit: a store keeps one open file per pack it reads, and a project with a
commit a day has a pack a day. Before, `pvc diff 1 N`, `restore`, `verify` and `push` across more packs than the
soft limit (1,024 on most Linux systems, 256 on macOS) failed with "Too many open files". Now the soft limit is
raised to the hard one, the store closes the pack files it read least recently (never one a read is on), and
what must stay open (verify's and push's hold on every pack against a concurrent gc) falls back to the lock."""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
import threading
from pathlib import Path

import blake3
import pytest

from pvc.api import Project
from pvc.errors import TooManyFiles
from pvc.sample import make_image_project
from pvc.store.local import packstore
from tests.helpers import tree_bytes

VERSIONS = 56  # a pack each
LOW = 48  # an open-files limit pvc starts under (the interpreter, its modules), but not with every pack open


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> tuple[Path, dict[str, bytes]]:
    """A project of VERSIONS versions, one annotation edited in each; and the files of version 1."""
    root = make_image_project(tmp_path_factory.mktemp("hist") / "proj", items=6, datasets=1, seed=5)
    project = Project.init(root)
    project.version.create("v1")
    first = tree_bytes(root)
    ann = sorted(root.glob("*/ann/*.json"))[0]
    for n in range(2, VERSIONS + 1):
        doc = json.loads(ann.read_text())
        doc["tags"] = [{"name": f"edit-{n}"}]
        ann.write_text(json.dumps(doc))
        project.version.create(f"v{n}")
    project.close()
    assert len(list((root / ".pvc" / "packs").glob("*.pack"))) >= VERSIONS
    return root, first


def _pvc(root: Path, *args: str, soft: int, hard: int) -> subprocess.CompletedProcess:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    return subprocess.run([sys.executable, "-m", "pvc", "-C", str(root), *args], capture_output=True, text=True,
                          preexec_fn=limit, timeout=120)


@pytest.mark.parametrize("soft, hard", [(LOW, LOW), (LOW, 4096), (2 * VERSIONS + 16, 2 * VERSIONS + 16)],
                         ids=["hard limit reached", "soft limit raised", "every pack pinned, room left"])
def test_diff_restore_verify_and_push_across_more_packs_than_the_limit(history, tmp_path, soft, hard):
    root, first = history
    run = lambda *a: _pvc(root, *a, soft=soft, hard=hard)  # noqa: E731

    diff = run("diff", "1", str(VERSIONS), "--json")
    assert diff.returncode == 0, diff.stderr
    [modified] = json.loads(diff.stdout)["items"]["modified"]  # the one annotation edited in every version
    assert modified["annotation"]["tags"]["added"] == [f"edit-{VERSIONS}"]

    out = tmp_path / "v1"
    restored = run("restore", "1", "--to", str(out), "--no-link", "--verify", "--json")
    assert restored.returncode == 0, restored.stderr
    assert tree_bytes(out) == first

    verified = run("verify", "--json")
    assert verified.returncode == 0, verified.stderr
    report = json.loads(verified.stdout)
    assert report["problems"] == [] and report["packs"] >= VERSIONS

    remote = tmp_path / "remote"
    assert run("remote", "add", "origin", f"file://{remote}").returncode == 0
    pushed = run("push", "--json")
    assert pushed.returncode == 0, pushed.stderr
    assert json.loads(pushed.stdout)["pushed"] == list(range(1, VERSIONS + 1))
    assert run("remote", "remove", "origin").returncode == 0


def test_too_few_files_for_pins_says_so_in_one_line(history):
    """Where even one more pack cannot be opened while others are pinned, the message says what to do."""
    root, _ = history
    store = packstore.PackStore(root / ".pvc")
    try:
        store._raised, store._room = True, 4  # as if the hard limit were reached
        before = len(os.listdir("/proc/self/fd"))
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (before + 3, hard))
        try:
            with pytest.raises(TooManyFiles, match=r"too many open files.*ulimit -n"):
                store.pin_packs()
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        assert not store._pinned and not store._fds  # what it had pinned is let go
    finally:
        store.close()


def test_pack_files_are_closed_least_recently_read_first_and_never_under_a_read(history, monkeypatch):
    root, _ = history
    monkeypatch.setattr(packstore, "_room", lambda soft: 3)
    store = packstore.PackStore(root / ".pvc")
    store._raised = True  # the limit is not raised: the room stays 3
    oids = [oid for oid, _ in _objects(store)]
    expected = {oid: store.get(oid) for oid in oids}
    assert len(store._fds) <= 3
    errors: list[BaseException] = []

    def reader(k: int) -> None:
        try:
            for i in range(300):
                oid = oids[(i * 7 + k * 13) % len(oids)]
                assert store.get(oid) == expected[oid]
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    assert len(store._fds) <= 3 and not store._busy
    fds = [*store._fds.values(), *store._doomed]
    store.close()
    for fd in fds:
        with pytest.raises(OSError):
            os.fstat(fd)  # every file the store opened is closed


def _objects(store: packstore.PackStore) -> list[tuple[bytes, object]]:
    """One object of each pack of the store."""
    seen, found = set(), []
    for idx in store.indexes:
        for oid, loc in idx:
            if loc.pack not in seen:
                seen.add(loc.pack)
                found.append((oid, loc))
    assert len(found) >= VERSIONS
    return found


def test_a_restore_of_many_large_files_raises_the_limit_or_says_why_not(tmp_path):
    """A restore keeps each large (chunked) file open until all its chunks are written: more of them than the soft
    limit allows raise it; where the hard limit is too low, one line says so, and nothing is left behind (before,
    the files opened until the failure stayed open, and the staging folder could not be removed)."""
    root = make_image_project(tmp_path / "proj", items=2, datasets=1, seed=3)
    big = root / "recordings"
    big.mkdir()
    for k in range(40):  # 1.2 MB each: over the chunk threshold set below, most of them cut in several chunks
        (big / f"take_{k:03d}.bin").write_bytes(random.Random(k).randbytes(1200 << 10))
    notes = root / "notes"
    notes.mkdir()
    for k in range(150):  # small files, written while the large ones are open, from packs of their own
        (notes / f"n{k:03d}.txt").write_bytes(random.Random(1000 + k).randbytes(3000))
    project = Project.init(root)
    project.config_set("chunk_threshold", 256 << 10)
    project.config_set("pack_size", 64 << 10)
    project.close()
    project = Project(root)
    project.version.create("v1")
    project.close()
    store = packstore.PackStore(root / ".pvc")
    large = sum(1 for p in big.iterdir() if store.info(blake3.blake3(p.read_bytes()).digest()).chunked)
    store.close()
    assert large >= 16  # (a file of one chunk is stored whole)
    expected = tree_bytes(root)

    out = tmp_path / "out"
    ok = _pvc(root, "restore", "1", "--to", str(out), "--no-link", "--json", soft=20, hard=4096)
    assert ok.returncode == 0, ok.stderr
    assert tree_bytes(out) == expected

    # the limit cannot be raised, and the large files fit: the store keeps fewer packs open for the rest (before,
    # the packs read filled what the large files left, and the small files' writer failed)
    tight = tmp_path / "tight"
    ok = _pvc(root, "restore", "1", "--to", str(tight), "--no-link", "--json", soft=56, hard=56)
    assert ok.returncode == 0, ok.stderr
    assert tree_bytes(tight) == expected

    refused = _pvc(root, "restore", "1", "--to", str(tmp_path / "no"), "--no-link", soft=20, hard=20)
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1
    assert f"{large} of them large" in refused.stderr and "ulimit -n" in refused.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "proj", "tight"]  # no target, no staging folder
