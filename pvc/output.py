"""Terminal output: one JSON document on stdout with --json, rich tables otherwise; progress on a TTY only."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from pvc.render import CLASS_HEADER, change_lines, changed_classes, changes_headline, emit_json, human_bytes, print_columns

__all__ = ["out", "err", "emit_json", "progress_bar", "human_bytes", "render_changes", "print_columns"]

# Markup is off: names, titles and paths are user data and may contain "[...]"; styled lines opt in.
out = Console(soft_wrap=True, highlight=False, markup=False)
err = Console(stderr=True, soft_wrap=True, highlight=False, markup=False)


@contextmanager
def progress_bar(enabled: bool, label: str) -> Iterator[Any]:
    """A progress callback (phase, done, total) that draws a bar on stderr when it is a terminal."""
    if not enabled or not err.is_terminal:
        yield None
        return
    bar = Progress(TextColumn(f"{label}: {{task.description}}"), BarColumn(),
                   DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(), console=err, transient=True)
    tasks: dict[str, int] = {}

    def update(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            tasks[phase] = bar.add_task(phase, total=total)
        bar.update(tasks[phase], completed=done, total=total)

    with bar:
        yield update


def render_changes(report: dict, *, stat: bool = False) -> None:
    """Human rendering of a status/diff report: items, files, meta.json, then objects per class; the files a
    commit would refuse first, on stderr."""
    for problem in report["problems"]:
        err.print(f"problem: {problem['path']}: {problem['problem']} (`pvc commit` refuses it: fix it, "
                  "`pvc discard --yes` puts the committed file back, or commit with --allow-invalid)")
    out.print(changes_headline(report))
    if report["clean"]:
        return
    if not stat:
        for line in change_lines(report):
            out.print(line)
    changed = changed_classes(report)
    if changed:
        table = Table(*CLASS_HEADER, box=None)
        for row in changed:
            table.add_row(*row)
        out.print(table)
