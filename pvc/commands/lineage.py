"""`pvc graph`: the lineage of this project and of every project linked to it, as text or a page."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from pvc.commands.common import JsonOpt, ProjectOpt, open_project
from pvc.errors import BadInput
from pvc.output import emit_json, out

app = typer.Typer()


@app.command()
def graph(
    fmt: Annotated[str, typer.Option("--format", help="mermaid, dot or html (a self-contained page).")] = "mermaid",
    output_file: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.", show_default=False)] = None,
    project: ProjectOpt = Path("."),
    json_out: JsonOpt = False,
) -> None:
    """Draw the lineage: the versions of this project and of every project restored from it (or it from)."""
    with open_project(project) as p:
        text = p.graph_text(fmt)
        lineage = p.graph() if json_out else None
    if output_file is not None:
        _write_output(output_file, text)
    if json_out:
        emit_json(lineage.to_json() | {"format": fmt, "output": str(output_file.resolve()) if output_file else None})
    elif output_file is not None:
        out.print(f"Wrote the {fmt} graph to {output_file}", markup=False)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


def _write_output(path: Path, text: str) -> None:
    """Write the whole file or nothing (a temp file beside it, renamed)."""
    tmp = path.with_name(f".{path.name}.pvc-tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise BadInput(path, f"cannot write ({exc.strerror or exc})") from None
