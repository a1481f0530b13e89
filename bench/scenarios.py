"""The scenarios: each builds its data, then times pvc and the baselines on copies of the same tree.

Every tool gets its own copy of the tree (`cp -a`), runs its first commit on a fresh store each
repetition, keeps a copy of its store after v1 so each repetition of the 1% change commit starts from
the same state, and restores v1 into a new directory whose files are checked against v1's.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

from bench.bench import HASHFLOOR, Bench
from bench.damage import drop_media_objects
from bench.data import (Snapshot, big_file, copy_tree, edit_in_place, image_project, jpeg_project, listing, remove,
                        video_project, volume_project)
from bench.proc import run_checked

__all__ = ["cli_start", "images", "jpeg", "bigfile", "video", "volume", "log_versions", "history"]

EDIT_BYTES = 1 << 20


def _fresh_pvc_store(b: Bench, proj: Path) -> Callable[[int], None]:
    """A measure() setup that gives `proj` an empty pvc store before each repetition of a first commit."""

    def fresh(_: int) -> None:
        remove(proj / ".pvc")
        run_checked([*b.pvc, "init", "--json"], cwd=proj, env=b.env)

    return fresh


def _created(expected: bool) -> Callable[[int, bytes], None]:
    def check(_: int, out: bytes) -> None:
        doc = json.loads(out)
        if doc.get("created") is not expected:
            raise RuntimeError(f"commit said created={doc.get('created')}, expected {expected}")
    return check


def _checked_restore(root: Path, expected: dict[str, int], skip: frozenset[str] = frozenset()) -> Callable[[int, bytes], None]:
    def check(i: int, _: bytes) -> None:
        if i == 0:
            Bench.check_tree(root, expected, skip)
    return check


def _restic_summary(out: bytes) -> dict:
    for line in reversed(out.decode().splitlines()):
        if line.startswith("{") and '"summary"' in line:
            return json.loads(line)
    raise RuntimeError("restic printed no JSON summary")


# --------------------------------------------------------------------------- CLI start


def cli_start(b: Bench) -> None:
    reps = max(b.cfg.reps, 5)
    b.measure("cli", "start", "pvc", [*b.pvc, "--help"], reps=reps)
    b.measure("cli", "start", "python", [b.python, "-c", "pass"], reps=reps)
    b.measure("cli", "start", "python+typer+rich", [b.python, "-c", "import typer, rich.table"], reps=reps)


# --------------------------------------------------------------------------- floors


def floors(b: Bench, scenario: str, src: Path, expected: dict[str, int]) -> None:
    """`cp -a` (the restore floor) and read + blake3 of every file (the commit floor)."""
    out = b.out(f"{scenario}-cp")
    b.measure(scenario, "restore", "cp -a", ["cp", "-a", src, out], setup=lambda i: b.clear(out),
              after=_checked_restore(out, expected), reps=b.cfg.restore_reps)
    # pvc restore ends with a sync (durable before the rename); this floor pays for the same flush
    b.measure(scenario, "restore", "cp -a + sync", ["sh", "-c", 'cp -a "$0" "$1" && sync', src, out],
              setup=lambda i: b.clear(out))
    remove(out)
    b.measure(scenario, "hash", "read+blake3", [b.python, HASHFLOOR, src])


# --------------------------------------------------------------------------- image project


def images(b: Bench) -> None:
    """The pvc.sample profile: noise JPEG/PNG items with companions, extras and a nested dataset."""
    _image_scenario(b, "images", image_project)


def jpeg(b: Bench) -> None:
    """The second profile: JPEG-only items, annotations only, flat datasets (bench/data.py: jpeg_project)."""
    _image_scenario(b, "jpeg", lambda root, items, datasets, seed: jpeg_project(root, items, datasets, seed, b.cfg.tiny))


def _image_scenario(b: Bench, s: str, make: Callable[[Path, int, int, int], Path]) -> None:
    w = b.work / s
    v1 = w / "v1"
    t = time.perf_counter()
    make(v1, b.cfg.items, b.cfg.datasets, b.cfg.seed)
    expected = listing(v1)
    b.fact(s, items=b.cfg.items, datasets=b.cfg.datasets, files_v1=len(expected), bytes_v1=sum(expected.values()),
           generate_s=round(time.perf_counter() - t, 1))
    b.log(f"{s}: generated {b.cfg.items} items, {len(expected)} files, {sum(expected.values()) / 1e6:.1f} MB "
          f"in {time.perf_counter() - t:.1f}s")
    floors(b, s, v1, expected)
    flows = [_pvc_images(b, s, w, v1, expected), _git_images(b, s, w, v1, expected)]
    if b.dvc:
        flows.append(_dvc_images(b, s, w, v1, expected))
    if b.restic:
        flows.append(_restic_images(b, s, w, v1, expected))
    _side_by_side(b, s, flows)
    remove(w)


# (op, tool, argv, keywords of Bench.measure), as a flow yields it; `reps` among the keywords sets the runs of each
Together = tuple[str, str, list, dict]


def _side_by_side(b: Bench, s: str, flows: list[Iterator[Together | None]]) -> None:
    """Run the tools' flows (generators) step by step: each measures its own operations, and yields at those it
    measures with the other tools' alternately (the first commit, the statuses, the restore: the operations the
    goals compare tools by; every tool's copy waits in the same state meanwhile, and a `setup` makes each run's
    state), all of them in the same order; a flow yields None for an operation it skips. A flow that fails is logged
    and dropped, and the other tools go on, as when each ran on its own; the scenario then fails at the end, as it
    did when a tool's steps failed (bench/run.py reports it and exits 1). A flow may end before the others."""
    live, failed = list(flows), []
    while live:
        asked = []
        for flow in list(live):
            try:
                asked.append(next(flow))
            except StopIteration:
                live.remove(flow)
            except Exception as exc:  # one tool's failure must not cost the others their results
                b.log(f"{s}: a tool's flow failed and is left out from here:\n{traceback.format_exc()}")
                failed.append(f"{type(exc).__name__}: {exc}")
                live.remove(flow)
        ops = {a[0] for a in asked if a is not None}
        if len(ops) > 1:
            raise RuntimeError(f"{s}: the tools' flows are out of step: {sorted(ops)}")
        if ops:
            tools = [(tool, argv, dict(kw)) for _, tool, argv, kw in (a for a in asked if a is not None)]
            reps = max((r for *_, kw in tools if (r := kw.pop("reps", None))), default=None)
            b.measure_together(s, ops.pop(), tools, reps=reps)
    if failed:
        raise RuntimeError(f"{s}: {len(failed)} tool flow(s) failed: {'; '.join(failed)}")


def _pvc_images(b: Bench, s: str, w: Path, v1: Path, expected: dict[str, int]) -> Iterator[Together | None]:
    pvc = b.pvc
    proj = copy_tree(v1, w / "pvc")
    store = proj / ".pvc"

    fresh = _fresh_pvc_store(b, proj)

    yield ("first_commit", "pvc", [*pvc, "commit", "-m", "v1", "--json"], {"cwd": proj, "setup": fresh, "after": _created(True)})
    b.size(s, "store_v1", "pvc", store)
    snap = Snapshot(store, w / "pvc-store-v1")
    b.measure(s, "nochange_commit", "pvc", [*pvc, "commit", "-m", "same", "--json"], cwd=proj, after=_created(False))
    yield _together(b, s, "status_clean", "status", [*pvc, "status", "--json"], proj)
    b.mutate(s, proj)
    yield _together(b, s, "status_dirty", "status", [*pvc, "status", "--json"], proj)
    b.measure(s, "change_commit", "pvc", [*pvc, "commit", "-m", "v2", "--json"], cwd=proj,
              setup=lambda i: snap.restore(), after=_created(True))
    snap.drop()
    b.size(s, "store_v2", "pvc", store)
    b.measure(s, "log", "pvc", [*pvc, "log", "--json"], cwd=proj)
    b.measure(s, "show", "pvc", [*pvc, "show", "--json"], cwd=proj)
    b.measure(s, "ls", "pvc", [*pvc, "ls", "--json"], cwd=proj)
    _optional(b, s, "diff", "diff", [*pvc, "diff", "1", "2", "--json"], proj)
    out = b.out("images-pvc")
    yield ("restore", "pvc", [*pvc, "restore", "1", "--to", out, "--no-link", "--json"],
           {"cwd": proj, "setup": lambda i: b.clear(out), "after": _checked_restore(out, expected), "reps": b.cfg.restore_reps})
    remove(out)
    _pvc_skip_missing(b, s, w, proj, out)
    remove(proj)


def _together(b: Bench, s: str, op: str, command: str, argv: list, cwd: Path) -> Together | None:
    """A pvc operation measured alternately with the other tools' (`_side_by_side`), if this pvc has the command."""
    if b.has(command):
        return (op, "pvc", argv, {"cwd": cwd})
    b.skip(s, op, f"no `pvc {command}` yet")
    return None


def _optional(b: Bench, s: str, op: str, command: str, argv: list, cwd: Path) -> None:
    """A pvc operation measured on its own, if this pvc has the command."""
    if _together(b, s, op, command, argv, cwd) is not None:
        b.measure(s, op, "pvc", argv, cwd=cwd)


def _pvc_skip_missing(b: Bench, s: str, w: Path, proj: Path, out: Path) -> None:
    """Restore v1 from a copy of the store that lost the media blobs of ~5% of v1's items."""
    damaged = w / "pvc-damaged"
    damaged.mkdir()
    copy_tree(proj / ".pvc", damaged / ".pvc")
    lost = drop_media_objects(damaged, run_checked([*b.pvc, "ls", "1", "--json"], cwd=proj, env=b.env),
                              b.cfg.lost_fraction, b.cfg.seed)
    b.fact(s, items_lost=lost)

    def check(_: int, stdout: bytes) -> None:
        skipped = len(json.loads(stdout)["skipped"])
        if skipped != lost:
            raise RuntimeError(f"restore skipped {skipped} items, {lost} lost their media")

    b.measure(s, "restore_skip_missing", "pvc", [*b.pvc, "restore", "1", "--to", out, "--skip-missing", "--no-link", "--json"],
              cwd=damaged, setup=lambda i: b.clear(out), after=check)
    remove(out)
    remove(damaged)


def _git_images(b: Bench, s: str, w: Path, v1: Path, expected: dict[str, int]) -> Iterator[Together]:
    env = b.git_env
    proj = copy_tree(v1, w / "git")
    dot_git = proj / ".git"
    commit = ["sh", "-c", 'git add -A && git commit -q -m "$0"']

    def fresh(_: int) -> None:
        remove(dot_git)
        run_checked(["git", "init", "-q"], cwd=proj, env=env)

    yield ("first_commit", "git", [*commit, "v1"], {"cwd": proj, "env": env, "setup": fresh})
    run_checked(["git", "tag", "v1"], cwd=proj, env=env)
    b.size(s, "store_v1", "git", dot_git)
    snap = Snapshot(dot_git, w / "git-v1")
    b.measure(s, "nochange_commit", "git", [*commit, "same"], cwd=proj, env=env, ok_rc=(1,))  # 1: nothing to commit
    yield ("status_clean", "git", ["git", "status"], {"cwd": proj, "env": env})
    b.mutate(s, proj)
    yield ("status_dirty", "git", ["git", "status"], {"cwd": proj, "env": env})
    b.measure(s, "change_commit", "git", [*commit, "v2"], cwd=proj, env=env, setup=lambda i: snap.restore())
    snap.drop()
    b.size(s, "store_v2", "git", dot_git)
    b.measure(s, "log", "git", ["git", "log"], cwd=proj, env=env)
    b.measure(s, "show", "git", ["git", "show", "--stat", "HEAD"], cwd=proj, env=env)
    b.measure(s, "ls", "git", ["git", "ls-tree", "-r", "-l", "HEAD"], cwd=proj, env=env)
    b.measure(s, "diff", "git", ["git", "diff", "--stat", "v1", "HEAD"], cwd=proj, env=env)
    out = b.out("images-git")

    def clear(_: int) -> None:
        b.clear(out)
        run_checked(["git", "worktree", "prune"], cwd=proj, env=env)

    yield ("restore", "git", ["git", "worktree", "add", "--detach", out, "v1"],
           {"cwd": proj, "env": env, "setup": clear, "reps": b.cfg.restore_reps,
            "after": _checked_restore(out, expected, frozenset({".git"}))})
    remove(out)
    remove(proj)


def _restic_images(b: Bench, s: str, w: Path, v1: Path, expected: dict[str, int]) -> Iterator[Together | None]:
    proj = copy_tree(v1, w / "restic-src")
    repo, cache = w / "restic-repo", w / "restic-cache"
    env = _restic_env(repo, cache)
    backup = [b.restic, "backup", "--json", "-q", "."]
    snapshots: dict[str, str] = {}

    def remember(_: int, out: bytes) -> None:
        snapshots["v1"] = _restic_summary(out)["snapshot_id"]

    yield ("first_commit", "restic", backup, {"cwd": proj, "env": env, "setup": _fresh_restic(b, repo, cache),
                                              "after": remember})
    b.size(s, "store_v1", "restic", repo)
    snaps = [Snapshot(repo, w / "restic-v1-repo"), Snapshot(cache, w / "restic-v1-cache")]
    b.measure(s, "nochange_commit", "restic", backup, cwd=proj, env=env)
    yield None  # (no status)
    b.mutate(s, proj)
    yield None
    b.measure(s, "change_commit", "restic", backup, cwd=proj, env=env, setup=lambda i: [x.restore() for x in snaps])
    for x in snaps:
        x.drop()
    b.size(s, "store_v2", "restic", repo)
    if "v1" in snapshots:
        out = b.out("images-restic")
        yield ("restore", "restic", [b.restic, "restore", snapshots["v1"], "--target", out],
               {"env": env, "setup": lambda i: b.clear(out), "after": _checked_restore(out, expected),
                "reps": b.cfg.restore_reps})
        remove(out)
    for path in (proj, repo, cache):
        remove(path)


def _restic_env(repo: Path, cache: Path) -> dict[str, str]:
    return dict(os.environ) | {"LC_ALL": "C.UTF-8", "RESTIC_PASSWORD": "bench", "RESTIC_REPOSITORY": str(repo),
                               "RESTIC_CACHE_DIR": str(cache)}


def _fresh_restic(b: Bench, repo: Path, cache: Path) -> Callable[[int], None]:
    """A new empty repository per run: a copy of one `restic init` (its key derivation takes seconds)."""
    template = b.work / "restic-template"
    if not template.exists():
        run_checked([b.restic, "init", "-q"], env=_restic_env(template, b.work / "restic-template-cache"))
        remove(b.work / "restic-template-cache")

    def fresh(_: int) -> None:
        remove(repo)
        remove(cache)
        copy_tree(template, repo)
    return fresh


def _dvc_images(b: Bench, s: str, w: Path, v1: Path, expected: dict[str, int]) -> Iterator[Together]:
    """DVC without git (`--no-scm`): `dvc add` of every top-level entry, `dvc status`, `dvc checkout`."""
    proj = copy_tree(v1, w / "dvc")
    site = w / "dvc-site"
    env = b.git_env | {"DVC_NO_ANALYTICS": "1"}
    dvc = [b.dvc]
    targets = sorted(p.name for p in proj.iterdir())
    meta_files = [proj / f"{t}.dvc" for t in targets]
    own = frozenset({".dvc", ".dvcignore", *(f"{t}.dvc" for t in targets)})
    add = [*dvc, "add", "-q", *targets]

    def fresh(_: int) -> None:
        for path in (proj / ".dvc", proj / ".dvcignore", site, *meta_files):
            remove(path)
        run_checked([*dvc, "init", "--no-scm", "-q"], cwd=proj, env=env)
        run_checked([*dvc, "config", "core.site_cache_dir", str(site)], cwd=proj, env=env)
        run_checked([*dvc, "config", "core.analytics", "false"], cwd=proj, env=env)

    yield ("first_commit", "dvc", add, {"cwd": proj, "env": env, "setup": fresh})
    b.size(s, "store_v1", "dvc", proj / ".dvc" / "cache")
    snaps = [Snapshot(proj / ".dvc", w / "dvc-v1"), Snapshot(site, w / "dvc-v1-site")]
    v1_meta = {f: f.read_bytes() for f in meta_files}

    def reset(_: int) -> None:
        for x in snaps:
            x.restore()
        for f, data in v1_meta.items():
            f.write_bytes(data)

    b.measure(s, "nochange_commit", "dvc", add, cwd=proj, env=env)
    yield ("status_clean", "dvc", [*dvc, "status", "-q"], {"cwd": proj, "env": env})
    b.mutate(s, proj)
    yield ("status_dirty", "dvc", [*dvc, "status", "-q"], {"cwd": proj, "env": env, "ok_rc": (0, 1)})
    b.measure(s, "change_commit", "dvc", add, cwd=proj, env=env, setup=reset)
    b.size(s, "store_v2", "dvc", proj / ".dvc" / "cache")

    def back_to_v1(_: int) -> None:  # an empty workspace holding v1's .dvc files: checkout writes every file
        for t in targets:
            remove(proj / t)
        for f, data in v1_meta.items():
            f.write_bytes(data)

    yield ("restore", "dvc", [*dvc, "checkout", "-q"], {"cwd": proj, "env": env, "setup": back_to_v1,
                                                        "after": _checked_restore(proj, expected, own)})
    for x in snaps:
        x.drop()
    remove(proj)
    remove(site)


# --------------------------------------------------------------------------- one big file


def bigfile(b: Bench) -> None:
    """One N MiB file of random bytes: commit, unchanged commit, commit after a 1 MiB in-place edit, restore."""
    s, w, pvc = "bigfile", b.work / "bigfile", b.pvc
    proj = w / "pvc"
    f = big_file(proj / "big.bin", b.cfg.bigfile_mb, b.cfg.seed)
    size = f.stat().st_size
    b.fact(s, file_mb=b.cfg.bigfile_mb, edit_bytes=EDIT_BYTES)
    store = proj / ".pvc"
    b.measure(s, "hash", "read+blake3", [b.python, HASHFLOOR, f])

    fresh = _fresh_pvc_store(b, proj)

    b.measure(s, "first_commit", "pvc", [*pvc, "commit", "-m", "v1", "--json"], cwd=proj, setup=fresh, after=_created(True))
    b.size(s, "store_v1", "pvc", store)
    snap = Snapshot(store, w / "pvc-v1")
    packs_v1 = {p.name for p in (store / "packs").iterdir()}
    b.measure(s, "nochange_commit", "pvc", [*pvc, "commit", "-m", "same", "--json"], cwd=proj, after=_created(False))
    restic = _restic_bigfile_v1(b, w, proj) if b.restic else None
    edit_in_place(f, EDIT_BYTES, b.cfg.seed)

    def new_bytes(_: int, out: bytes) -> None:
        _created(True)(0, out)
        added = sum(p.stat().st_size for p in (store / "packs").iterdir() if p.name not in packs_v1)
        b.fact(s, pvc_new_store_bytes=added, pvc_new_pack_bytes=sum(
            p.stat().st_size for p in (store / "packs").glob("*.pack") if p.name not in packs_v1))

    b.measure(s, "edit_commit", "pvc", [*pvc, "commit", "-m", "edit", "--json"], cwd=proj,
              setup=lambda i: snap.restore(), after=new_bytes)
    snap.drop()
    b.size(s, "store_v2", "pvc", store)
    if restic:
        restic()
    out = b.out("bigfile")
    expected = {"big.bin": size}
    b.measure(s, "restore", "pvc", [*pvc, "restore", "latest", "--to", out, "--no-link", "--json"], cwd=proj,
              setup=lambda i: b.clear(out), after=_checked_restore(out, expected))
    b.measure(s, "restore", "cp -a", ["cp", "-a", f, out], setup=lambda i: b.clear(out))
    b.measure(s, "restore", "cp -a + sync", ["sh", "-c", 'cp -a "$0" "$1" && sync', f, out], setup=lambda i: b.clear(out))
    remove(out)
    remove(w)


def _restic_bigfile_v1(b: Bench, w: Path, proj: Path) -> Callable[[], None]:
    """restic backup of the file before the edit; returns the step to run after it."""
    s = "bigfile"
    repo, cache = w / "restic-repo", w / "restic-cache"
    env = _restic_env(repo, cache)
    backup = [b.restic, "backup", "--json", "-q", "big.bin"]
    b.measure(s, "first_commit", "restic", backup, cwd=proj, env=env, setup=_fresh_restic(b, repo, cache))
    b.size(s, "store_v1", "restic", repo)
    snaps = [Snapshot(repo, w / "restic-v1-repo"), Snapshot(cache, w / "restic-v1-cache")]
    b.measure(s, "nochange_commit", "restic", backup, cwd=proj, env=env)

    def after_edit() -> None:
        def added(_: int, out: bytes) -> None:
            b.fact(s, restic_data_added=_restic_summary(out)["data_added"])
        b.measure(s, "edit_commit", "restic", backup, cwd=proj, env=env,
                  setup=lambda i: [x.restore() for x in snaps], after=added)
        b.size(s, "store_v2", "restic", repo)
        for x in snaps:
            x.drop()
        remove(repo)
        remove(cache)

    return after_edit


# --------------------------------------------------------------------------- video and volume projects


def video(b: Bench) -> None:
    _media(b, "video", lambda root: video_project(root, b.cfg.videos, b.cfg.video_frames, b.cfg.seed))


def volume(b: Bench) -> None:
    _media(b, "volume", lambda root: volume_project(root, b.cfg.volume_mb, b.cfg.seed))


def _media(b: Bench, s: str, make: Callable[[Path], Path]) -> None:
    """Few large media files: commit, unchanged commit, restore; against the floors and restic."""
    w, pvc = b.work / s, b.pvc
    t = time.perf_counter()
    proj = make(w / "pvc")
    expected = listing(proj)
    b.fact(s, files=len(expected), bytes_v1=sum(expected.values()), generate_s=round(time.perf_counter() - t, 1))
    floors(b, s, proj, expected)
    store = proj / ".pvc"

    fresh = _fresh_pvc_store(b, proj)

    b.measure(s, "first_commit", "pvc", [*pvc, "commit", "-m", "v1", "--json"], cwd=proj, setup=fresh, after=_created(True))
    b.size(s, "store_v1", "pvc", store)
    b.measure(s, "nochange_commit", "pvc", [*pvc, "commit", "-m", "same", "--json"], cwd=proj, after=_created(False))
    out = b.out(s)
    b.measure(s, "restore", "pvc", [*pvc, "restore", "1", "--to", out, "--no-link", "--json"], cwd=proj,
              setup=lambda i: b.clear(out), after=_checked_restore(out, expected))
    remove(out)
    if b.restic:
        repo, cache = w / "restic-repo", w / "restic-cache"
        env = _restic_env(repo, cache)
        backup = [b.restic, "backup", "--json", "-q", "--exclude", ".pvc", "."]
        snapshots: dict[str, str] = {}
        fresh_repo = _fresh_restic(b, repo, cache)

        def remember(_: int, stdout: bytes) -> None:
            snapshots["v1"] = _restic_summary(stdout)["snapshot_id"]

        b.measure(s, "first_commit", "restic", backup, cwd=proj, env=env, setup=fresh_repo, after=remember)
        b.size(s, "store_v1", "restic", repo)
        b.measure(s, "nochange_commit", "restic", backup, cwd=proj, env=env)
        if "v1" in snapshots:
            b.measure(s, "restore", "restic", [b.restic, "restore", snapshots["v1"], "--target", out], env=env,
                      setup=lambda i: b.clear(out), after=_checked_restore(out, expected, frozenset({".pvc"})))
        remove(out)
    remove(w)


# --------------------------------------------------------------------------- log with many versions


def log_versions(b: Bench) -> None:
    """`pvc log` over N versions (made in-process through the API, untimed) against `git log` of N commits."""
    import pvc

    s, n = "log", b.cfg.log_versions
    w = b.work / "log"
    proj = w / "pvc"
    proj.mkdir(parents=True)
    counter = proj / "counter.txt"
    t = time.perf_counter()
    pvc.Project.init(proj)
    with pvc.Project(proj) as project:
        for i in range(n):
            counter.write_text(f"{i}\n")
            project.version.create(title=f"step {i}", description={"step": i})
    b.fact(s, versions=n, create_in_process_s=round(time.perf_counter() - t, 1))
    b.log(f"log: created {n} versions in-process in {time.perf_counter() - t:.1f}s")
    b.measure(s, "log", "pvc", [*b.pvc, "log"], cwd=proj)
    b.measure(s, "log_json", "pvc", [*b.pvc, "log", "--json"], cwd=proj)
    b.measure(s, "log_n20", "pvc", [*b.pvc, "log", "-n", "20"], cwd=proj)
    repo = w / "git"
    repo.mkdir()
    run_checked(["git", "init", "-q"], cwd=repo, env=b.git_env)
    stream = []
    for i in range(n):
        stream += _fast_import_commit(i, f"step {i}", "counter.txt", f"{i}\n".encode())
    _fast_import(b, w, repo, stream, "git checkout -q main")
    b.measure(s, "log", "git", ["git", "log"], cwd=repo, env=b.git_env)
    remove(w)


def _fast_import_commit(i: int, message: str, path: str, data: bytes) -> list[bytes]:
    """The `git fast-import` records of commit `i` on main: `path` set to `data` (dated 1700000000 + i)."""
    msg = f"{message}\n".encode()
    return [b"commit refs/heads/main\n", f"committer bench <b@example.com> {1700000000 + i} +0000\n".encode(),
            f"data {len(msg)}\n".encode(), msg, f"M 644 inline {path}\ndata {len(data)}\n".encode(), data, b"\n"]


def _fast_import(b: Bench, w: Path, repo: Path, stream: list[bytes], then: str) -> None:
    """Feed `stream` to `git fast-import` in `repo` (through a file in `w`), then run the shell command `then`."""
    (w / "stream").write_bytes(b"".join(stream))
    run_checked(["sh", "-c", f"git fast-import --quiet < '{w / 'stream'}' && {then}"], cwd=repo, env=b.git_env)


# --------------------------------------------------------------------------- small commands over a long history


def history(b: Bench) -> None:
    """Small commands on the JPEG-only project with N versions (issue 13, item 8: `log`, `show`, the tag listing and
    `diff --stat` of two versions, each ≤ 0.1 s at 20,000 items and 1,000 versions). The versions are made
    in-process through the API (untimed), each after one annotation edited (its `description` set), every 200th
    tagged; git gets the same history (v1 by `git add -A` + commit, the edits by `git fast-import`), and each pvc
    command is timed alternately with git's counterpart."""
    import pvc

    s, n = "history", b.cfg.history_versions
    w = b.work / s
    v1 = w / "v1"
    jpeg_project(v1, b.cfg.items, b.cfg.datasets, b.cfg.seed, b.cfg.tiny)
    anns = sorted(p.relative_to(v1).as_posix() for p in v1.glob("*/ann/*.json"))
    repo = copy_tree(v1, w / "git")
    run_checked(["sh", "-c", "git init -q -b main && git add -A && git commit -q -m v1"], cwd=repo, env=b.git_env)
    first = run_checked(["git", "rev-parse", "HEAD"], cwd=repo, env=b.git_env).decode().strip()
    proj = copy_tree(v1, w / "pvc")
    remove(v1)
    t = time.perf_counter()
    pvc.Project.init(proj)
    stream = [f"reset refs/heads/main\nfrom {first}\n\n".encode()]
    with pvc.Project(proj) as project:
        made = [project.version.create(title="v1")]
        for i in range(2, n + 1):
            rel = anns[(i * 7919) % len(anns)]
            doc = json.loads((proj / rel).read_bytes())
            doc["description"] = f"edit {i}"
            data = json.dumps(doc).encode()
            (proj / rel).write_bytes(data)
            made.append(project.version.create(title=f"edit {i}"))
            stream += _fast_import_commit(i, f"edit {i}", rel, data)
            if i % 200 == 0:
                project.version.tag(f"release-{i // 200}", i)
                stream.append(f"reset refs/tags/release-{i // 200}\nfrom refs/heads/main\n\n".encode())
    if [(r.created, r.number) for r in made] != [(True, i) for i in range(1, n + 1)]:
        raise RuntimeError(f"{s}: the versions made are not 1..{n}, one an edit (git's history would not match)")
    b.fact(s, versions=n, items=b.cfg.items, create_in_process_s=round(time.perf_counter() - t, 1))
    b.log(f"{s}: created {n} versions of {b.cfg.items} items in-process in {time.perf_counter() - t:.1f}s")
    _fast_import(b, w, repo, stream, "git reset -q --hard main")
    mid = n // 2
    pairs = [
        ("log", ["log"], ["log"]),
        ("log_json", ["log", "--json"], ["log"]),
        ("log_n20", ["log", "-n", "20"], ["log", "-n", "20"]),
        ("show", ["show"], ["show", "--stat", "HEAD"]),
        ("show_mid_json", ["show", str(mid), "--json"], ["show", "--stat", f"HEAD~{n - mid}"]),
        ("tags", ["tag", "--list"], ["tag", "--list"]),
        ("diff_last", ["diff", str(n - 1), str(n), "--stat"], ["diff", "--stat", "HEAD~1", "HEAD"]),
        ("diff_first_last", ["diff", "1", str(n), "--stat"], ["diff", "--stat", f"HEAD~{n - 1}", "HEAD"]),
    ]
    for op, pvc_args, git_args in pairs:
        b.measure_together(s, op, [("pvc", [*b.pvc, *pvc_args], {"cwd": proj}),
                                   ("git", ["git", "--no-pager", *git_args], {"cwd": repo, "env": b.git_env})])
    remove(w)
