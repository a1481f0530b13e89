"""The reliability battery: processes killed at random instants, concurrent writers/readers/gc, random byte flips.

Each figure in docs/reliability.md comes from these tests. Trial counts are small by default (CI, 2 cores, a
couple of minutes for the whole file); `PVC_SOAK=1` (`make soak`) runs the long versions. Every test prints a
one-line summary (`pytest -s` shows it), which `make soak` collects.

Why the per-trial checks are sufficient: a version is named by its manifest id, and every object is named by
the hash of its content. So if, after a trial, every earlier version still has its manifest id and `verify`
(every record re-hashed, every reference resolved) is clean, every earlier version still restores byte for
byte. Each trial also restores one random earlier version and the newest for real, and every version is
restored at the end.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
from storekit import add_orphans, age_packs, files_of, flip, restored_sha, sha_tree

from pvc.api import Project
from pvc.core.gc import gc
from pvc.sample import make_image_project, mutate_image_project
from pvc.store.local.packs import parse_records
from pvc.store.refs import read_versions
from pvc.store.repository import Repository

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock and SIGKILL semantics are POSIX")

SOAK = os.environ.get("PVC_SOAK") == "1"
CRASH_TRIALS = 200 if SOAK else 30
WRITERS, COMMITS_EACH = 4, (25 if SOAK else 5)
FLIP_TRIALS = 500 if SOAK else 50
ENV = {k: v for k, v in os.environ.items() if k != "PVC_DEBUG"} | {"PVC_AUTHOR": "battery@test"}

# A process that imports pvc, says "ready", then runs one `pvc` command line read from stdin: the kill
# lands inside the command itself, not in interpreter start-up.
DRIVER = """
import json, os, sys, time
from pvc.cli import main
print("ready", flush=True)
args = json.loads(sys.stdin.readline())
start = time.monotonic()
code = main(args)
sys.stdout.write(f"\\ndone {time.monotonic() - start:.6f}\\n")
sys.stdout.flush()
os._exit(code)  # no interpreter teardown: the kill window is the command itself
"""


def summary(line: str) -> None:
    print(f"\nBATTERY {line}")


def new_project(tmp_path: Path, *, items: int, seed: int, chunk_threshold: int | None = None) -> Path:
    proj = make_image_project(tmp_path / "proj", items=items, datasets=2, seed=seed)
    Repository.init(proj)
    if chunk_threshold:  # small enough that the battery's "big" files are chunked
        config = proj / ".pvc" / "config"
        config.write_text(json.dumps(json.loads(config.read_text()) | {"chunk_threshold": chunk_threshold}))
    return proj


class WarmDriver:
    """Keeps one driver process started ahead, so its start-up overlaps the previous trial's checks."""

    def __init__(self) -> None:
        self._next = self._spawn()

    @staticmethod
    def _spawn() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-c", DRIVER], env=ENV, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def run(self, args: list[str]) -> subprocess.Popen:
        proc, self._next = self._next, self._spawn()
        assert proc.stdout.readline() == b"ready\n"
        proc.stdin.write(json.dumps(args).encode() + b"\n")
        proc.stdin.flush()
        return proc

    def close(self) -> None:
        self._next.kill()
        self._next.communicate()


def finish(proc: subprocess.Popen, kill_after: float | None) -> tuple[int, float]:
    """Kill `proc` after `kill_after` seconds (None: let it finish); its exit code and how long the command ran."""
    if kill_after is not None:
        time.sleep(kill_after)
        proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode in (0, -signal.SIGKILL), err.decode()
    done = [line for line in out.decode().splitlines() if line.startswith("done ")]
    return proc.returncode, float(done[-1].split()[1]) if done else 0.0


def manifests(proj: Path) -> list[str]:
    return [r.manifest for r in read_versions(proj / ".pvc" / "versions")]


def check_store(proj: Path, expected: list[str]):
    """Refs gapless and unchanged for every known version, verify clean (orphans allowed), lock free."""
    assert manifests(proj)[: len(expected)] == expected
    with Project(proj) as p:
        report = p.verify()
        assert report.ok, [x.to_json() for x in report.problems]
        assert not p.unlock().held
    return report


# -- 1. crash ---------------------------------------------------------------------------------------------


def _change(proj: Path, rng: random.Random, trial: int) -> None:
    mutate_image_project(proj, seed=1000 + trial)
    (proj / "big.bin").write_bytes(rng.randbytes(rng.randrange(1, 3 << 20)))


def wait_for_lock(proj: Path, proc: subprocess.Popen) -> bool:
    """Wait until `proc` holds the repository lock (the holder writes its pid into `.pvc/lock`)."""
    lock = proj / ".pvc" / "lock"
    while proc.poll() is None:
        try:
            if json.loads(lock.read_bytes() or b"{}").get("pid") == proc.pid:
                return True
        except (ValueError, OSError):  # between the holder's truncate and write
            pass
        time.sleep(0.0005)
    return False


class KillClock:
    """When to kill: at a random instant of the whole command, or (every other trial) of its part under the lock,
    where the writing happens. Both spans come from runs of the same command that were left to finish."""

    def __init__(self, rng: random.Random) -> None:
        self.rng, self.whole, self.locked = rng, [], []

    def calibrate(self, driver: WarmDriver, proj: Path, args: list[str]) -> None:
        proc = driver.run(args)
        start = time.monotonic()
        locked_at = time.monotonic() - start if wait_for_lock(proj, proc) else 0.0
        assert finish(proc, None)[0] == 0
        self.whole.append(time.monotonic() - start)
        self.locked.append(self.whole[-1] - locked_at)

    def run(self, driver: WarmDriver, proj: Path, args: list[str], trial: int) -> int:
        proc = driver.run(args)
        if trial % 2 and wait_for_lock(proj, proc):
            return finish(proc, self.rng.uniform(0, 1.1 * statistics.median(self.locked)))[0]
        return finish(proc, self.rng.uniform(0, 1.1 * statistics.median(self.whole)))[0]

    def describe(self) -> str:
        return f"s={statistics.median(self.whole):.2f} (locked {statistics.median(self.locked):.2f})"


def test_commit_killed_at_random_instants(tmp_path):
    proj = new_project(tmp_path, items=8, seed=3, chunk_threshold=1 << 20)
    rng = random.Random(66)
    driver, clock = WarmDriver(), KillClock(rng)
    trees: dict[int, dict[str, str]] = {}
    try:
        for i in range(3):  # calibration: commits like the killed ones, left to finish
            _change(proj, rng, -1 - i)
            clock.calibrate(driver, proj, ["commit", "-C", str(proj), "-m", f"base {i}"])
            trees[i + 1] = sha_tree(proj)
        phases = dict.fromkeys(("finished", "before_writing", "writing_packs", "published_not_named", "after_refs"), 0)
        for trial in range(CRASH_TRIALS):
            _change(proj, rng, trial)
            current = sha_tree(proj)
            known = manifests(proj)
            packs_before = _pack_count(proj)
            code = clock.run(driver, proj, ["commit", "-C", str(proj), "-m", f"trial {trial}"], trial)
            temp_packs = any((proj / ".pvc" / "tmp").iterdir())
            published = _pack_count(proj) > packs_before
            now = manifests(proj)
            assert len(now) in (len(known), len(known) + 1), f"trial {trial}: {len(known)} -> {len(now)} versions"
            if len(now) == len(known) + 1:  # the kill came after the refs write: that version is whole
                trees[len(now)] = current
            check_store(proj, known)
            phases[_commit_phase(code, temp_packs, published, len(now) > len(known))] += 1
            pick = rng.choice(sorted(trees))
            assert restored_sha(proj, pick, tmp_path / "check") == trees[pick], f"trial {trial}: v{pick}"
            with Project(proj) as p:  # the next commit takes the lock and succeeds
                result = p.version.create(title=f"after {trial}", lock_timeout=2)
            trees[result.number] = current
            assert not any((proj / ".pvc" / "tmp").iterdir())
            assert restored_sha(proj, result.number, tmp_path / "check") == current
    finally:
        driver.close()
    for number, tree in trees.items():
        assert restored_sha(proj, number, tmp_path / "final") == tree, f"v{number}"
    summary(f"crash/commit trials={CRASH_TRIALS} " + " ".join(f"{k}={v}" for k, v in phases.items())
            + f" commit_{clock.describe()} versions={len(trees)} failures=0")
    assert phases["finished"] <= 2 * CRASH_TRIALS // 3, "most commits finished before their kill: the trials tested little"


def _pack_count(proj: Path) -> int:
    return sum(1 for _ in (proj / ".pvc" / "packs").glob("*.pack"))


def _commit_phase(code: int, temp_packs: bool, published: bool, new_version: bool) -> str:
    """Where the kill landed, as the store shows it."""
    if code == 0:
        return "finished"
    if new_version:
        return "after_refs"
    if temp_packs:
        return "writing_packs"
    return "published_not_named" if published else "before_writing"


def test_gc_killed_at_random_instants(tmp_path):
    proj = new_project(tmp_path, items=8, seed=4, chunk_threshold=1 << 20)
    rng = random.Random(77)
    trees = {}
    with Project(proj) as p:
        for i in range(3):
            _change(proj, rng, 500 + i)
            trees[p.version.create(title=f"v{i}").number] = sha_tree(proj)
    driver, clock = WarmDriver(), KillClock(rng)
    phases = dict.fromkeys(("finished", "writing_packs", "unindexed_packs_left", "other_mid_run", "after_its_work"), 0)
    try:
        for trial in range(-3, CRASH_TRIALS):  # the first three calibrate: gc runs left to finish
            (proj / "live.bin").write_bytes(_garbage_with(proj, rng))  # a pack gc must rewrite, not just delete
            if trial % 5 == 4:
                _change(proj, rng, 600 + trial)
            with Project(proj) as p:
                trees[p.version.create(title=f"t{trial}").number] = sha_tree(proj)
            add_orphans(proj, count=rng.randrange(1, 6), size=rng.randrange(500, 100_000), seed=trial + 3)
            age_packs(proj)
            known = manifests(proj)
            args = ["gc", "--grace", "0", "-C", str(proj)]
            if trial < 0:
                clock.calibrate(driver, proj, args)
                continue
            code = clock.run(driver, proj, args, trial)
            temp_packs = any((proj / ".pvc" / "tmp").iterdir())
            report = check_store(proj, known)
            pick = rng.choice(sorted(trees))
            assert restored_sha(proj, pick, tmp_path / "check") == trees[pick], f"trial {trial}: v{pick}"
            repo = Repository(proj)
            result = gc(repo, grace=0, lock_timeout=2)  # the next gc completes what the killed one left
            repo.close()
            phases[_gc_phase(code, temp_packs, report.unindexed, result.packs_deleted + result.packs_rewritten)] += 1
            with Project(proj) as p:
                report = p.verify()
            assert report.ok and report.orphans == 0 and report.unindexed == 0, f"trial {trial}"
    finally:
        driver.close()
    for number, tree in trees.items():
        assert restored_sha(proj, number, tmp_path / "final") == tree, f"v{number}"
    summary(f"crash/gc trials={CRASH_TRIALS} " + " ".join(f"{k}={v}" for k, v in phases.items())
            + f" gc_{clock.describe()} versions={len(trees)} failures=0")
    assert phases["finished"] <= 2 * CRASH_TRIALS // 3


def _garbage_with(proj: Path, rng: random.Random) -> bytes:
    """Store garbage and, in the same pack, the content the project's `live.bin` is about to get."""
    live = rng.randbytes(rng.randrange(100_000, 400_000))
    repo = Repository(proj)
    with repo.lock(10):
        store = repo.reopen_store()
        for _ in range(rng.randrange(2, 10)):
            store.put(rng.randbytes(rng.randrange(500, 200_000)), compress=False)
        store.put(live, compress=False)
        store.flush()
    repo.close()
    return live


def _gc_phase(code: int, temp_packs: bool, unindexed: int, work_left: int) -> str:
    if code == 0:
        return "finished"
    if temp_packs:
        return "writing_packs"
    if unindexed:
        return "unindexed_packs_left"
    return "other_mid_run" if work_left else "after_its_work"


# -- 2. concurrency -------------------------------------------------------------------------------------

WRITER = """
import json, os, sys
from pathlib import Path
from pvc.api import Project
proj, p, rounds = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
staging = proj.parent / f"staging{p}"
staging.mkdir()
for k in range(rounds):
    name = f"p{p}_{k}.txt"
    (staging / name).write_text(f"process {p} round {k}\\n" * (k + 1))
    os.replace(staging / name, proj / "extras" / name)  # whole, so a concurrent scan never sees it half-written
    with Project(proj) as project:
        result = project.version.create(title=f"p{p} k{k}", lock_timeout=120)
    print(json.dumps({"p": p, "k": k} | result.to_json()), flush=True)
"""

READER = """
import hashlib, json, os, shutil, sys, time
from pathlib import Path
from pvc.api import Project
from pvc.errors import VersionNotFound
proj, out, stop = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
i = 0
while not stop.exists() or i < 3:
    with Project(proj) as project:
        numbers = [v.number for v in project.log()]
        dest = out / f"r{i}"
        try:
            result = project.version.restore(version_id=project.version.get("latest").manifest, dest=dest)
        except VersionNotFound:
            print(json.dumps({"log": numbers, "restored": None}), flush=True)
            i += 1
            time.sleep(0.02)
            continue
    files = {}
    for d, dirs, names in os.walk(dest):
        dirs[:] = [x for x in dirs if not (Path(d) == dest and x == ".pvc")]  # the restored project's own store
        for n in names:
            path = Path(d) / n
            files[path.relative_to(dest).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    shutil.rmtree(dest)
    print(json.dumps({"log": numbers, "restored": result.version, "files": files}), flush=True)
    i += 1
"""

COLLECTOR = """
import os, sys
from pathlib import Path
from pvc.core.gc import gc
from pvc.core.verify import verify
from pvc.store.repository import Repository
proj, stop = Path(sys.argv[1]), Path(sys.argv[2])
runs = 0
while not stop.exists():
    repo = Repository(proj)
    with repo.lock(120):  # garbage for gc to collect, so it really rewrites packs under the readers
        store = repo.reopen_store()
        for _ in range(4):
            store.put(os.urandom(20000), compress=False)
        store.flush()
    gc(repo, grace=0, lock_timeout=120)
    report = verify(repo, lock_timeout=120)  # while commits and gc go on: a consistent, clean picture
    assert report.ok, [p.to_json() for p in report.problems]
    repo.close()
    runs += 1
print(runs, flush=True)
"""


def _start(script: str, *args: object) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _lines(proc: subprocess.Popen, timeout: float = 600) -> list[str]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return out.splitlines()


def test_concurrent_writers_readers_and_gc(tmp_path):
    proj = new_project(tmp_path, items=10, seed=8)
    (proj / "extras").mkdir()
    stop = tmp_path / "stop"
    (tmp_path / "reads").mkdir()
    start = time.monotonic()
    readers = [_start(READER, proj, tmp_path / "reads", stop)]
    collector = _start(COLLECTOR, proj, stop)
    writers = [_start(WRITER, proj, p, COMMITS_EACH) for p in range(WRITERS)]
    try:
        commits = [json.loads(line) for w in writers for line in _lines(w)]
    finally:
        stop.touch()
    reads = [json.loads(line) for r in readers for line in _lines(r)]
    gc_runs = int(_lines(collector)[0])
    elapsed = time.monotonic() - start

    versions = read_versions(proj / ".pvc" / "versions")
    n = len(versions)
    assert [v.number for v in versions] == list(range(1, n + 1))
    assert [v.parent for v in versions] == [None, *range(1, n)]
    created = sorted(c["version"] for c in commits if c["created"])
    assert created == list(range(1, n + 1)), "each version is created by exactly one commit, none is lost"
    trees = {v.number: restored_sha(proj, v.number, tmp_path / "v") for v in versions}
    for c in commits:  # every commit's own file is in the version it reports
        assert f"extras/p{c['p']}_{c['k']}.txt" in trees[c["version"]]
    extras = [{p for p in trees[v] if p.startswith("extras/")} for v in range(1, n + 1)]
    assert all(a < b for a, b in itertools.pairwise(extras)), "a later version lost a file"
    assert len(extras[-1]) == WRITERS * COMMITS_EACH
    newest = 0
    for read in reads:  # readers never go back in time and only ever see whole versions
        assert read["log"] == list(range(len(read["log"]), 0, -1)) and len(read["log"]) >= newest
        newest = len(read["log"])
        if read["restored"] is not None:
            assert read["files"] == trees[read["restored"]], f"a reader saw a torn v{read['restored']}"
    with Project(proj) as p:
        assert p.verify().ok
    restores = sum(1 for r in reads if r["restored"] is not None)
    assert restores >= 3
    summary(f"concurrency writers={WRITERS} commits_each={COMMITS_EACH} versions={n} reads={len(reads)} "
            f"restores={restores} gc_and_verify_runs={gc_runs} seconds={elapsed:.1f} failures=0")


# -- 3. corruption --------------------------------------------------------------------------------------

STRUCTURAL = {"manifest", "tree", "page"}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """Three versions (one with a chunked file), their files per item and their bytes, built once."""
    root = tmp_path_factory.mktemp("pristine")
    proj = new_project(root, items=10, seed=21, chunk_threshold=512 << 10)
    rng = random.Random(5)
    with Project(proj) as p:
        p.version.create(title="one")
        mutate_image_project(proj, seed=2)
        (proj / "big.bin").write_bytes(rng.randbytes(1_500_000))
        p.version.create(title="two")
        mutate_image_project(proj, seed=3)
        big = bytearray((proj / "big.bin").read_bytes())
        big[700_000:700_010] = b"x" * 10
        (proj / "big.bin").write_bytes(bytes(big))
        p.version.create(title="three")
    plans = {n: files_of(proj, n) for n in (1, 2, 3)}
    trees = {n: restored_sha(proj, n, root / "check") for n in (1, 2, 3)}
    return proj, plans, trees


def _damage(store: Path, rng: random.Random) -> tuple[str, Path, int]:
    kind = rng.choice(["pack", "index", "refs"])
    if kind == "refs":
        target = store / rng.choice(["versions", "versions.bak"])
    else:
        target = rng.choice(sorted((store / "packs").glob("*.pack" if kind == "pack" else "*.idx")))
    pos = rng.randrange(target.stat().st_size)
    flip(target, pos, rng.randrange(1, 256))
    return kind, target, pos


def _hit_object(pack: Path, pos: int) -> bytes | None:
    """The object whose record (header or bytes) holds byte `pos` of an undamaged pack."""
    data = pack.read_bytes()
    records, _ = parse_records(data, len(data))
    return next((r.oid for r in records if r.start <= pos < r.end), None)


def test_random_byte_flips_are_detected_and_restores_skip_exactly_the_affected(pristine, tmp_path, cli):
    source, plans, trees = pristine
    rng = random.Random(1234)
    seen = {"pack": 0, "index": 0, "refs": 0}
    detected = structural = skipped_items = benign = 0
    for trial in range(FLIP_TRIALS):
        proj = tmp_path / f"t{trial}"
        shutil.copytree(source / ".pvc", proj / ".pvc")
        hit = None
        kind, target, pos = _damage(proj / ".pvc", rng)
        if kind == "pack":
            hit = _hit_object(source / ".pvc" / "packs" / target.name, pos)
        seen[kind] += 1
        with Project(proj) as p:
            report = p.verify()
        if kind == "refs" and _same_json(source / ".pvc" / target.name, target):
            # whitespace turned into other JSON whitespace (a space into a tab or a line break): the refs say exactly
            # what they said, which is what their checksum guards; verify accepts them and every version reads as before
            assert report.ok, f"trial {trial}: {target.name} reads as before, yet verify objects"
            with Project(proj) as p:
                assert [v.number for v in p.log()] == [3, 2, 1]
            benign += 1
            shutil.rmtree(proj)
            continue
        assert not report.ok, f"trial {trial}: a flip at {target.name}:{pos} went unnoticed"
        detected += 1
        problems = [x.to_json() for x in report.problems]
        if hit is not None:
            assert hit.hex() in json.dumps(problems), f"trial {trial}: the damaged object is not named"
        if target.name == "versions":
            assert problems[0]["subject"] == "refs versions"
            r = cli("log", "-C", proj)
            assert r.code == 2 and "versions.bak" in r.err and r.err.count("\n") == 1
            assert cli("repair", "refs", "-C", proj).code == 0
            with Project(proj) as p:
                assert [v.number for v in p.log()] == [2, 1]
            assert cli("verify", "-C", proj).code == 0
        elif target.name == "versions.bak":
            assert [x["subject"] for x in problems] == ["refs versions.bak"]
        elif kind == "index":
            r = cli("restore", "1", "--to", tmp_path / "x", "-C", proj)
            assert r.code == 2 and "pvc repair index" in r.err and not (tmp_path / "x").exists()
            assert cli("repair", "index", "-C", proj).code == 0
            assert cli("verify", "-C", proj).code == 0
        else:
            structural += _check_restores(cli, proj, problems, plans, trees, tmp_path, trial)
            skipped_items += sum(len(a) for a in [x["affects"] for x in problems])
        shutil.rmtree(proj)
    summary(f"corruption trials={FLIP_TRIALS} detected={detected} (packs={seen['pack']} indexes={seen['index']} "
            f"refs={seen['refs']}) refs_whitespace_only={benign} structural={structural} "
            f"affected_entries={skipped_items} failures=0")


def _same_json(original: Path, damaged: Path) -> bool:
    """Whether the damaged file still parses as the same JSON document as the original."""
    try:
        return json.loads(damaged.read_bytes()) == json.loads(original.read_bytes())
    except ValueError:
        return False


def _check_restores(cli, proj: Path, problems: list[dict], plans, trees, tmp_path: Path, trial: int) -> int:
    """For each version: refused if its structure is damaged, else --skip-missing skips exactly what verify named."""
    refused = 0
    for number, plan in plans.items():
        label = f"v{number}"
        affects = [a for x in problems for a in x["affects"] if a["version"] == label]
        kinds = {x["kind"] for x in problems if any(a["version"] == label for a in x["affects"])}
        dest = tmp_path / f"t{trial}-{label}"
        if kinds & STRUCTURAL:
            r = cli("restore", number, "--to", dest, "--verify", "--skip-missing", "-C", proj)
            assert r.code == 2 and not dest.exists(), f"trial {trial}: {label} restored over damaged structure"
            refused += 1
            continue
        items = {(a["dataset"], a["item"]) for a in affects if a["item"]}
        paths = {a["path"] for a in affects if not a["item"]}
        if affects:
            r = cli("restore", number, "--to", dest, "--verify", "-C", proj)
            assert r.code == 2 and not dest.exists()
        r = cli("restore", number, "--to", dest, "--verify", "--skip-missing", "--json", "-C", proj)
        assert r.code == 0, r.err
        skipped = r.json()["skipped"]
        assert {(s["dataset"], s["item"]) for s in skipped if s["item"]} == items, f"trial {trial}: {label}"
        assert {s["path"] for s in skipped if not s["item"]} == paths, f"trial {trial}: {label}"
        expected = {e.path: trees[number][e.path] for e in plan
                    if (e.dataset, e.item) not in items and e.path not in paths}
        assert sha_tree(dest) == expected, f"trial {trial}: {label} is not exactly the rest"
        shutil.rmtree(dest)
    return refused
