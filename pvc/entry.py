"""The `pvc` command's entry point.

`pvc status` on a project nobody touched since its latest version is answered here, from the stat cache's
tree record and the C walk (pvc/core/fastpath.py), before typer, rich and the store are imported: loading
them costs more than the walk. Everything else, and every status with something to report or anything
unusual, goes to the full command line in pvc/cli.py, which gives the same answer, only later.
"""

from __future__ import annotations

import os
import sys

__all__ = ["main", "run"]


def run() -> None:
    """The console script: `main`, then exit. After an answer given here, the interpreter's teardown (which
    costs as much as the answer) is skipped: output is flushed, and nothing else is pending."""
    code, answered = _main(sys.argv[1:])
    if answered:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def main(argv: list[str] | None = None) -> int:
    return _main(sys.argv[1:] if argv is None else argv)[0]


def _main(args: list[str]) -> tuple[int, bool]:
    answered = _untouched_status(args)
    if answered is not None:
        return answered, True
    from pvc.cli import main as cli_main

    return cli_main(args), False


def _untouched_status(args: list[str]) -> int | None:
    """0 after printing what `pvc status [--json] [-C DIR]` prints for a clean project, else None."""
    if not args or args[0] != "status":
        return None
    json_out, project, rest = False, ".", args[1:]
    while rest:
        arg = rest.pop(0)
        if arg == "--json":
            json_out = True
        elif arg in ("-C", "--project") and rest:
            project = rest.pop(0)
        elif arg.startswith("--project="):
            project = arg.split("=", 1)[1]
        else:
            return None  # --help, unknown options: the full command line answers
    from pvc.core.fastpath import clean_status

    report = clean_status(project)
    if report is None:
        return None
    if json_out:  # as pvc.output.emit_json writes it
        import json

        sys.stdout.write(json.dumps(report, ensure_ascii=False, indent=2, default=str) + "\n")
    else:  # as pvc.output.render_changes writes a clean report
        sys.stdout.write(f"nothing to commit: working tree matches v{report['from']}\n")
    sys.stdout.flush()
    return 0
