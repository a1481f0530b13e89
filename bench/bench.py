"""Settings and the shared state of one benchmark run: tools found, measurements, sizes and facts."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.data import listing, mutate, mutate_jpeg, remove, tree_bytes
from bench.freshfs import FreshFs
from bench.proc import Measurement, Runner, run_checked, stderr_log

__all__ = ["Config", "Bench", "REPO_ROOT", "HASHFLOOR", "UPLOADFLOOR"]

REPO_ROOT = Path(__file__).resolve().parent.parent
HASHFLOOR = Path(__file__).resolve().parent / "hashfloor.py"
UPLOADFLOOR = Path(__file__).resolve().parent / "uploadfloor.py"
PEERS_VENV = REPO_ROOT / "bench" / ".peers-venv"
ALL_SCENARIOS = ("cli", "images", "jpeg", "bigfile", "video", "volume", "log", "history", "remote", "remote_jpeg")
JPEG_PROFILE = ("jpeg", "remote_jpeg")  # scenarios on the JPEG-only profile (bench/data.py: jpeg_project)


def _env(name: str, default: str) -> str:
    """A BENCH_* setting; empty counts as unset (make exports unset variables as empty strings)."""
    return os.environ.get(name, "").strip() or default


def _env_int(name: str, default: int) -> int:
    return int(_env(name, str(default)))


@dataclass(frozen=True)
class Config:
    items: int
    datasets: int
    seed: int
    reps: int
    restore_reps: int  # restores of the image profiles: their spread matters (issue 13 asks for >= 5)
    bigfile_mb: int
    videos: int
    video_frames: int
    volume_mb: int
    log_versions: int
    history_versions: int  # versions of the JPEG-only project for the small commands (issue 13, item 8)
    lost_fraction: float
    tiny: bool  # the JPEG-only profile with 28-52 px images (100k-item runs)
    peers: str  # auto: use restic/DVC when present; 0: never; 1: required
    fresh_fs: str  # restore and clone targets on a new file system each run: auto (when root), 0 never, 1 required
    keep: bool
    scenarios: tuple[str, ...]
    work: Path
    results: Path

    @classmethod
    def from_env(cls) -> Config:
        scenarios = tuple(s.strip() for s in _env("BENCH_SCENARIOS", ",".join(ALL_SCENARIOS)).split(",") if s.strip())
        unknown = set(scenarios) - set(ALL_SCENARIOS)
        if unknown:
            raise SystemExit(f"BENCH_SCENARIOS: unknown {sorted(unknown)}; known: {', '.join(ALL_SCENARIOS)}")
        return cls(
            items=_env_int("BENCH_ITEMS", 5000), datasets=_env_int("BENCH_DATASETS", 4), seed=_env_int("BENCH_SEED", 0),
            reps=max(1, _env_int("BENCH_REPS", 3)), restore_reps=max(1, _env_int("BENCH_RESTORE_REPS", 5)), bigfile_mb=_env_int("BENCH_BIGFILE_MB", 256),
            videos=_env_int("BENCH_VIDEOS", 3), video_frames=_env_int("BENCH_VIDEO_FRAMES", 150),
            volume_mb=_env_int("BENCH_VOLUME_MB", 64), log_versions=_env_int("BENCH_LOG_VERSIONS", 300),
            history_versions=_env_int("BENCH_HISTORY_VERSIONS", 1000),
            lost_fraction=float(_env("BENCH_LOST_FRACTION", "0.05")), tiny=_env("BENCH_TINY", "0") == "1",
            peers=_env("BENCH_PEERS", "auto"), fresh_fs=_env("BENCH_FRESHFS", "auto"), keep=_env("BENCH_KEEP", "0") == "1", scenarios=scenarios,
            work=Path(_env("BENCH_WORK", str(REPO_ROOT / "bench" / "work"))).resolve(),
            results=Path(_env("BENCH_RESULTS", str(REPO_ROOT / "bench" / "results"))).resolve(),
        )


class Bench:
    """One run: where it works, which tools it drives, and everything measured so far."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.started = time.perf_counter()
        self.log = stderr_log(self.started)
        self.runner = Runner(cfg.reps, self.log)
        self.work = cfg.work / f"run-{time.strftime('%Y%m%d-%H%M%S')}-{cfg.items}-{os.getpid()}"
        self.python = sys.executable
        self.pvc = self._pvc_argv()
        self.pvc_commands = self._pvc_commands()
        self.restic = self._peer("restic", shutil.which("restic"))
        self.dvc = self._peer("DVC", str(PEERS_VENV / "bin" / "dvc") if (PEERS_VENV / "bin" / "dvc").exists() else None)
        # pvc as installed runs from cached bytecode; an environment that forbids writing it would make every pvc
        # command compile pvc again (~40 ms a start): measured, that is a property of the machine, not of pvc
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        self.env = dict(os.environ) | {"LC_ALL": "C.UTF-8", "NO_COLOR": "1"}
        self.env.pop("PVC_DEBUG", None)
        # git: no user or system config, no auto-gc in the middle of a timing, never above the work dir.
        self.git_env = self.env | {
            "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_PAGER": "cat",
            "GIT_CEILING_DIRECTORIES": str(self.work), "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
            "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com",
            "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "gc.auto", "GIT_CONFIG_VALUE_0": "0",
        }
        self.fresh = self._fresh_fs()
        self.sizes: list[dict[str, Any]] = []
        self.facts: dict[str, dict[str, Any]] = {}
        self.skipped: list[str] = []
        self._mutations: dict[str, dict[str, list[str]]] = {}

    # ------------------------------------------------------------------ tools

    def _pvc_argv(self) -> list[str]:
        script = Path(self.python).parent / "pvc"
        return [str(script)] if script.exists() else [self.python, "-m", "pvc"]

    def _pvc_commands(self) -> set[str]:
        """Command names in `pvc --help`, so operations appear once their command exists."""
        text = run_checked([*self.pvc, "--help"], env=dict(os.environ) | {"NO_COLOR": "1", "COLUMNS": "120"}).decode()
        section = text.split("Commands", 1)[-1]
        return set(re.findall(r"^[\s│|]*([a-z][a-z0-9-]*)\s{2,}\S", section, flags=re.M))

    def has(self, command: str) -> bool:
        return command in self.pvc_commands

    def _peer(self, name: str, path: str | None) -> str | None:
        if self.cfg.peers == "0":
            return None
        if path is None and self.cfg.peers == "1":
            raise SystemExit(f"BENCH_PEERS=1 but {name} is not installed (run `make bench-peers`)")
        return path

    # ------------------------------------------------------------------ recording

    def measure(self, scenario: str, op: str, tool: str, argv: list, **kw: Any) -> Measurement:
        kw.setdefault("env", self.env)
        return self.runner.measure(scenario, op, tool, argv, **kw)

    def measure_together(self, scenario: str, op: str, tools: list[tuple[str, list, dict[str, Any]]], *,
                         reps: int | None = None) -> list[Measurement]:
        """`measure` of one operation for several tools, their runs alternated (proc.Runner.measure_together)."""
        return self.runner.measure_together(scenario, op,
                                            [(tool, argv, {"env": self.env} | kw) for tool, argv, kw in tools], reps=reps)

    def skip(self, scenario: str, op: str, why: str) -> None:
        self.skipped.append(f"{scenario}/{op}: {why}")
        self.log(f"{scenario}/{op}: skipped ({why})")

    def size(self, scenario: str, what: str, tool: str, path: Path) -> int:
        apparent, disk = tree_bytes(path)
        self.sizes.append({"scenario": scenario, "what": what, "tool": tool, "bytes": apparent, "disk_bytes": disk})
        self.log(f"{scenario}/{what} [{tool}]: {apparent / 1e6:.1f} MB ({disk / 1e6:.1f} MB on disk)")
        return apparent

    def fact(self, scenario: str, **values: Any) -> None:
        self.facts.setdefault(scenario, {}).update(values)

    def find(self, scenario: str, op: str, tool: str) -> Measurement | None:
        return self.runner.find(scenario, op, tool)

    def find_size(self, scenario: str, what: str, tool: str) -> int | None:
        for s in self.sizes:
            if (s["scenario"], s["what"], s["tool"]) == (scenario, what, tool):
                return s["bytes"]
        return None

    # ------------------------------------------------------------------ helpers

    def _fresh_fs(self) -> FreshFs | None:
        """The file system restores and clones write into, made anew before each run (bench/freshfs.py: ext4's
        inode allocator skips inodes deleted in the last minute, so a restore right after the previous run's tree was
        deleted pays a search per file: 9-18 s of system time for a 50,000-file clone on this host's root file
        system, which has no journal); None where it cannot be had, and then targets are deleted between runs."""
        if self.cfg.fresh_fs == "0":
            return None
        fresh = FreshFs(self.work / "fresh.img", self.work / "fresh", size=os.environ.get("FRESHFS_SIZE", "16G"))
        why = FreshFs.possible()
        if why is None:
            try:  # root and the tools are not enough everywhere (no loop devices, no mount capability, no space)
                self.work.mkdir(parents=True, exist_ok=True)
                fresh.make()
            except (OSError, subprocess.CalledProcessError) as exc:
                why = f"a trial mount failed: {exc}"
                try:
                    fresh.close()
                except (OSError, subprocess.CalledProcessError):
                    pass
        if why is not None:
            if self.cfg.fresh_fs == "1":
                raise SystemExit(f"BENCH_FRESHFS=1: {why}")
            self.log(f"restore targets: deleted between runs ({why})")
            return None
        return fresh

    def out(self, name: str) -> Path:
        """A restore target outside every project (pvc refuses targets inside the project); on the fresh file
        system when there is one (`clear` before each run makes it new)."""
        if self.fresh is not None:
            if not os.path.ismount(self.fresh.mount):
                self.fresh.make()
            return Path(self.fresh.mount) / name
        (self.work / "out").mkdir(parents=True, exist_ok=True)
        return self.work / "out" / name

    def clear(self, out: Path) -> None:
        """Make way for a run writing `out` (a target from `out()`): a new file system, or `out` deleted."""
        if self.fresh is not None and out.parent == Path(self.fresh.mount):
            self.fresh.make()
        else:
            remove(out)

    def close(self) -> None:
        if self.fresh is not None:
            self.fresh.close()

    def mutate(self, scenario: str, root: Path) -> dict[str, list[str]]:
        """Apply the scenario's labelling session; every tool's copy must change the same way."""
        if scenario in JPEG_PROFILE:
            changes = mutate_jpeg(root, seed=self.cfg.seed + 1, tiny=self.cfg.tiny)
        else:
            changes = mutate(root, seed=self.cfg.seed + 1)
        first = self._mutations.setdefault(scenario, changes)
        if first is changes:
            v2 = listing(root, skip=frozenset({".pvc"}))
            self.fact(scenario, edited=len(changes["edited"]), added_files=len(changes["added"]),
                      deleted_files=len(changes["deleted"]), files_v2=len(v2), bytes_v2=sum(v2.values()),
                      changed_bytes=sum((root / p).stat().st_size for p in changes["edited"] + changes["added"]))
        elif changes != first:
            raise RuntimeError(f"the mutation of {root} differs from the first copy's")
        return changes

    @staticmethod
    def check_tree(root: Path, expected: dict[str, int], skip: frozenset[str] = frozenset()) -> None:
        """A restored tree must hold exactly the expected files with the expected sizes."""
        got = listing(root, skip)
        if got != expected:
            missing = expected.keys() - got.keys()
            extra = got.keys() - expected.keys()
            resized = [p for p in expected.keys() & got.keys() if expected[p] != got[p]]
            raise RuntimeError(f"{root}: {len(missing)} files missing, {len(extra)} extra, {len(resized)} resized "
                               f"(e.g. {sorted(missing)[:2]} {sorted(extra)[:2]} {resized[:2]})")

    def elapsed(self) -> float:
        return time.perf_counter() - self.started


def parse_json(out: bytes) -> Any:
    return json.loads(out)
