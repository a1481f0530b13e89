"""Reliability with real processes: concurrent writers and readers, SIGKILL mid-commit, the lock, damaged refs.

Every pvc command here runs as its own process (`python -m pvc`), as users and CI scripts run it, so the
repository lock, the atomic renames and the kernel's release of a dead holder's flock are exercised for real.
Projects are small and trial counts modest: the whole file is meant to run in well under a minute on 2 cores.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers import store_state
from storekit import restored_sha, sha_tree

from pvc.api import Project
from pvc.errors import CorruptObject
from pvc.sample import make_image_project, mutate_image_project
from pvc.store.refs import read_versions

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock and SIGKILL semantics are POSIX")

PVC = [sys.executable, "-m", "pvc"]
ENV = {k: v for k, v in os.environ.items() if k != "PVC_DEBUG"} | {"PVC_AUTHOR": "reliability@test"}


# -- helpers ---------------------------------------------------------------------------------------


def pvc(*args: object, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `python -m pvc ARGS` as a separate process and capture its output."""
    return subprocess.run([*PVC, *map(str, args)], check=False, capture_output=True, text=True, encoding="utf-8",
                          timeout=timeout, env=ENV, stdin=subprocess.DEVNULL)


def new_project(tmp_path: Path, *, items: int, seed: int) -> Path:
    proj = make_image_project(tmp_path / "proj", items=items, datasets=2, seed=seed)
    Project.init(proj).close()  # in-process: `init` is not under test here, and each process start costs ~0.3 s
    return proj


def commit(proj: Path, *args: object) -> dict:
    r = pvc("commit", "--json", "-C", proj, *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def log(proj: Path) -> list[dict]:
    r = pvc("log", "--json", "-C", proj)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected a one-line error, got:\n{stderr}"
    return lines[0]


# -- 1. concurrent writers and a reader -------------------------------------------------------------

WRITERS, ROUNDS = 3, 3


def _extra_content(p: int, k: int) -> bytes:
    return f"written by process {p} in round {k}\n".encode() * (k + 1)


def test_concurrent_commits_get_gapless_numbers_and_readers_see_whole_versions(tmp_path):
    proj = new_project(tmp_path, items=40, seed=7)
    (proj / "extras").mkdir()
    base = sha_tree(proj)
    staging, reads_dir, final_dir = tmp_path / "staging", tmp_path / "reads", tmp_path / "final"
    for d in (staging, reads_dir, final_dir):
        d.mkdir()
    results: dict[tuple[int, int], subprocess.CompletedProcess] = {}
    writers_done = threading.Event()

    def writer(p: int) -> None:
        jitter = random.Random(p)
        for k in range(ROUNDS):
            time.sleep(jitter.uniform(0, 0.2))  # so the writers interleave differently from round to round
            # Put the file in place atomically: a commit of another writer may be scanning right now, and a
            # file that grows between its stat and its read is (rightly) refused as "changed while being read".
            name = f"p{p}_{k}.txt"
            (staging / name).write_bytes(_extra_content(p, k))
            os.replace(staging / name, proj / "extras" / name)
            results[p, k] = pvc("commit", "--json", "-m", f"writer {p} round {k}", "-C", proj)

    def reader() -> list[tuple[subprocess.CompletedProcess, subprocess.CompletedProcess, Path, bool]]:
        reads = []
        while not writers_done.is_set() or len(reads) < 2:
            during = not writers_done.is_set()
            seen = pvc("log", "--json", "-C", proj)
            dest = reads_dir / f"r{len(reads)}"
            got = pvc("restore", "latest", "--to", dest, "--json", "-C", proj)
            reads.append((seen, got, dest, during))
        return reads

    with ThreadPoolExecutor(WRITERS + 1) as pool:
        reading = pool.submit(reader)
        writing = [pool.submit(writer, p) for p in range(WRITERS)]
        try:
            for f in writing:
                f.result()
        finally:
            writers_done.set()
        reads = reading.result()

    # Every writer succeeded, and the versions are exactly 1..N, each created by exactly one commit.
    for key, r in sorted(results.items()):
        assert r.returncode == 0, f"writer {key}: exit {r.returncode}: {r.stderr}"
    docs = {key: json.loads(r.stdout) for key, r in results.items()}
    versions = log(proj)
    n = len(versions)
    assert [v["number"] for v in versions] == list(range(n, 0, -1))
    assert [v["parent"] for v in reversed(versions)] == [None, *range(1, n)]
    created = [d["version"] for d in docs.values() if d["created"]]
    assert len(created) == len(set(created)), f"two commits claim the same new version: {sorted(created)}"
    assert sorted(created) == list(range(1, n + 1))
    manifests = {v["number"]: v["manifest"] for v in versions}
    for key, d in docs.items():
        assert 1 <= d["version"] <= n and d["manifest"] == manifests[d["version"]], key

    # Every version restores (objects re-hashed); its content is the base project plus a growing set of extras.
    def restore_one(number: int) -> subprocess.CompletedProcess:
        return pvc("restore", number, "--to", final_dir / f"v{number}", "--verify", "--json", "-C", proj)

    with ThreadPoolExecutor(2) as pool:
        runs = dict(zip(range(1, n + 1), pool.map(restore_one, range(1, n + 1))))
    trees = {}
    for number, r in runs.items():
        assert r.returncode == 0, f"restore {number}: {r.stderr}"
        trees[number] = sha_tree(final_dir / f"v{number}")
    expected = {f"extras/p{p}_{k}.txt": hashlib.sha256(_extra_content(p, k)).hexdigest()
                for p in range(WRITERS) for k in range(ROUNDS)}
    extras_of = {}
    for number, tree in trees.items():
        assert {p: h for p, h in tree.items() if not p.startswith("extras/")} == base, f"v{number}"
        extras = {p: h for p, h in tree.items() if p.startswith("extras/")}
        assert all(expected.get(p) == h for p, h in extras.items()), f"v{number} has a torn or unknown extra"
        extras_of[number] = set(extras)
    for number in range(1, n):
        assert extras_of[number] < extras_of[number + 1], f"v{number + 1} should only add to v{number}"
    assert extras_of[n] == set(expected)
    for (p, k), d in docs.items():
        assert f"extras/p{p}_{k}.txt" in extras_of[d["version"]], f"commit of writer {p} round {k} missed its file"

    # The reader never failed, never went back in time, and each restore it made is exactly one version.
    newest_seen = 0
    for i, (seen, got, dest, _) in enumerate(reads):
        assert seen.returncode == 0, f"read {i}: log: {seen.stderr}"
        numbers = [v["number"] for v in json.loads(seen.stdout)]
        assert numbers == list(range(len(numbers), 0, -1)), f"read {i}: log is not gapless: {numbers}"
        assert len(numbers) >= newest_seen, f"read {i}: log went back from v{newest_seen} to v{len(numbers)}"
        newest_seen = len(numbers)
        if got.returncode == 0:
            number = json.loads(got.stdout)["version"]
            assert number >= newest_seen
            newest_seen = number
            assert (dest / "meta.json").is_file()
            assert sha_tree(dest) == trees[number], f"read {i}: restore of v{number} differs from v{number}"
        else:
            assert got.returncode == 1 and newest_seen == 0, f"read {i}: restore exit {got.returncode}: {got.stderr}"
            assert "no versions yet" in one_line(got.stderr)
            assert json.loads(got.stdout)["error"]["type"] == "VersionNotFound"
            assert not dest.exists()
    print(f"{n} versions from {len(docs)} commits; {sum(d for *_, d in reads)} of {len(reads)} reads while writing")
    assert sorted(p.name for p in reads_dir.iterdir()) == sorted(d.name for _, g, d, _ in reads if g.returncode == 0), \
        "a restore left its staging directory behind"
    assert not any((proj / ".pvc" / "tmp").iterdir())


# -- 2. SIGKILL during commit ----------------------------------------------------------------------

KILL_TRIALS = 4
BIG = 12 << 20  # above the 8 MiB chunk threshold: the killed commit is chunking, hashing and packing it


def _start_commit(proj: Path, title: str) -> subprocess.Popen:
    return subprocess.Popen([*PVC, "commit", "--json", "-m", title, "-C", str(proj)], env=ENV,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for_lock(proj: Path, proc: subprocess.Popen) -> bool:
    """Wait until `proc` holds the repository lock (the holder writes its pid into `.pvc/lock`)."""
    lock = proj / ".pvc" / "lock"
    while proc.poll() is None:
        try:
            if json.loads(lock.read_bytes() or b"{}").get("pid") == proc.pid:
                return True
        except ValueError:  # caught between the holder's truncate and write
            pass
        time.sleep(0.001)
    return False


def test_sigkill_during_commit_never_damages_earlier_versions(tmp_path):
    proj = new_project(tmp_path, items=40, seed=5)
    tmp_dir = proj / ".pvc" / "tmp"
    rng = random.Random(2024)
    trees: dict[int, dict[str, str]] = {}
    assert commit(proj, "-m", "one")["version"] == 1
    trees[1] = sha_tree(proj)
    mutate_image_project(proj, seed=21)
    assert commit(proj, "-m", "two")["version"] == 2
    trees[2] = sha_tree(proj)

    # How long a commit like the killed ones takes, and how much of it runs under the lock (the writing part).
    mutate_image_project(proj, seed=22)
    (proj / "big.bin").write_bytes(rng.randbytes(BIG))
    start = time.monotonic()
    proc = _start_commit(proj, "three")
    assert _wait_for_lock(proj, proc)
    locked_at = time.monotonic()
    out, err = proc.communicate(timeout=60)
    duration, locked = time.monotonic() - start, time.monotonic() - locked_at
    assert proc.returncode == 0 and json.loads(out)["version"] == 3, err
    trees[3] = sha_tree(proj)

    killed_alive = killed_locked = mid_write = 0
    for trial in range(KILL_TRIALS):
        mutate_image_project(proj, seed=100 + trial)
        (proj / "big.bin").write_bytes(rng.randbytes(BIG))
        current = sha_tree(proj)
        proc = _start_commit(proj, f"killed {trial}")
        if trial % 2 == 0:  # anywhere in the commit's lifetime, start-up included
            time.sleep(rng.uniform(0, duration))
        elif _wait_for_lock(proj, proc):  # while it holds the lock: scanning, hashing, packing, publishing
            time.sleep(rng.uniform(0, locked))
        os.kill(proc.pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode in (0, -signal.SIGKILL), f"trial {trial}: exit {proc.returncode}: {err.decode()}"
        killed_alive += proc.returncode == -signal.SIGKILL
        killed_locked += proc.returncode == -signal.SIGKILL and trial % 2 == 1
        mid_write += any(tmp_dir.iterdir())

        # The refs still parse and are gapless: the killed commit either is not there, or is there whole.
        numbers = [v["number"] for v in reversed(log(proj))]
        assert numbers == list(range(1, len(numbers) + 1))
        assert len(numbers) in (len(trees), len(trees) + 1), f"trial {trial}: {numbers}"
        if len(numbers) == len(trees) + 1:  # killed after its refs write: it must be the working tree
            trees[len(numbers)] = current

        # Every earlier version is intact, byte for byte.
        for number, tree in trees.items():
            assert restored_sha(proj, number, tmp_path / "check") == tree, f"trial {trial}: v{number} changed"

        # The lock was released by the kernel and the next commit works (a held lock would time out in 2 s).
        doc = commit(proj, "--lock-timeout", "2", "-m", f"after kill {trial}")
        if doc["created"]:
            assert doc["version"] == len(trees) + 1
            trees[doc["version"]] = current
        else:
            assert doc["version"] == len(trees) and trees[doc["version"]] == current
        assert not any(tmp_dir.iterdir()), f"trial {trial}: leftovers in .pvc/tmp: {sorted(os.listdir(tmp_dir))}"
        assert restored_sha(proj, doc["version"], tmp_path / "check") == current

    print(f"commit {duration:.2f} s ({locked:.2f} s under the lock): {killed_alive}/{KILL_TRIALS} killed alive, "
          f"{killed_locked} while holding the lock, {mid_write} with a pack being written")
    assert killed_alive >= 1, "every commit finished before its kill: the trials tested nothing"
    assert [v["number"] for v in reversed(log(proj))] == sorted(trees)


# Each rename that publishes part of a commit, in write order: packs, pack index, refs backup, refs, stat cache.
CRASH_POINTS = ("*.pack", "*.idx", "versions.bak", "versions", "index")

# Runs `pvc ARGS` with os.replace wrapped: just before the rename onto a file named like argv[1] (the data is
# already written and fsynced under its temp name), it says "paused" and waits to be killed.
PAUSING_PVC = """
import fnmatch, os, sys, time
real_replace = os.replace
def replace(src, dst, *args, **kwargs):
    if fnmatch.fnmatch(os.path.basename(os.fspath(dst)), sys.argv[1]):
        print("paused", flush=True)
        time.sleep(120)
    return real_replace(src, dst, *args, **kwargs)
os.replace = replace
from pvc.cli import main
sys.exit(main(sys.argv[2:]))
"""


# What a killed atomic write may leave behind (docs/format.md, "Layout"): pvc never reads these files.
ATOMIC_WRITE_LEFTOVER = re.compile(
    r"\.(versions|versions\.bak|index|config)\.[^/]+\.tmp|packs/\.[0-9a-f]{64}\.idx\.[^/]+\.tmp"
)


def test_sigkill_at_each_publishing_rename_keeps_the_store_consistent(tmp_path):
    proj = new_project(tmp_path, items=30, seed=6)
    pvc_dir = proj / ".pvc"
    assert commit(proj, "-m", "one")["version"] == 1
    trees = {1: sha_tree(proj)}
    for i, point in enumerate(CRASH_POINTS):
        mutate_image_project(proj, seed=60 + i)
        current = sha_tree(proj)
        proc = subprocess.Popen([sys.executable, "-c", PAUSING_PVC, point, "commit", "--json", "-C", str(proj)],
                                env=ENV, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert proc.stdout.readline() == b"paused\n", f"{point}: {proc.stderr.read().decode()}"
        finally:
            proc.kill()
            proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL

        # Only a kill after the refs rename (while saving the stat cache) leaves the new version behind.
        numbers = [r.number for r in read_versions(pvc_dir / "versions")]
        expected = len(trees) + 1 if point == "index" else len(trees)
        assert numbers == list(range(1, expected + 1)), f"killed before renaming {point}: log {numbers}"
        if point == "index":
            trees[expected] = current
        for number, tree in trees.items():
            assert restored_sha(proj, number, tmp_path / "check") == tree, f"{point}: v{number} changed"

        doc = commit(proj, "--lock-timeout", "2", "-m", f"after kill at {point}")
        assert doc["created"] == (point != "index") and doc["version"] == len(trees) + doc["created"]
        trees[doc["version"]] = current
        assert restored_sha(proj, doc["version"], tmp_path / "check") == current
        assert not any((pvc_dir / "tmp").iterdir())
    # Temp packs are swept from tmp/ by the next commit; a killed atomic write's temp file stays (documented).
    stray = sorted(p.relative_to(pvc_dir).as_posix() for p in pvc_dir.rglob("*.tmp"))
    assert all(ATOMIC_WRITE_LEFTOVER.fullmatch(name) for name in stray), stray
    print(f"left in .pvc/ by the kills: {stray}")


# -- 3. the lock -------------------------------------------------------------------------------------

HOLDER = """
import sys, time
from pathlib import Path
from pvc.store.repository import Repository
with Repository(Path(sys.argv[1])).lock():
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _hold_lock(proj: Path, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(proj), str(seconds)], env=ENV,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_locked_commit_exits_3_naming_the_holder_and_a_killed_holder_frees_the_lock(tmp_path):
    proj = new_project(tmp_path, items=30, seed=9)
    assert commit(proj, "-m", "one")["version"] == 1
    mutate_image_project(proj, seed=3)
    holder = _hold_lock(proj, 30)
    try:
        before = store_state(proj)
        start = time.monotonic()
        r = pvc("commit", "--lock-timeout", "1", "--json", "-m", "blocked", "-C", proj)
        waited = time.monotonic() - start
        assert r.returncode == 3, r.stderr
        assert 1.0 <= waited < 8.0, f"gave up after {waited:.2f} s with --lock-timeout 1"
        line = one_line(r.stderr)
        assert f"pid {holder.pid}" in line and "lock" in line
        error = json.loads(r.stdout)["error"]
        assert error["type"] == "Locked" and error["exit_code"] == 3 and f"pid {holder.pid}" in error["message"]
        assert store_state(proj) == before, "a commit that did not get the lock changed the store"

        # Readers do not take the lock.
        start = time.monotonic()
        assert [v["number"] for v in log(proj)] == [1]
        r = pvc("restore", "1", "--to", tmp_path / "while-locked", "-C", proj)
        assert r.returncode == 0, r.stderr
        assert time.monotonic() - start < 10
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    assert holder.returncode == -signal.SIGKILL

    # The kernel released the flock with the dead holder: a commit that may not wait at all gets it.
    start = time.monotonic()
    doc = commit(proj, "--lock-timeout", "0", "-m", "after holder died")
    assert doc["created"] and doc["version"] == 2
    assert time.monotonic() - start < 10
    assert restored_sha(proj, 2, tmp_path / "v2") == sha_tree(proj)


def test_waiting_commit_proceeds_when_the_holder_finishes(tmp_path):
    proj = new_project(tmp_path, items=30, seed=10)
    holder = _hold_lock(proj, 1.5)
    try:
        start = time.monotonic()
        doc = commit(proj, "--lock-timeout", "20", "-m", "waited")
        waited = time.monotonic() - start
    finally:
        holder.wait(timeout=30)
        holder.stdout.close()
    assert holder.returncode == 0
    assert doc["created"] and doc["version"] == 1
    assert 1.0 <= waited < 10, f"waited {waited:.2f} s for a holder that slept 1.5 s"


# -- 4. damaged refs ---------------------------------------------------------------------------------


def _flip(data: bytes, pos: int, mask: int = 0x01) -> bytes:
    return data[:pos] + bytes([data[pos] ^ mask]) + data[pos + 1 :]


def test_every_single_byte_flip_in_refs_is_detected(tmp_path):
    proj = new_project(tmp_path, items=30, seed=12)
    commit(proj, "-m", "one", "--description", "first")
    mutate_image_project(proj, seed=4)
    commit(proj, "-m", "twö", "--description", "second")
    good = (proj / ".pvc" / "versions").read_bytes()
    scratch = tmp_path / "scratch" / "versions"
    scratch.parent.mkdir()
    assert [r.number for r in read_versions(proj / ".pvc" / "versions")] == [1, 2]
    for pos in range(len(good)):
        for mask in (0x01, 0x20):  # a low bit, and ASCII case; 0x80 would only ever make invalid UTF-8
            scratch.write_bytes(_flip(good, pos, mask))
            with pytest.raises(CorruptObject, match=r"versions\.bak"):
                read_versions(scratch)


def test_damaged_refs_are_refused_untouched_and_recoverable_from_bak(tmp_path):
    proj = new_project(tmp_path, items=30, seed=13)
    refs, bak = proj / ".pvc" / "versions", proj / ".pvc" / "versions.bak"
    trees = []
    for i in range(3):
        if i:
            mutate_image_project(proj, seed=40 + i)
        assert commit(proj, "-m", f"v{i + 1}")["version"] == i + 1
        trees.append(sha_tree(proj))
    before_last = log(proj)[1:]
    good, good_bak = refs.read_bytes(), bak.read_bytes()

    text = good.decode()
    positions = [text.index('"checksum"') + 20, text.index('"title"') + 10]
    for pos, json_out in zip(positions, (False, True)):
        refs.write_bytes(_flip(good, pos))
        r = pvc("log", "-C", proj, *(["--json"] if json_out else []))
        assert r.returncode == 2, f"flip at {pos}: exit {r.returncode}: {r.stdout}{r.stderr}"
        assert "versions.bak" in one_line(r.stderr) and "Traceback" not in r.stderr
        if json_out:
            error = json.loads(r.stdout)["error"]
            assert error["type"] == "CorruptObject" and error["exit_code"] == 2 and "versions.bak" in error["message"]
        else:
            assert r.stdout == ""

    # Writers and restores refuse too, and neither the damaged refs nor their backup is overwritten.
    damaged = refs.read_bytes()
    before = store_state(proj)
    mutate_image_project(proj, seed=99)
    r = pvc("commit", "--json", "-m", "on damaged refs", "-C", proj)
    assert r.returncode == 2, r.stderr
    assert json.loads(r.stdout)["error"]["type"] == "CorruptObject"
    assert refs.read_bytes() == damaged and bak.read_bytes() == good_bak
    assert store_state(proj) == before
    assert not any((proj / ".pvc" / "tmp").iterdir())
    r = pvc("restore", "latest", "--to", tmp_path / "nope", "-C", proj)
    assert r.returncode == 2 and "versions.bak" in one_line(r.stderr)
    assert not (tmp_path / "nope").exists()

    # The documented recovery: the backup holds every version written before the last commit.
    shutil.copyfile(bak, refs)
    assert log(proj) == before_last
    r = pvc("restore", "2", "--to", tmp_path / "v2", "--verify", "-C", proj)
    assert r.returncode == 0, r.stderr
    assert sha_tree(tmp_path / "v2") == trees[1]
