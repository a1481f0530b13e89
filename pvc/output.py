"""Terminal output: one JSON document on stdout with --json, rich tables otherwise; progress on a TTY only."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

__all__ = ["out", "err", "emit_json", "progress_bar", "human_bytes"]

# Markup is off: names, titles and paths are user data and may contain "[...]"; styled lines opt in.
out = Console(soft_wrap=True, highlight=False, markup=False)
err = Console(stderr=True, soft_wrap=True, highlight=False, markup=False)


def emit_json(doc: Any) -> None:
    """Write one JSON document to stdout, bypassing rich so nothing is wrapped or styled."""
    sys.stdout.write(json.dumps(doc, ensure_ascii=False, indent=2, default=str) + "\n")
    sys.stdout.flush()


@contextmanager
def progress_bar(enabled: bool, label: str) -> Iterator[Any]:
    """A progress callback (phase, done, total) that draws a bar on stderr when it is a terminal."""
    if not enabled or not err.is_terminal:
        yield None
        return
    bar = Progress(TextColumn(f"{label} [progress.description]{{task.description}}"), BarColumn(),
                   DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(), console=err, transient=True)
    tasks: dict[str, int] = {}

    def update(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            tasks[phase] = bar.add_task(phase, total=total)
        bar.update(tasks[phase], completed=done, total=total)

    with bar:
        yield update


def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"
