"""The `pvc` command's entry point.

`pvc status` and `pvc commit` on a project nobody touched since its latest version are answered here, from
the stat cache's tree record and the C walk (pvc/core/fastpath.py), before typer, rich and the store are
imported: loading them costs more than the walk. Everything else, and every status or commit with something
to report or anything unusual, goes to the full command line in pvc/cli.py, which gives the same answer,
only later.
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
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except OSError:  # a closed pipe: what could be said was said
                pass
        os._exit(code)
    sys.exit(code)


def main(argv: list[str] | None = None) -> int:
    return _main(sys.argv[1:] if argv is None else argv)[0]


def _main(args: list[str]) -> tuple[int, bool]:
    try:
        answered = _answer_untouched(args)
    except BrokenPipeError:  # stdout closed early (`| head`): exit 1 quietly, as click does for the CLI
        return 1, True
    except (KeyboardInterrupt, OSError) as exc:  # said as the CLI says it
        from pvc.cli import _fail

        if isinstance(exc, KeyboardInterrupt):
            return _fail("interrupted", 130, "Interrupted", args), True
        return _fail(exc.strerror or str(exc), 1, "OSError", args), True
    if answered is not None:
        return answered, True
    from pvc.cli import main as cli_main

    return cli_main(args), False


# The options each answered command accepts (with a value, or a flag); any other sends it to the CLI.
_VALUED = {
    "status": {"-C": "project", "--project": "project"},
    "commit": {"-C": "project", "--project": "project", "-m": "message", "--message": "message",
               "--description": "description", "--author": "author", "--lock-timeout": "lock_timeout"},
}


def _options(args: list[str]) -> dict[str, str] | None:
    """`args` after the command as {name: value} (`--json` as a flag), or None for anything unexpected."""
    command, rest, found = args[0], list(args[1:]), {}
    while rest:
        arg = rest.pop(0)
        if arg == "--json":
            found["json"] = "1"
            continue
        name, eq, value = arg.partition("=")
        key = _VALUED[command].get(name) if name.startswith("--") or not eq else None
        if key is None or key in found:
            return None  # --help, --description-json, --allow-invalid, unknown or repeated options
        if not eq:
            if not rest or rest[0].startswith("-"):
                return None  # left to the CLI's own parsing
            value = rest.pop(0)
        found[key] = value
    return found


def _answer_untouched(args: list[str]) -> int | None:
    """0 after printing what `pvc status` / `pvc commit` print on an untouched project, else None."""
    if not args or args[0] not in _VALUED:
        return None
    options = _options(args)
    if options is None:
        return None
    project = options.get("project", ".")
    if args[0] == "status":
        from pvc.core.fastpath import clean_status

        report = clean_status(project)
        if report is None:
            return None
        doc, line = report, f"nothing to commit: working tree matches v{report['from']}"  # as render_changes
    else:
        try:
            float(options.get("lock_timeout", "0"))
        except ValueError:
            return None  # the CLI's usage error
        from pvc.core.fastpath import unchanged_commit

        result = unchanged_commit(project)
        if result is None:
            return None
        doc, line = result.to_json(), "\n".join([result.unchanged_line(), *result.notes()])
    if "json" in options:  # as pvc.output.emit_json writes it
        import json

        sys.stdout.write(json.dumps(doc, ensure_ascii=False, indent=2, default=str) + "\n")
    else:
        sys.stdout.write(line + "\n")
    sys.stdout.flush()
    return 0
