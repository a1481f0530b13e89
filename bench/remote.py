"""The remote scenario: pvc push / pull / clone / restore against a real S3-protocol server on loopback (moto's
ThreadedMotoServer, started here), with restic (its s3: backend) and DVC (an S3 remote with `endpointurl`) on the same
server in the same run.

Push v1, the push of the change and the clone are timed with the tools' runs alternated (scenarios._side_by_side).
Every repetition pushes to a fresh prefix. The upload floor (bench/uploadfloor.py) PUTs v1's packs as they are, as
many at once as a push: the time the server itself takes for the bytes a push of v1 sends. The push of the 1% change starts from a remote that holds v1 (pushed
untimed), as does restic's backup of the changed tree (its repository got v1 untimed first).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from itertools import count
from pathlib import Path

from bench.bench import UPLOADFLOOR, Bench
from bench.data import copy_tree, image_project, jpeg_project, listing, remove
from bench.proc import run_checked
from bench.scenarios import Together, _side_by_side

__all__ = ["remote", "remote_jpeg"]

BUCKET = "bench"  # each tool its own bucket, BUCKET-<tool>: a listing of one (moto scans a bucket's keys) does not
# grow with the others' keys (DVC's push makes one key per file)
_KEY, _SECRET, _REGION = "bench", "bench-secret", "us-east-1"  # moto's, on loopback


def remote(b: Bench) -> None:
    """The pvc.sample profile through the remote."""
    _remote(b, "remote", image_project)


def remote_jpeg(b: Bench) -> None:
    """The second profile (JPEG-only items, annotations only, flat datasets) through the remote."""
    _remote(b, "remote_jpeg", lambda root, items, datasets, seed: jpeg_project(root, items, datasets, seed, b.cfg.tiny))


def _remote(b: Bench, s: str, make: Callable[[Path, int, int, int], Path]) -> None:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request in the log (DVC's push makes 40k)
    w = b.work / s
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    env = b.env | {"AWS_ACCESS_KEY_ID": _KEY, "AWS_SECRET_ACCESS_KEY": _SECRET, "AWS_REGION": _REGION,
                   "AWS_DEFAULT_REGION": _REGION, "AWS_METADATA_ENDPOINT": "http://127.0.0.1:9"}
    try:
        s3 = _s3(endpoint)
        for tool in ("pvc", "floor", "restic", "dvc"):
            s3.create_bucket(Bucket=f"{BUCKET}-{tool}")
        proj = make(w / "pvc", b.cfg.items, b.cfg.datasets, b.cfg.seed)
        expected_v1 = listing(proj)
        b.fact(s, items=b.cfg.items, files_v1=len(expected_v1), bytes_v1=sum(expected_v1.values()), endpoint=endpoint)
        v1_tree = copy_tree(proj, w / "v1-tree")  # restic and DVC back up the same v1, then the same v2
        flows = [_pvc(b, s, w, proj, env, endpoint, expected_v1), _floor(b, s, proj, env, endpoint)]
        if b.restic:
            flows.append(_restic(b, s, w, v1_tree, env, endpoint, expected_v1))
        if b.dvc:
            flows.append(_dvc(b, s, w, v1_tree, env, endpoint, expected_v1))
        _side_by_side(b, s, flows)  # push v1, push of the change and clone + restore: the tools' runs alternated
    finally:
        server.stop()
        remove(w)


def _pvc(b: Bench, s: str, w: Path, proj: Path, env: dict, endpoint: str, expected_v1: dict) -> Iterator[Together | None]:
    pvc = b.pvc
    run_checked([*pvc, "init", "--json"], cwd=proj, env=env)
    run_checked([*pvc, "commit", "-m", "v1", "--json"], cwd=proj, env=env)
    refs = proj / ".pvc" / "versions"
    refs_v1 = refs.read_bytes()
    prefixes = count()
    current: dict[str, str] = {}

    def fresh_remote(_: int = 0) -> None:
        """A new, empty prefix as `origin` (and nothing cached of any earlier one)."""
        url = f"s3://{BUCKET}-pvc/{s}/pvc-{next(prefixes)}"
        run_checked(["sh", "-c", f'{" ".join(pvc)} remote remove origin >/dev/null 2>&1; true'], cwd=proj, env=env)
        run_checked([*pvc, "remote", "add", "origin", url, "--endpoint", endpoint], cwd=proj, env=env)
        current["url"] = url

    def sent(key: str) -> Callable[[int, bytes], None]:
        def record(i: int, out: bytes) -> None:
            doc = json.loads(out)
            if not doc["pushed"]:
                raise RuntimeError("the push sent no version")
            if i == 0:
                b.fact(s, **{f"{key}_bytes_sent": doc["bytes_sent"], f"{key}_requests": doc["requests"],
                             f"{key}_packs": doc["packs_sent"]})
        return record

    yield ("push_v1", "pvc", [*pvc, "push", "--json"], {"cwd": proj, "env": env, "setup": fresh_remote,
                                                       "after": sent("push_v1")})
    again = json.loads(run_checked([*pvc, "push", "--json"], cwd=proj, env=env))
    b.fact(s, second_push_bytes_sent=again["bytes_sent"], second_push_requests=again["requests"])
    b.measure(s, "push_nothing", "pvc", [*pvc, "push", "--json"], cwd=proj, env=env)
    b.mutate(s, proj)
    run_checked([*pvc, "commit", "-m", "v2", "--json"], cwd=proj, env=env)
    refs_v2 = refs.read_bytes()

    def remote_with_v1(_: int) -> None:
        fresh_remote()
        refs.write_bytes(refs_v1)
        run_checked([*pvc, "push", "--json"], cwd=proj, env=env)
        refs.write_bytes(refs_v2)

    yield ("push_change", "pvc", [*pvc, "push", "--json"], {"cwd": proj, "env": env, "setup": remote_with_v1,
                                                           "after": sent("push_change")})
    url = current["url"]  # holds v1 and v2
    out = b.out("remote-clone")

    def received(key: str, expected: dict | None) -> Callable[[int, bytes], None]:
        def check(i: int, stdout: bytes) -> None:
            doc = json.loads(stdout)
            if i == 0:
                if expected is not None:
                    Bench.check_tree(out, expected, frozenset({".pvc"}))
                b.fact(s, **{f"{key}_bytes_received": doc.get("bytes_received"), f"{key}_requests": doc.get("requests")})
        return check

    clone = [*pvc, "clone", url, out, "--version", "1", "--endpoint", endpoint, "--json"]
    yield ("clone_restore", "pvc", clone, {"cwd": w, "env": env, "setup": lambda i: b.clear(out),
                                           "after": received("clone", expected_v1)})
    first = sorted(p.name for p in proj.iterdir() if (p / "img").is_dir() or (p / "ann").is_dir())[0]
    b.measure(s, "clone_one_dataset", "pvc", [*clone, "--dataset", first], cwd=w, env=env, setup=lambda i: b.clear(out),
              after=received("clone_dataset", None))
    b.fact(s, dataset_cloned=first)
    b.measure(s, "restore_remote", "pvc", [*pvc, "restore", "1", "--to", out, "--remote", url, "--endpoint", endpoint,
                                           "--json"], cwd=w, env=env, setup=lambda i: b.clear(out))
    Bench.check_tree(out, expected_v1)
    remove(out)


def _floor(b: Bench, s: str, proj: Path, env: dict, endpoint: str) -> Iterator[Together | None]:
    """The server's floor for push v1: v1's packs (committed by the pvc flow before its first step) PUT as they are,
    create-only, as many at once as a push (bench/uploadfloor.py; a new prefix each run), alternated with the pushes.
    Then deleted, untimed: the server holds what it held without the floor when the clones are timed."""
    yield ("push_v1", "upload floor", [b.python, UPLOADFLOOR, proj / ".pvc" / "packs", endpoint, f"{BUCKET}-floor",
                                       f"{s}/floor"], {"env": env})
    _s3(endpoint).Bucket(f"{BUCKET}-floor").objects.all().delete()


def _s3(endpoint: str):
    """boto3's S3 resource on the loopback server, with the credentials the tools get."""
    import boto3

    return boto3.resource("s3", endpoint_url=endpoint, region_name=_REGION, aws_access_key_id=_KEY,
                          aws_secret_access_key=_SECRET)


def _restic(b: Bench, s: str, w: Path, v1_tree: Path, env: dict, endpoint: str, expected_v1: dict
            ) -> Iterator[Together | None]:
    """restic on the same server: backups of the same tree at one path (so the second backup has a parent
    snapshot, as it would in use), the 1% change applied to it by the same deterministic mutation."""
    repos = count()
    state: dict[str, str] = {}
    renv = dict(env)
    src = w / "restic-src"

    def fresh_repo(_: int = 0) -> None:
        state["repo"] = f"s3:{endpoint}/{BUCKET}-restic/{s}/restic-{next(repos)}"
        renv.update({"RESTIC_REPOSITORY": state["repo"], "RESTIC_PASSWORD": "bench",
                     "RESTIC_CACHE_DIR": str(w / "restic-cache")})
        remove(w / "restic-cache")
        run_checked([b.restic, "init", "-q"], env=renv)
        remove(src)
        copy_tree(v1_tree, src)

    def remember(key: str) -> Callable[[int, bytes], None]:
        def record(i: int, out: bytes) -> None:
            summary = _summary(out)
            state[f"{key}_snapshot"] = summary["snapshot_id"]
            if i == 0:
                b.fact(s, **{f"restic_{key}_data_added": summary.get("data_added")})
        return record

    backup = [b.restic, "backup", "--json", "-q", "."]
    yield ("push_v1", "restic", backup, {"cwd": src, "env": renv, "setup": fresh_repo, "after": remember("v1")})

    def repo_with_v1(_: int) -> None:
        fresh_repo()
        state["v1_snapshot"] = _summary(run_checked(backup, cwd=src, env=renv))["snapshot_id"]
        b.mutate(s, src)

    yield ("push_change", "restic", backup, {"cwd": src, "env": renv, "setup": repo_with_v1, "after": remember("v2")})
    out = b.out("remote-restic")
    yield ("clone_restore", "restic", [b.restic, "restore", state["v1_snapshot"], "--target", out],
           {"env": renv, "setup": lambda i: (b.clear(out), remove(w / "restic-cache")),
            "after": lambda i, _: i or Bench.check_tree(out, expected_v1)})
    # The same restore with its files on disk when it ends (`sync -f`: the target's file system), as pvc's restore has
    # them before it returns; restic leaves them to the kernel's writeback, and so does pvc's clone its checkout (its
    # store is on disk before it returns). A second baseline, not alternated with pvc's runs; the goal stays the
    # restore above.
    b.measure(s, "clone_restore", "restic + sync", ["sh", "-c", '"$0" restore "$1" --target "$2" -q && sync -f "$2"',
                                                    b.restic, state["v1_snapshot"], out],
              env=renv, setup=lambda i: (b.clear(out), remove(w / "restic-cache")))
    remove(out)
    remove(src)


def _summary(out: bytes) -> dict:
    for line in reversed(out.decode().splitlines()):
        if line.startswith("{") and '"summary"' in line:
            return json.loads(line)
    raise RuntimeError("restic printed no JSON summary")


def _dvc(b: Bench, s: str, w: Path, v1_tree: Path, env: dict, endpoint: str, expected_v1: dict
         ) -> Iterator[Together | None]:
    """DVC without git: `dvc add` of every top-level entry (untimed), then `dvc push` to an S3 remote and, into an
    empty workspace and cache, `dvc pull`."""
    proj = copy_tree(v1_tree, w / "dvc")
    denv = env | {"DVC_NO_ANALYTICS": "1"} | {k: v for k, v in b.git_env.items() if k.startswith("GIT_")}
    dvc = [b.dvc]
    targets = sorted(p.name for p in proj.iterdir())
    run_checked([*dvc, "init", "--no-scm", "-q"], cwd=proj, env=denv)
    run_checked([*dvc, "config", "core.analytics", "false"], cwd=proj, env=denv)
    run_checked([*dvc, "add", "-q", *targets], cwd=proj, env=denv)
    remotes = count()

    def fresh_remote(_: int = 0) -> None:
        name = f"r{next(remotes)}"
        run_checked([*dvc, "remote", "add", "-f", "-d", name, f"s3://{BUCKET}-dvc/{s}/dvc-{name}"], cwd=proj, env=denv)
        run_checked([*dvc, "remote", "modify", name, "endpointurl", endpoint], cwd=proj, env=denv)

    yield ("push_v1", "dvc", [*dvc, "push", "-q"], {"cwd": proj, "env": denv, "setup": fresh_remote})
    yield None  # (no push of the change)
    own = frozenset({".dvc", ".dvcignore", *(f"{t}.dvc" for t in targets)})

    def empty(_: int) -> None:
        for t in targets:
            remove(proj / t)
        remove(proj / ".dvc" / "cache")

    yield ("clone_restore", "dvc", [*dvc, "pull", "-q"], {"cwd": proj, "env": denv, "setup": empty,
                                                          "after": lambda i, _: i or Bench.check_tree(proj, expected_v1, own)})
    remove(proj)
    os.sync()
