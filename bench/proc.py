"""Time whole processes: wall clock, CPU seconds and peak RSS of each run, over several repetitions.

Every measured command is one child process (or one `sh -c` line for tools whose "commit" is two
commands). CPU time comes from `os.wait4`, the rusage of exactly that child and the descendants it
waited for (the per-child form of `getrusage(RUSAGE_CHILDREN)`), so runs never mix. Peak RSS comes
from `/usr/bin/time -f %M` when present: Linux carries a process's RSS high-water mark across
`exec`, so a child forked from this (large) harness process would report the harness's own RSS;
`time` is small and forks the measured command itself. Without `/usr/bin/time` the wait4 figure is
kept and marked as an upper bound.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Run", "Measurement", "Runner", "run_checked", "RSS_EXACT"]

TIME = "/usr/bin/time"
RSS_EXACT = os.access(TIME, os.X_OK)


@dataclass(frozen=True)
class Run:
    wall: float  # seconds
    cpu: float  # user + system seconds of the process tree
    rss_mb: float  # peak resident set size, MiB
    rc: int
    load: float = 0.0  # 1-minute load average just before the run (other work on the machine)


@dataclass
class Measurement:
    scenario: str
    op: str
    tool: str
    argv: list[str]
    runs: list[Run] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.runs)

    @property
    def median(self) -> float:
        return statistics.median(r.wall for r in self.runs)

    @property
    def low(self) -> float:
        return min(r.wall for r in self.runs)

    @property
    def high(self) -> float:
        return max(r.wall for r in self.runs)

    @property
    def cpu(self) -> float:
        return statistics.median(r.cpu for r in self.runs)

    @property
    def rss_mb(self) -> float:
        return max(r.rss_mb for r in self.runs)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"scenario": self.scenario, "op": self.op, "tool": self.tool, "argv": self.argv,
                               "runs": [r.__dict__ for r in self.runs], "error": self.error}
        if self.ok:
            doc |= {"median_s": self.median, "min_s": self.low, "max_s": self.high, "peak_rss_mb": self.rss_mb,
                    "median_cpu_s": self.cpu}
        return doc


def run_process(argv: Sequence[str | os.PathLike], *, cwd: Path | None = None,
                env: dict[str, str] | None = None, rss: bool = False) -> tuple[Run, bytes, bytes]:
    """Run one process to completion; return its timing and what it wrote (via temp files, not pipes)."""
    args = [os.fspath(a) for a in argv]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile(prefix="bench-rss-") as rss_file:
        if rss and RSS_EXACT:
            args = [TIME, "-f", "%M", "-o", rss_file.name, *args]
        start = time.perf_counter()
        proc = subprocess.Popen(args, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        rss_kb = usage.ru_maxrss
        if rss and RSS_EXACT:
            lines = rss_file.read().decode().split()
            rss_kb = int(lines[-1]) if lines and lines[-1].isdigit() else rss_kb
        out.seek(0)
        err.seek(0)
        run = Run(wall, usage.ru_utime + usage.ru_stime, rss_kb / 1024, proc.returncode)
        return run, out.read(), err.read()


def run_checked(argv: Sequence[str | os.PathLike], *, cwd: Path | None = None,
                env: dict[str, str] | None = None) -> bytes:
    """Run an untimed helper command; raise with its stderr if it fails. Returns stdout."""
    run, out, err = run_process(argv, cwd=cwd, env=env)
    if run.rc != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} (in {cwd}) exited {run.rc}: {err.decode(errors='replace')[-2000:]}")
    return out


class Runner:
    """Measures operations and keeps every measurement in order."""

    def __init__(self, reps: int, log: Callable[[str], None]) -> None:
        self.reps = reps
        self.log = log
        self.measurements: list[Measurement] = []

    def measure(self, scenario: str, op: str, tool: str, argv: Sequence[str | os.PathLike], *,
                cwd: Path | None = None, env: dict[str, str] | None = None, reps: int | None = None,
                setup: Callable[[int], None] | None = None,
                after: Callable[[int, bytes], None] | None = None, ok_rc: tuple[int, ...] = (0,)) -> Measurement:
        """Run `argv` `reps` times; `setup(i)` before and `after(i, stdout)` after each run, both untimed.

        A run that exits outside `ok_rc`, or whose `after` raises, ends the measurement with an error;
        the benchmark carries on with the other operations.
        """
        m = Measurement(scenario, op, tool, [os.fspath(a) for a in argv])
        self.measurements.append(m)
        for i in range(reps or self.reps):
            if not self._run_once(m, i, argv, cwd=cwd, env=env, setup=setup, after=after, ok_rc=ok_rc):
                break
        self._report(m)
        return m

    def measure_together(self, scenario: str, op: str, tools: Sequence[tuple[str, Sequence, dict[str, Any]]], *,
                         reps: int | None = None) -> list[Measurement]:
        """`measure` of one operation for several tools, `tools` = [(tool, argv, keywords of measure)], their runs
        alternated (A B, then B A, ...): a host that drifts over the minutes between one tool's runs and the
        other's would otherwise tilt their ratio. Only for operations that leave each tool's state as they found it
        (a status), or whose `setup` restores it."""
        ms = [Measurement(scenario, op, tool, [os.fspath(a) for a in argv]) for tool, argv, _ in tools]
        self.measurements += ms
        for i in range(reps or self.reps):
            order = range(len(tools)) if i % 2 == 0 else reversed(range(len(tools)))
            for j in order:
                tool, argv, kw = tools[j]
                if ms[j].error is None:
                    self._run_once(ms[j], i, argv, **kw)
        for m in ms:
            self._report(m, together=len(ms) > 1)
        return ms

    def _run_once(self, m: Measurement, i: int, argv: Sequence[str | os.PathLike], *, cwd: Path | None = None,
                  env: dict[str, str] | None = None, setup: Callable[[int], None] | None = None,
                  after: Callable[[int, bytes], None] | None = None, ok_rc: tuple[int, ...] = (0,)) -> bool:
        """One run of `m`, appended to it; False (and `m.error` set) when it failed."""
        try:
            if setup:
                setup(i)
            os.sync()  # start every run with no dirty pages left by the setup or the previous tool
            load = os.getloadavg()[0]
            run, out, err = run_process(argv, cwd=cwd, env=env, rss=True)
            run = Run(run.wall, run.cpu, run.rss_mb, run.rc, load)
            if run.rc not in ok_rc:
                tail = err.decode(errors="replace").strip().splitlines()[-3:]
                raise RuntimeError(f"exit {run.rc}: {' | '.join(tail)}")
            m.runs.append(run)
            if after:
                after(i, out)
        except Exception as exc:  # recorded in the results; one failing tool must not stop the run
            m.error = f"{type(exc).__name__}: {exc}"
            return False
        return True

    def _report(self, m: Measurement, *, together: bool = False) -> None:
        name = f"{m.scenario}/{m.op} [{m.tool}]"
        if m.ok:
            self.log(f"{name:<44} {m.median:8.3f} s  ({m.low:.3f}-{m.high:.3f})  {m.rss_mb:7.1f} MiB"
                     + ("  (alternated)" if together else ""))
        else:
            self.log(f"{name:<44} FAILED: {m.error}")

    def find(self, scenario: str, op: str, tool: str) -> Measurement | None:
        for m in self.measurements:
            if (m.scenario, m.op, m.tool) == (scenario, op, tool) and m.ok:
                return m
        return None


def stderr_log(start: float) -> Callable[[str], None]:
    def log(message: str) -> None:
        print(f"[{time.perf_counter() - start:7.1f}s] {message}", file=sys.stderr, flush=True)
    return log
