"""Plain-text renderings shared by the full command line (pvc/cli.py) and the entry point (pvc/entry.py): no rich,
no typer, so a command the entry point answers prints exactly what the CLI prints, without loading them."""

from __future__ import annotations

import errno
import json
import os
import re
import sys
from typing import Any

__all__ = ["created_line", "emit_json", "indented_json", "write_out", "print_columns", "human_bytes", "log_text",
           "show_text", "show_json", "tags_text", "selection_text", "CLASS_HEADER", "changes_headline",
           "changed_classes", "change_lines", "changes_text", "plain_console", "plain_line", "plain_text"]


def emit_json(doc: Any) -> None:
    """Write one JSON document to stdout, bypassing rich so nothing is wrapped or styled."""
    write_out(indented_json(doc) + "\n")


def indented_json(doc: Any) -> str:
    """`json.dumps(doc, ensure_ascii=False, indent=2, default=str)`, the same text in half the time: with an indent,
    `json` encodes in Python through a generator per container (11 ms of a 20k project's dirty `status --json`);
    here one recursive function appends the pieces, and strings are escaped by json's own C function. (A document
    that holds itself, which pvc never builds, ends in RecursionError where json says "Circular reference".)"""
    out: list[str] = []
    add = out.append

    def encode(o: Any, pad: str) -> None:
        if isinstance(o, str):
            add(_quoted(o))
        elif o is None:
            add("null")
        elif o is True:
            add("true")
        elif o is False:
            add("false")
        elif isinstance(o, int):
            add(int.__repr__(o))
        elif isinstance(o, float):
            add(_float_text(o))
        elif isinstance(o, dict):
            if not o:
                add("{}")
                return
            inner = pad + "  "
            lead = "{\n" + inner
            for key, value in o.items():
                add(lead + _quoted(key if isinstance(key, str) else _key_text(key)) + ": ")
                lead = ",\n" + inner
                encode(value, inner)
            add("\n" + pad + "}")
        elif isinstance(o, (list, tuple)):
            if not o:
                add("[]")
                return
            inner = pad + "  "
            lead = "[\n" + inner
            for value in o:
                add(lead)
                lead = ",\n" + inner
                encode(value, inner)
            add("\n" + pad + "]")
        else:
            encode(str(o), pad)

    encode(doc, "")
    return "".join(out)


_quoted = json.encoder.encode_basestring  # (the C escaper, as json.dumps(..., ensure_ascii=False) uses)


def _float_text(f: float) -> str:
    if f != f:
        return "NaN"
    if f == _INFINITY or f == -_INFINITY:
        return "Infinity" if f > 0 else "-Infinity"
    return float.__repr__(f)


_INFINITY = float("inf")


def _key_text(key: Any) -> str:
    """A dict key as json writes it: the text of a number, `true`, `false` or `null`; any other key is json's
    TypeError."""
    if key is True or key is False or key is None:
        return {True: "true", False: "false", None: "null"}[key]
    if isinstance(key, int):
        return int.__repr__(key)
    if isinstance(key, float):
        return _float_text(key)
    raise TypeError(f"keys must be str, int, float, bool or None, not {key.__class__.__name__}")


def write_out(text: str) -> None:
    """Write `text` to stdout whole, or raise: a pipe its reader closed gives BrokenPipeError. (A buffered write
    larger than the pipe can return having written part of it, without an error, when the reader goes away.)"""
    stream = sys.stdout
    raw = getattr(stream, "buffer", None)
    if raw is None:  # a text stream of its own (a test's capture)
        stream.write(text)
        stream.flush()
        return
    stream.flush()
    view = memoryview(text.encode(stream.encoding or "utf-8", stream.errors or "strict"))
    while view:
        written = raw.write(view)
        if not written:
            raise BrokenPipeError(errno.EPIPE, "standard output took nothing")
        view = view[written:]
    raw.flush()


def _encodable(text: str, stream: Any) -> bool:
    """Whether `stream` can encode `text`; where it cannot, rich prints what it can and a hint."""
    try:
        text.encode(getattr(stream, "encoding", None) or "utf-8", getattr(stream, "errors", None) or "strict")
    except (UnicodeError, LookupError):
        return False
    return True


def columns(header: list[str], rows: list[list[str]]) -> str:
    """A plain aligned table: a rich Table takes ~0.6 ms a row, too slow for a long `pvc log`."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header, *rows])


def print_columns(header: list[str], rows: list[list[str]]) -> None:
    sys.stdout.write(columns(header, rows) + "\n")
    sys.stdout.flush()


def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


def created_line(result: Any) -> str:
    """What `pvc commit` says of the version it created (`result`: a pvc.core.report.CommitResult)."""
    stats = result.version.stats
    return (f"Created version {result.number} ({result.manifest[:12]}): {stats.get('items', 0)} items, "
            f"{stats.get('files', 0)} files, {human_bytes(stats.get('bytes'))}; "
            f"hashed {result.files_hashed} files ({human_bytes(result.bytes_hashed)})")


def log_text(entries: list, filtered: bool) -> str:
    """What `pvc log` prints for `entries` (pvc.core.log.LogEntry, newest first); `filtered`: a filter was given."""
    if not entries:
        return "No versions match." if filtered else "No versions yet (run `pvc commit`)."
    header = ["version", "created (UTC)", "title", "tags", "items", "size", "manifest", "author"]
    rows = [[f"v{e.record.number}" + (" (deleted)" if e.record.deleted else ""), when(e.record.created_at),
             e.record.title, ", ".join(e.tags), str(e.record.stats.get("items", "")),
             human_bytes(e.record.stats.get("bytes")), e.record.manifest[:12], e.record.author] for e in entries]
    if any(e.record.origin for e in entries):
        header.append("origin")
        for row, e in zip(rows, entries):
            row.append(origin_text(e.record.origin) if e.record.origin else "")
    return columns(header, rows)


def when(iso: str) -> str:
    return iso.replace("T", " ").replace("+00:00", "")


def origin_text(origin: dict) -> str:
    part = " (partial)" if origin.get("selection") else ""
    return f"{origin.get('project')} v{origin.get('version')}{part}"


def show_json(details, tags: list[str]) -> dict:
    """`pvc show --json` of `details` (pvc.core.inspect.VersionDetails) and the version's tags."""
    return details.record.to_json() | {"tags": tags, "project_type": details.project_type, "layout": details.layout,
                                       "stats": details.stats, "datasets": details.datasets,
                                       "problems": details.problems, "warnings": details.warnings}


def show_text(details, tags: list[str]) -> str:
    """What `pvc show` prints."""
    rec, s = details.record, details.stats
    lines = [f"version {rec.number}  {rec.title}", f"manifest  {rec.manifest}",
             f"created   {rec.created_at} by {rec.author}"]
    lines += [f"edited    {rec.edited_at}"] if rec.edited_at else []
    lines += [f"tags      {', '.join(tags)}"] if tags else []
    lines += [f"parent    v{rec.parent}"] if rec.parent else []
    if rec.origin:
        o = rec.origin
        lines.append(f"origin    restored from {o.get('project')} v{o.get('version')} (store {str(o.get('store'))[:12]}, "
                     f"manifest {str(o.get('manifest'))[:12]}) at {o.get('restored_at')}")
        if o.get("selection"):
            lines.append(f"          partial: {selection_text(o['selection'])}")
    if rec.description:
        text = json.dumps(rec.description, ensure_ascii=False) if isinstance(rec.description, dict) else rec.description
        lines.append(f"description  {text}")
    kind = ("generic folder project (no meta.json)" if details.layout == "generic"
            else f"Supervisely {details.project_type} project")
    lines.append(f"layout    {kind}")
    lines += [f"warning {w}" for w in details.warnings]
    lines.append(f"content   {s.get('datasets')} datasets, {s.get('items')} items, {s.get('files')} files, "
                 f"{human_bytes(s.get('bytes'))}")
    if details.datasets:
        lines.append(columns(["dataset", "items", "files"],
                             [[ds["name"], str(ds["items"]), str(ds["files"])] for ds in details.datasets]))
    if s.get("classes"):
        lines.append(columns(["class", "objects"], [[name, str(n)] for name, n in s["classes"].items()]))
    lines += [f"problem {p['dataset']}/{p['item']}: {p['problem']}" for p in details.problems]
    if s.get("problems", 0) > len(details.problems):
        lines.append(f"... and {s['problems'] - len(details.problems)} more problems")
    return "\n".join(lines)


def selection_text(selection: dict) -> str:
    parts = [f"{key} {', '.join(values)}" for key, values in selection.items() if values]
    return "; ".join(parts) or "everything"


def tags_text(tags: list) -> str:
    """What `pvc tag --list` prints (pvc.core.tag.TagView, by name)."""
    if not tags:
        return "No tags."
    return columns(["tag", "version", "title"], [[t.tag, f"v{t.version}", t.title] for t in tags])


CLASS_HEADER = ("class", "before", "after")


def side(label: Any) -> str:
    """How a status or diff report names one of its sides."""
    return "working tree" if label == "working" else "(no version)" if label is None else f"v{label}"


def changes_headline(report: dict) -> str:
    """The first line `pvc status` and `pvc diff` print of a report (pvc.output.render_changes)."""
    if report["clean"]:
        return (f"nothing to commit: {side(report['to'])} matches {side(report['from'])}" if report["to"] == "working"
                else f"no differences between {side(report['from'])} and {side(report['to'])}")
    items, files = report["items"], report["files"]
    return (f"{side(report['from'])} -> {side(report['to'])}: {len(items['added'])} items added, "
            f"{len(items['removed'])} removed, {len(items['modified'])} modified; "
            f"{sum(len(v) for v in files.values())} other files changed")


def changed_classes(report: dict) -> list[tuple[str, str, str]]:
    """The rows of the objects-per-class table a report prints: the classes whose count changed."""
    return [(name, str(v["before"]), str(v["after"])) for name, v in report["classes"].items()
            if v["before"] != v["after"]]


# Cells rich prints as they are: printable ASCII, no `:` (rich turns `:name:` into an emoji), no space at either end
# or twice in a row (where rich could wrap)
_PLAIN_CELL = re.compile(r"[!-9;-~](?: ?[!-9;-~])*")
_DIGITS = re.compile(r"[0-9]+")
_EMOJI_LIKE = re.compile(r":\S*:")


def changes_text(report: dict, *, stat: bool = False, environ: Any = os.environ, stream: Any = None) -> str | None:
    """What `pvc status` and `pvc diff` print of a report (pvc.output.render_changes, which prints each line and
    draws the class table with rich) when rich would print it as plain text; None when rich would print something
    else: styles (stdout is a terminal, or FORCE_COLOR / TTY_COMPATIBLE say so), a line rich would change (`:name:`
    emoji codes, tabs, control characters), a table wider than its console or with cells it would change, problems
    to print on stderr. Then the caller has rich print it."""
    if report["problems"]:
        return None
    lines = [changes_headline(report)]
    if not report["clean"] and not stat:
        lines += change_lines(report)
    rows = changed_classes(report) if not report["clean"] else []
    if not rows:
        return plain_text(lines, environ, stream)
    table = [CLASS_HEADER, *rows]
    if not all(_PLAIN_CELL.fullmatch(cell) for row in table for cell in row):
        return None
    widths = [max(len(row[i]) for row in table) for i in range(len(CLASS_HEADER))]
    width = _console_width(environ)
    if width is None or sum(w + 2 for w in widths) > width:
        return None  # rich would shrink and wrap the table
    lines += ["".join(f" {cell.ljust(w)} " for cell, w in zip(row, widths)) for row in table]
    return plain_text(lines, environ, stream)


def plain_text(lines: list[str], environ: Any = os.environ, stream: Any = None) -> str | None:
    """`lines` joined, as pvc.output's console prints them one by one to `stream` (stdout), when it prints them as
    they are: no styles there (`plain_console`), every line `plain_line`, every character one the stream can
    encode; else None, and the caller has rich print them."""
    stream = sys.stdout if stream is None else stream
    text = "\n".join(lines)
    plain = plain_console(environ, stream) and all(plain_line(line) for line in lines) and _encodable(text, stream)
    return text if plain else None


def change_lines(report: dict) -> list[str]:
    """The lines pvc.output.render_changes prints between the headline and the class table."""
    items, ds, files = report["items"], report["datasets"], report["files"]
    lines = [f"  dataset added    {name}" for name in ds["added"]]
    lines += [f"  dataset removed  {name}" for name in ds["removed"]]
    lines += [f"  + {i['dataset']}/{i['item']}" for i in items["added"]]
    lines += [f"  - {i['dataset']}/{i['item']}" for i in items["removed"]]
    for i in items["modified"]:
        objects = i.get("objects")
        counts = f"  objects +{objects['added']} -{objects['removed']} ~{objects['changed']}" if objects else ""
        lines.append(f"  ~ {i['dataset']}/{i['item']}  ({', '.join(i['changed'])}){counts}")
    for kind, mark in (("added", "+"), ("removed", "-"), ("modified", "~")):
        lines += [f"  {mark} {path}" for path in files[kind]]
    lines += [f"  meta.json {key.replace('_', ' ')}: {', '.join(values)}" for key, values in report["meta"].items()
              if values]
    return lines


def plain_line(line: str) -> bool:
    """Whether rich prints `line` (markup and highlighting off, pvc.output) as it is: printable characters only (no
    tab, which it expands, no control character, which it strips), and no two `:` with only non-spaces between
    (where it looks for its `:name:` emoji codes)."""
    return line.isprintable() and _EMOJI_LIKE.search(line) is None


def plain_console(environ: Any, stream: Any) -> bool:
    """Whether rich's console (pvc.output.out) writes to `stream` without styles: rich.console.Console.is_terminal."""
    compatible = environ.get("TTY_COMPATIBLE", "")
    if compatible in ("0", "1"):
        return compatible == "0"
    force = environ.get("FORCE_COLOR")
    if force is not None:
        return force == ""
    try:
        return not stream.isatty()
    except (AttributeError, ValueError):
        return False  # let rich decide


def _console_width(environ: Any) -> int | None:
    """The width rich gives pvc.output.out (rich.console.Console.size); None where unsure."""
    columns = environ.get("COLUMNS")
    if columns is not None and columns.isdigit():
        return int(columns) if _DIGITS.fullmatch(columns) and int(columns) > 0 else None
    for fd in (0, 1, 2):
        try:
            width = os.get_terminal_size(fd).columns
        except (AttributeError, ValueError, OSError):
            continue
        return width or 80
    return 80
