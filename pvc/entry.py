"""The `pvc` command's entry point.

`pvc status` and `pvc commit` are answered here, before typer and the CLI are imported: on a project nobody
touched since its latest version from the stat cache's tree record and the C walk alone (pvc/core/fastpath.py);
on a changed project with the report of pvc/core/status.py, and the commit of pvc/core/commit.py under the lock the
check took, both from the check's walk. Their text is printed as the CLI prints it: plain where rich would print
plain text (pvc/render.py), else by the CLI's own renderer and progress bar (pvc/output.py, rich without typer).
So are `pvc --version`, `pvc log` and `pvc tag --list` (from the refs alone), `pvc show` (the refs, the manifest
and its trees) and `pvc diff A B --stat` / `--json` (the diff of two versions, pvc/core/diff.py), printed by
pvc/render.py, which the CLI prints them with too. The global options before the command (`-C DIR`, as git has
it, and `--version`) are read here the way pvc/cli.py reads them. Everything else, and every status or commit with
anything unusual (a taken lock, a damaged store, an option the CLI must check), goes to the full command line in
pvc/cli.py, which gives the same answer, only later.
"""

from __future__ import annotations

import os
import sys

__all__ = ["main", "run"]


def run() -> None:
    """The console script: `main`, then exit. After an answer given here, the interpreter's teardown (which
    costs as much as the answer) is skipped: output is flushed, and nothing else is pending."""
    from pvc.core.tuning import for_this_process

    for_this_process()  # fewer cyclic collections: a short process making many small objects that live to its end
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
    except (KeyboardInterrupt, Exception) as exc:  # said as the CLI says it (a commit's own errors among them)
        from pvc.cli import failed

        return failed(exc, args), True
    if answered is not None:
        return answered, True
    from pvc.cli import main as cli_main

    return cli_main(args), False


# The options each answered command accepts (with a value, or a flag); any other sends it to the CLI.
_VALUED = {
    "status": {"-C": "project", "--project": "project"},
    "commit": {"-C": "project", "--project": "project", "-m": "message", "--message": "message",
               "--description": "description", "--author": "author", "--lock-timeout": "lock_timeout"},
    "log": {"-C": "project", "--project": "project", "-n": "limit", "--limit": "limit", "--author": "author",
            "--grep": "grep", "--since": "since", "--until": "until"},
    "show": {"-C": "project", "--project": "project"},
    "tag": {"-C": "project", "--project": "project"},
    "diff": {"-C": "project", "--project": "project"},
}
_FLAGS = {"log": {"--tag": "tagged", "--all": "all"}, "tag": {"--list": "list", "-l": "list"}, "diff": {"--stat": "stat"}}
_POSITIONAL = {"show": ("version",), "diff": ("first", "second")}  # the arguments a command answered here may have


def _options(args: list[str]) -> dict[str, str] | None:
    """`args` after the command as {name: value} (`--json` as a flag), or None for anything unexpected."""
    command, rest, found = args[0], list(args[1:]), {}
    while rest:
        arg = rest.pop(0)
        flag = "json" if arg == "--json" else _FLAGS.get(command, {}).get(arg)
        if flag is not None:
            if flag in found:
                return None
            found[flag] = "1"
            continue
        free = [name for name in _POSITIONAL.get(command, ()) if name not in found]
        if not arg.startswith("-") and free:
            found[free[0]] = arg
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


def _global_options(args: list[str]) -> tuple[str, bool, bool, list[str]] | None:
    """(the folder `-C` options lead to, --version, --json, the rest from the command on); None when the folder
    does not exist (the CLI says so) or an option is malformed."""
    folder, version, as_json, rest = ".", False, False, list(args)
    while rest and rest[0].startswith("-"):
        arg = rest.pop(0)
        if arg == "-C" or (arg.startswith("-C") and len(arg) > 2):
            value = arg[2:] or (rest.pop(0) if rest else None)
            if value is None:
                return None
            folder = os.path.join(folder, value)  # an absolute value starts over, as chdir would
            if not os.path.isdir(folder):
                return None
        elif arg == "--version":
            version = True
        elif arg == "--json":
            as_json = True
        else:
            return None
    return folder, version, as_json, rest


def _answer_untouched(args: list[str]) -> int | None:
    """0 after printing what `pvc --version`, or `pvc status` / `pvc commit` on an untouched project, print;
    else None."""
    found = _global_options(args)
    if found is None:
        return None
    folder, version, as_json, args = found
    if version:
        from pvc import __version__

        return _say({"version": __version__} if as_json else None, f"pvc {__version__}")
    if as_json or not args or args[0] not in _VALUED:
        return None
    options = _options(args)
    if options is None:
        return None
    project = os.path.join(folder, options.get("project", "."))
    if args[0] == "log":
        return _answer_log(project, options)
    if args[0] == "show":
        return _answer_show(project, options)
    if args[0] == "tag":
        return _answer_tags(project, options)
    if args[0] == "diff":
        return _answer_diff(project, options)
    if args[0] == "status":
        return _answer_status(project, "json" in options)
    try:
        float(options.get("lock_timeout", "0"))
    except ValueError:
        return None  # the CLI's usage error
    return _answer_commit(project, options)


def _answer_status(project: str, as_json: bool) -> int | None:
    """`pvc status` from the check's walk (pvc/core/fastpath.py: the stat-only answer of an untouched project, else
    the report of pvc/core/status.py, the function the CLI calls), printed as the CLI prints it: JSON, plain text
    where rich would print plain text (pvc/render.py), else by the CLI's own renderer (rich, without typer)."""
    from pvc.core.fastpath import clean_status

    report = clean_status(project, changed=True)
    if report is None:
        return None
    return _say(report, "") if as_json else _print_changes(report)


def _answer_commit(project: str, options: dict[str, str]) -> int | None:
    """`pvc commit` under the lock the check takes, from its walk (pvc/core/fastpath.py), printed as the CLI prints
    it; on a terminal with the CLI's progress bar (rich, without typer)."""
    from contextlib import nullcontext

    from pvc.core.fastpath import unchanged_commit
    from pvc.render import plain_console

    as_json = "json" in options
    bar = nullcontext()
    if not as_json and not plain_console(os.environ, sys.stderr):  # where the CLI draws a bar
        from pvc.output import progress_bar

        bar = progress_bar(True, "commit")
    with bar as progress:
        result = unchanged_commit(project, changed=True, title=options.get("message", ""),
                                  description=options.get("description"),
                                  author=options.get("author") or os.environ.get("PVC_AUTHOR"), progress=progress)
    if result is None:
        return None
    if as_json:
        return _say(result.to_json(), "")
    from pvc.render import created_line, plain_text

    lines = [created_line(result) if result.created else result.unchanged_line(), *result.notes()]
    text = None if result.warnings else plain_text(lines)
    if text is not None:
        return _say(None, text)
    from pvc.output import err, out

    for line in lines:
        out.print(line)
    for warning in result.warnings:
        err.print(f"warning: {warning}")
    return 0


def _answer_log(project: str, options: dict[str, str]) -> int | None:
    """`pvc log` from the refs alone (pvc/core/fastpath.py), printed by the renderer the CLI uses (pvc/render.py);
    None for anything the CLI must say instead (no project, a bad config or option, damaged refs)."""
    from pvc.core.fastpath import quick_log

    try:
        limit = int(options["limit"]) if "limit" in options else None
    except ValueError:
        return None
    entries = quick_log(project, limit=limit, author=options.get("author"), grep=options.get("grep"),
                        since=options.get("since"), until=options.get("until"), tagged="tagged" in options,
                        include_deleted="all" in options)
    if entries is None:
        return None
    if "json" in options:
        return _say([e.to_json() for e in entries], "")
    from pvc.render import log_text

    return _say(None, log_text(entries, any(k in options for k in ("author", "grep", "since", "until", "tagged"))))


def _answer_show(project: str, options: dict[str, str]) -> int | None:
    """`pvc show [VERSION]` from the refs, the manifest and the trees, printed by pvc/render.py as the CLI prints
    it; None for anything the CLI must say instead."""
    from pvc.core.fastpath import quick_show

    found = quick_show(project, options.get("version", "latest"))
    if found is None:
        return None
    from pvc.render import show_json, show_text

    details, tags = found
    return _say(show_json(details, tags), "") if "json" in options else _say(None, show_text(details, tags))


def _answer_tags(project: str, options: dict[str, str]) -> int | None:
    """`pvc tag` / `pvc tag --list`: the tags from the refs alone."""
    from pvc.core.fastpath import quick_tags

    tags = quick_tags(project)
    if tags is None:
        return None
    if "json" in options:
        return _say([t.to_json() for t in tags], "")
    from pvc.render import tags_text

    return _say(None, tags_text(tags))


def _answer_diff(project: str, options: dict[str, str]) -> int | None:
    """`pvc diff A B --stat` and `pvc diff A B --json` (with or without --stat: the whole report, as the CLI
    prints it): the report of pvc.core.diff that the CLI prints, the summary and class table rendered as
    pvc.output.render_changes renders them (pvc/render.py; by rich itself where rich would style or wrap them).
    The text needs no semantic annotation diffs: the annotations are read, not parsed. None for every other
    form of diff (the full text listing, a diff against the working tree) and for anything the CLI must say."""
    if "second" not in options or not ("stat" in options or "json" in options):
        return None
    from pvc.core.fastpath import quick_diff

    report = quick_diff(project, options["first"], options["second"], details="json" in options)
    if report is None:
        return None
    return _say(report, "") if "json" in options else _print_changes(report, stat=True)


def _print_changes(report: dict, *, stat: bool = False) -> int:
    """Print a status or diff report's text as pvc.output.render_changes prints it: plain where rich would print
    plain text (pvc/render.py), else by render_changes itself; 0."""
    from pvc.render import changes_text

    text = changes_text(report, stat=stat)
    if text is None:
        from pvc.output import render_changes

        render_changes(report, stat=stat)
        return 0
    return _say(None, text)


def _say(doc: object, line: str) -> int:
    """Print `doc` as pvc.output.emit_json writes it, or else `line`; 0."""
    from pvc.render import emit_json, write_out

    if doc is not None:
        emit_json(doc)
    else:
        write_out(line + "\n")
    return 0
