"""The `pvc` command: thin typer commands that open the project, call the API once, and render.

Exit codes (docs/cli.md): 0 success (also "nothing changed"), 1 user error or bad input, 2 missing or
corrupt data (and `verify` finding any problem), 3 locked past --lock-timeout (and `unlock` while the
lock is held), 130 interrupted.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from pvc import __version__, output
from pvc.commands import lineage, versions
from pvc.commands.common import EndpointOpt, JsonOpt, LockTimeoutOpt, ProjectOpt, RegionOpt, VersionArg
from pvc.commands.common import open_project as _open
from pvc.commands.common import read_description as _read_description
from pvc.errors import PvcError, UsageError
from pvc.output import emit_json, err, human_bytes, out, print_columns, progress_bar, render_changes
from pvc.render import created_line, log_text, selection_text, show_json, show_text

app = typer.Typer(
    name="pvc",
    help="Version dataset projects (Supervisely format) in a local content-addressed store.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback(invoke_without_command=True)
def _global_options(
    ctx: typer.Context,
    directory: Annotated[list[Path] | None, typer.Option("-C", metavar="DIR", help="Run as if pvc was started in DIR (as git -C; repeatable, each relative to the previous).", show_default=False)] = None,
    version: Annotated[bool, typer.Option("--version", help="Print pvc's version and exit.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="With --version: print it as JSON.")] = False,
) -> None:
    """Version dataset projects (Supervisely format) in a local content-addressed store."""
    for folder in directory or []:
        try:
            os.chdir(folder)  # main() goes back to where it started
        except OSError as exc:
            raise UsageError(f"-C {folder}: {exc.strerror or exc}") from None
    if version:
        emit_json({"version": __version__}) if json_out else out.print(f"pvc {__version__}")
        raise typer.Exit(0)
    if json_out:
        raise UsageError("--json goes after the command, e.g. `pvc log --json` (before it, only with --version)")
    if ctx.invoked_subcommand is None:
        raise UsageError("missing command (see `pvc --help`)")

@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="Project directory.")] = Path("."),
    json_out: JsonOpt = False,
) -> None:
    """Create .pvc/ inside a project directory."""
    project = _open(path, init=True)
    doc = {"project": str(project.path), "store": str(project.path / ".pvc")}
    if json_out:
        emit_json(doc)
    else:
        out.print(f"Initialised empty pvc store in {doc['store']}")


@app.command()
def commit(
    message: Annotated[str, typer.Option("--message", "-m", help="Version title.")] = "",
    description: Annotated[str | None, typer.Option(help="Version description (text).")] = None,
    description_json: Annotated[Path | None, typer.Option("--description-json", "--meta-json", help="Description from a JSON object file (e.g. workflow metadata).")] = None,
    author: Annotated[str | None, typer.Option(help="Author (default: $PVC_AUTHOR or user@host).")] = None,
    allow_invalid: Annotated[bool, typer.Option(help="Store malformed annotations and unreadable media as bytes, without a summary.")] = False,
    lock_timeout: Annotated[float, typer.Option(help="Seconds to wait for another writer.")] = 60.0,
    project: ProjectOpt = Path("."),
    json_out: JsonOpt = False,
) -> None:
    """Snapshot the project as a new version (or report the latest one if nothing changed)."""
    if description is not None and description_json is not None:
        raise UsageError("give --description or --description-json, not both")
    desc: str | dict | None = _read_description(description_json) if description_json else description
    with _open(project) as p, progress_bar(not json_out, "commit") as progress:
        result = p.version.create(title=message, description=desc, author=author or os.environ.get("PVC_AUTHOR"),
                                  allow_invalid=allow_invalid, lock_timeout=lock_timeout, progress=progress)
    if json_out:
        emit_json(result.to_json())
        return
    out.print(created_line(result) if result.created else result.unchanged_line())
    for note in result.notes():
        out.print(note)
    for warning in result.warnings:
        err.print(f"warning: {warning}")


@app.command()
def log(
    limit: Annotated[int | None, typer.Option("-n", "--limit", min=1, help="Show only the newest N versions (after the filters).")] = None,
    author: Annotated[str | None, typer.Option(help="Only versions whose author contains this (case-insensitive).")] = None,
    grep: Annotated[str | None, typer.Option(help="Only versions whose title or description contains this (case-insensitive).")] = None,
    since: Annotated[str | None, typer.Option(help="Only versions created at or after: 2026-11-23, 2026-11-23T14:00, or 30d (ago).")] = None,
    until: Annotated[str | None, typer.Option(help="Only versions created at or before (a date includes its whole day).")] = None,
    tagged: Annotated[bool, typer.Option("--tag", help="Only versions that have a tag.")] = False,
    all_: Annotated[bool, typer.Option("--all", help="Also deleted versions (marked as such).")] = False,
    project: ProjectOpt = Path("."),
    json_out: JsonOpt = False,
) -> None:
    """List versions, newest first."""
    with _open(project) as p:
        entries = p.history(limit, author=author, grep=grep, since=since, until=until, tagged=tagged, include_deleted=all_)
    if json_out:
        emit_json([e.to_json() for e in entries])
        return
    sys.stdout.write(log_text(entries, filtered=bool(author or grep or since or until or tagged)) + "\n")


@app.command()
def show(
    version: VersionArg = "latest",
    project: ProjectOpt = Path("."),
    json_out: JsonOpt = False,
) -> None:
    """A version's record and statistics: datasets, items, files, bytes, objects per class."""
    with _open(project) as p:
        details = p.show(version)
        tags = p.tags_of(details.record.number)
    if json_out:
        emit_json(show_json(details, tags))
        return
    sys.stdout.write(show_text(details, tags) + "\n")


@app.command()
def restore(
    version: VersionArg,
    to: Annotated[Path, typer.Option("--to", help="New directory to create (must not exist or be empty).")],
    dataset: Annotated[list[str] | None, typer.Option("--dataset", help="Only this dataset and those nested in it (repeatable; full names such as val/sub).", show_default=False)] = None,
    class_: Annotated[list[str] | None, typer.Option("--class", help="Only items whose annotation has an object or tag of this class (repeatable).", show_default=False)] = None,
    include: Annotated[list[str] | None, typer.Option("--include", help="Only items with a file path or dataset/item name matching this glob (repeatable).", show_default=False)] = None,
    link: Annotated[bool, typer.Option(help="Give the new project a store that shares this one's objects and records its origin (--no-link: plain files).")] = True,
    skip_missing: Annotated[bool, typer.Option(help="Skip items whose objects are missing or corrupt, and report them.")] = False,
    verify: Annotated[bool, typer.Option(help="Re-hash every object before writing anything.")] = False,
    force: Annotated[bool, typer.Option(help="Replace a non-empty target directory.")] = False,
    lock_timeout: Annotated[float, typer.Option(help="Seconds to wait for the lock while linking.")] = 60.0,
    remote: Annotated[str | None, typer.Option(help="Restore straight from this remote: a remote's name, or a URL (then no project is needed).")] = None,
    endpoint: EndpointOpt = None,
    region: RegionOpt = None,
    project: ProjectOpt = Path("."),
    json_out: JsonOpt = False,
) -> None:
    """Materialise a version (or part of it) as a new project directory, byte for byte (from the store, or a remote)."""
    parts = {"datasets": dataset or (), "classes": class_ or (), "include": include or ()}
    with progress_bar(not json_out, "restore") as progress:
        if remote is not None and _is_url(remote):
            import pvc.api

            result = pvc.api.restore(remote, version, to, skip_missed_entities=skip_missing, endpoint=endpoint,
                                     region=region, verify=verify, force=force, progress=progress, **parts)
        else:
            if endpoint is not None or region is not None:
                raise UsageError("--endpoint and --region go with --remote URL (a named remote has its own)")
            with _open(project) as p:
                result = p.version.restore(version_id=version, dest=to, skip_missed_entities=skip_missing,
                                           verify=verify, force=force, link=link and remote is None, remote=remote,
                                           lock_timeout=lock_timeout, progress=progress, **parts)
    skipped = [{"dataset": s.dataset, "item": s.item, "reason": s.reason} | ({"path": s.path} if s.path else {})
               for s in result.skipped]
    if json_out:
        emit_json({"version": result.version, "target": result.target, "files": result.files,
                   "bytes": result.bytes, "skipped": skipped, "items": result.items, "datasets": result.datasets,
                   "selection": None if result.selection.whole else result.selection.to_json(),
                   "linked_store": result.linked_store, "origin": result.origin, "kept_aside": result.kept_aside})
        return
    out.print(f"Restored version {result.version} to {result.target}: {result.files} files, {human_bytes(result.bytes)}, "
              f"{result.items} items")
    if not result.selection.whole:
        out.print(f"chosen: {selection_text(result.selection.to_json())}; datasets restored: "
                  f"{', '.join(result.datasets) or 'none'}")
    if result.linked_store:
        out.print("it shares this store's objects and records where it came from: commit there to continue")
    for s in skipped:
        where = f"{s['dataset']}/{s['item']}" if s["item"] else s.get("path")
        err.print(f"skipped {where}: {s['reason']}")
    if result.kept_aside:
        err.print(f"warning: the old content of {result.target} could not be deleted; it is kept at {result.kept_aside}")


def _is_url(text: str) -> bool:
    return "://" in text or text.startswith(("/", "./", "../", "~"))


@app.command("ls")
def ls_(
    version: VersionArg = "latest",
    dataset: Annotated[str | None, typer.Argument(help="Only this dataset (and those nested in it).")] = None,
    project: ProjectOpt = Path("."),
    json_out: JsonOpt = False,
) -> None:
    """Items of a version with their metadata (read-only; nothing is restored)."""
    with _open(project) as p:
        items = p.ls(version, dataset)
    if json_out:
        emit_json([i.to_json() for i in items])
        return
    table = Table("dataset", "item", "size", "meta", "objects", box=None)
    for i in items:
        meta = i.meta
        dims = f"{meta['width']}x{meta['height']} {meta.get('mode', '')}" if "width" in meta else meta.get("format", "")
        objects = sum((i.annotation or {}).get("objects", {}).values()) if i.annotation else "-"
        table.add_row(i.dataset, i.item, human_bytes(i.size), str(dims), str(objects))
    out.print(table)


@app.command()
def cat(
    version: VersionArg,
    path: Annotated[str, typer.Argument(help="File path inside the project, e.g. train/ann/a.jpg.json.")],
    project: ProjectOpt = Path("."),
    json_out: JsonOpt = False,
) -> None:
    """Write one file of a version to stdout."""
    with _open(project) as p:
        if not json_out:  # stream: a file of a version may be larger than memory
            p.cat(version, path, sys.stdout.buffer)
            sys.stdout.buffer.flush()
            return
        record = p.version.get(version)
        data = p.read_file(record.number, path)
    doc: dict[str, Any] = {"version": record.number, "path": path, "size": len(data)}
    try:
        doc["text"] = data.decode("utf-8")
    except UnicodeDecodeError:
        doc["base64"] = base64.b64encode(data).decode()
    emit_json(doc)


@app.command()
def status(
    project: ProjectOpt = Path("."),
    json_out: JsonOpt = False,
) -> None:
    """What changed in the working project since the latest version (items, annotations, meta.json)."""
    with _open(project) as p:
        report = p.status()
    emit_json(report) if json_out else render_changes(report)


@app.command()
def diff(
    first: Annotated[str | None, typer.Argument(help="Version to compare from (default: latest).")] = None,
    second: Annotated[str | None, typer.Argument(help="Version to compare to (default: the working project).")] = None,
    stat: Annotated[bool, typer.Option(help="Only the summary and the objects-per-class table.")] = False,
    dataset: Annotated[str | None, typer.Option(help="Only this dataset (and those nested in it).")] = None,
    item: Annotated[str | None, typer.Option(help="Only items with this name.")] = None,
    project: ProjectOpt = Path("."),
    json_out: JsonOpt = False,
) -> None:
    """Item-level and semantic annotation differences between versions (or a version and the working project)."""
    with _open(project) as p:
        report = p.diff(first, second, dataset=dataset, item=item, details=json_out or not stat)
    emit_json(report) if json_out else render_changes(report, stat=stat)


@app.command()
def discard(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Really change the working project (otherwise only show).")] = False,
    undo: Annotated[bool, typer.Option(help="Bring back the state the last discard saved.")] = False,
    lock_timeout: Annotated[float, typer.Option(help="Seconds to wait for another writer.")] = 60.0,
    project: ProjectOpt = Path("."),
    json_out: JsonOpt = False,
) -> None:
    """Put the working project back to the latest version, saving what was there first (undo with --undo)."""
    with _open(project) as p:
        result = p.undo_discard(lock_timeout=lock_timeout) if undo else p.discard(apply=yes, lock_timeout=lock_timeout)
    if json_out:
        emit_json(result.to_json())
        return
    if not result.applied:
        if result.changes and not result.changes["clean"]:
            render_changes(result.changes)
        out.print(f"would write back {len(result.restored)} files and remove {len(result.removed)}; "
                  "run `pvc discard --yes` to do it (the current state is saved first)")
        return
    out.print(f"wrote back {len(result.restored)} files, removed {len(result.removed)}")
    if result.saved_state and not undo:
        out.print(f"saved the discarded state as {result.saved_state}; bring it back with `pvc discard --undo`")


@app.command()
def verify(
    sample: Annotated[float, typer.Option(help="Re-hash only this percentage of the objects, chosen at random.")] = 100.0,
    lock_timeout: LockTimeoutOpt = 60.0,
    project: ProjectOpt = Path("."),
    json_out: JsonOpt = False,
) -> None:
    """Re-hash every object and resolve every reference of every version; exit 2 if anything is wrong."""
    with _open(project, check_config=False) as p:  # config problems are reported, not fatal
        report = p.verify(sample, lock_timeout=lock_timeout)
    if json_out:
        emit_json(report.to_json())
    else:
        hashed = f"{report.hashed} of {report.records} records re-hashed" + (f" ({report.sample:.0%} sample)" if report.sample < 1 else "")
        out.print(f"Checked {report.versions} versions: {report.packs} packs ({human_bytes(report.bytes)}), {hashed}, "
                  f"{report.indexes} index files, refs")
        if report.orphans or report.unindexed:
            out.print(f"{report.orphans} orphan objects and {report.unindexed} unindexed records (no version needs them; `pvc gc` removes them)")
        if report.temp_files:
            out.print(f"{report.temp_files} temporary files ({human_bytes(report.temp_bytes)}) left by writers that are gone "
                      "(`pvc gc` removes them)")
        for problem in report.problems:
            _print_problem(problem)
        out.print("No problems found." if report.ok else f"{len(report.problems)} problem(s) found.")
    if not report.ok:
        raise typer.Exit(2)


def _print_problem(problem) -> None:
    out.print(f"{problem.subject} ({problem.kind}): {problem.what}", markup=False)
    if not problem.affects:
        out.print("  affects no version", markup=False)
        return
    names = list(dict.fromkeys(f"{a['dataset']}/{a['item']}" if a["item"] else (a["path"] or "?") for a in problem.affects))
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    out.print(f"  affects {', '.join(problem.versions)}: {shown}", markup=False)


@app.command()
def gc(
    dry_run: Annotated[bool, typer.Option(help="Only say what would be freed.")] = False,
    grace: Annotated[str, typer.Option(help="Keep packs younger than this (e.g. 0, 30m, 1h, 2d).")] = "1h",
    lock_timeout: LockTimeoutOpt = 60.0,
    project: ProjectOpt = Path("."),
    json_out: JsonOpt = False,
) -> None:
    """Drop objects that no version, saved state or linked project needs; rewrite packs that are mostly dead."""
    with _open(project) as p:
        result = p.gc(dry_run=dry_run, grace=grace, lock_timeout=lock_timeout)
    if json_out:
        emit_json(result.to_json())
        return
    verb = "Would free" if result.dry_run else "Freed"
    out.print(f"{verb} {human_bytes(result.bytes_freed)} of {human_bytes(result.bytes_before)}: {result.objects_dropped} "
              f"objects, {result.packs_deleted} packs deleted, {result.packs_rewritten} rewritten"
              + ("" if result.dry_run else f" into {result.packs_written}")
              + f"; {result.reachable} objects reachable from {result.roots} roots"
              + (f"; {result.packs_kept_young} packs younger than --grace kept" if result.packs_kept_young else "")
              + (f"; {result.temp_files} temporary files ({human_bytes(result.temp_bytes)}) of writers that are gone "
                 + ("would be removed" if result.dry_run else "removed") if result.temp_files else ""))
    for linked in result.linked:
        if linked.state == "gone":
            verb = "would drop" if result.dry_run else "dropped"
            out.print(f"{verb} the link to {linked.registration.project}: {linked.reason}", markup=False)
        else:
            out.print(f"kept what the linked project {linked.path} needs ({linked.state})", markup=False)


@app.command()
def unlock(
    force: Annotated[bool, typer.Option(help="Clear what a dead holder on this host left; never a live lock.")] = False,
    project: ProjectOpt = Path("."),
    json_out: JsonOpt = False,
) -> None:
    """Say who holds the repository lock; exit 3 while someone does."""
    with _open(project) as p:
        result = p.unlock(force=force)
    if json_out:
        emit_json(result.to_json())
    else:
        out.print(result.message, markup=False)
    if result.held:
        raise typer.Exit(3)


@app.command()
def config(
    key: Annotated[str | None, typer.Argument(help="Setting, e.g. chunk_threshold or remotes.origin.url.")] = None,
    value: Annotated[str | None, typer.Argument(help="New value (sizes may be written 16MiB).")] = None,
    list_all: Annotated[bool, typer.Option("--list", help="Every setting with its value (the default without KEY).")] = False,
    unset: Annotated[bool, typer.Option("--unset", help="Remove KEY from the file: it takes its default.")] = False,
    lock_timeout: LockTimeoutOpt = 60.0,
    project: ProjectOpt = Path("."),
    json_out: JsonOpt = False,
) -> None:
    """Show or change the store's settings (.pvc/config), checked against the known keys."""
    if (list_all and (key or unset)) or (unset and (key is None or value is not None)):
        raise UsageError("give --list alone, KEY, KEY VALUE, or --unset KEY")
    with _open(project, check_config=False) as p:  # a config with problems must stay fixable
        if key is None:
            result = p.config_list()
        elif unset:
            result = p.config_unset(key, lock_timeout=lock_timeout)
        elif value is not None:
            result = p.config_set(key, value, lock_timeout=lock_timeout)
        else:
            result = p.config_get(key)
    if json_out:
        emit_json(result.to_json())
    elif key is None:
        print_columns(["key", "value", "default"],
                      [[e.key, _shown(e.value), "" if e.set else "(default)"] for e in result.entries])
        for bad_key, what in result.problems:
            err.print(f"problem: {result.path}: {bad_key}: {what}")
    elif unset:
        out.print(f"unset {key} (was {_shown(result.previous)}; now {_shown(result.value)})")
    elif value is not None:
        out.print(f"{key} = {_shown(result.value)}" + ("" if result.changed else " (unchanged)"))
    else:
        out.print(_shown(result.value))


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)

app.add_typer(versions.app)  # tag, edit, delete, prune
app.add_typer(lineage.app)  # graph

repair_app = typer.Typer(help="Recover from a damaged index or refs file (see docs/reliability.md).", no_args_is_help=True)
app.add_typer(repair_app, name="repair")


@repair_app.command("index")
def repair_index(
    lock_timeout: LockTimeoutOpt = 60.0,
    project: ProjectOpt = Path("."),
    json_out: JsonOpt = False,
) -> None:
    """Rebuild the index from the packs (every pack record names its object)."""
    with _open(project) as p:
        result = p.repair_index(lock_timeout=lock_timeout)
    if json_out:
        emit_json(result.to_json())
        return
    out.print(f"Rebuilt the index from {result.packs} packs: {result.objects} objects"
              + (f", {result.damaged} damaged records left out (run `pvc verify`)" if result.damaged else "")
              + f"; replaced {result.replaced} index files")


@repair_app.command("refs")
def repair_refs(
    lock_timeout: LockTimeoutOpt = 60.0,
    project: ProjectOpt = Path("."),
    json_out: JsonOpt = False,
) -> None:
    """Replace a damaged refs file by its backup, versions.bak (the damaged one is kept aside)."""
    with _open(project) as p:
        result = p.repair_refs(lock_timeout=lock_timeout)
    if json_out:
        emit_json(result.to_json())
        return
    if not result.repaired:
        out.print(f"The refs file is sound ({result.versions} versions); nothing to do.")
        return
    out.print(f"Restored the refs from versions.bak: {result.versions} versions; the damaged file is {result.damaged_copy}")
    if result.lost:
        lost = result.lost
        out.print(f"Version {lost['number']} ({lost['title']!r}, manifest {lost['manifest'][:12]}) was only in the damaged "
                  "file: its objects are still stored; commit the unchanged project again to recreate it, before any gc",
                  markup=False)


remote_app = typer.Typer(help="Remotes: where versions are shared (S3 buckets, folders). See docs/remote.md.",
                         no_args_is_help=True)
app.add_typer(remote_app, name="remote")


@remote_app.command("add")
def remote_add(
    name: Annotated[str, typer.Argument(help="Remote name, e.g. origin.")],
    url: Annotated[str, typer.Argument(help="s3://bucket/prefix, file:///path, or a folder.")],
    endpoint: EndpointOpt = None,
    region: RegionOpt = None,
    timeout: Annotated[float, typer.Option(help="Seconds a request may take, its retries included.")] = 60.0,
    retries: Annotated[int, typer.Option(help="Retries of a request that failed on a 5xx, a timeout or a reset.")] = 5,
    project: ProjectOpt = Path("."),
    json_out: JsonOpt = False,
) -> None:
    """Add a remote (its address only: credentials come from the environment)."""
    with _open(project) as p:
        info = p.remote.add(name, url, endpoint=endpoint, region=region, timeout=timeout, retries=retries)
    emit_json(info.to_json()) if json_out else out.print(f"Added remote {info.name}: {info.url}")


@remote_app.command("list")
def remote_list(project: ProjectOpt = Path("."), json_out: JsonOpt = False) -> None:
    """List the remotes."""
    with _open(project) as p:
        remotes = p.remote.list()
    if json_out:
        emit_json([r.to_json() for r in remotes])
    elif not remotes:
        out.print("No remotes (add one with `pvc remote add origin s3://bucket/prefix`).")
    else:
        print_columns(["name", "url", "endpoint", "region"], [[r.name, r.url, r.spec.endpoint or "", r.spec.region or ""] for r in remotes])


@remote_app.command("remove")
def remote_remove(
    name: Annotated[str, typer.Argument(help="Remote name.")],
    project: ProjectOpt = Path("."),
    json_out: JsonOpt = False,
) -> None:
    """Forget a remote (the remote itself is not touched)."""
    with _open(project) as p:
        info = p.remote.remove(name)
    emit_json(info.to_json()) if json_out else out.print(f"Removed remote {info.name} ({info.url})")


@app.command()
def push(
    remote: Annotated[str | None, typer.Argument(help="Remote name (default: origin, or the only remote).")] = None,
    lock_timeout: Annotated[float, typer.Option(help="Seconds to wait for another writer.")] = 60.0,
    project: ProjectOpt = Path("."),
    json_out: JsonOpt = False,
) -> None:
    """Send every version the remote lacks, with the objects they need (exit 4: pull first)."""
    with _open(project) as p, progress_bar(not json_out, "push") as progress:
        result = p.remote.push(remote, lock_timeout=lock_timeout, progress=progress)
    if json_out:
        emit_json(result.to_json())
        return
    if not result.pushed:
        behind = f"; it has {result.behind} versions this project lacks (`pvc pull`)" if result.behind > 0 else ""
        out.print(f"{result.remote.name} is up to date ({result.remote_versions} versions){behind}")
        return
    out.print(f"Pushed {_numbers(result.pushed)} to {result.remote.name}: {result.objects} objects, "
              f"{human_bytes(result.bytes_sent)} sent in {result.packs_sent} pack{'' if result.packs_sent == 1 else 's'}"
              + (f" ({result.packs_present} already there from an interrupted push)" if result.packs_present else ""))


@app.command()
def pull(
    remote: Annotated[str | None, typer.Argument(help="Remote name (default: origin, or the only remote).")] = None,
    versions: Annotated[str | None, typer.Option(help="Fetch the objects of these versions only, e.g. 3,5 (the records of all).")] = None,
    metadata_only: Annotated[bool, typer.Option(help="Fetch records, manifests, trees and pages, no file contents.")] = False,
    lock_timeout: Annotated[float, typer.Option(help="Seconds to wait for another writer.")] = 60.0,
    project: ProjectOpt = Path("."),
    json_out: JsonOpt = False,
) -> None:
    """Fetch the remote's versions and their objects into the store; the working tree is not touched."""
    wanted = _version_list(versions) if versions is not None else None
    with _open(project) as p, progress_bar(not json_out, "pull") as progress:
        result = p.remote.pull(remote, versions=wanted, metadata_only=metadata_only, lock_timeout=lock_timeout,
                               progress=progress)
    if json_out:
        emit_json(result.to_json())
        return
    if not result.fetched and not result.complete:
        out.print(f"Already up to date with {result.remote.name}")
        return
    out.print(f"Fetched {_numbers(result.fetched) or 'no new versions'} from {result.remote.name}: {result.objects} objects, "
              f"{human_bytes(result.bytes_received)}")
    for old, new in sorted(result.renumbered.items()):
        out.print(f"  local version {old} is now version {new} (not pushed yet)")
    if result.partial:
        out.print(f"  objects left on {result.remote.name}: {_numbers(result.partial)} (`pvc pull --versions N` brings them)")


@app.command()
def clone(
    url: Annotated[str, typer.Argument(help="s3://bucket/prefix, file:///path, or a folder.")],
    directory: Annotated[Path, typer.Argument(help="New project directory (must not exist, or be empty).")],
    version: Annotated[str | None, typer.Option(help="Version to check out (default: the latest).")] = None,
    dataset: Annotated[list[str] | None, typer.Option(help="Only this dataset (repeatable; nested names too).")] = None,
    endpoint: EndpointOpt = None,
    region: RegionOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """A new project from a remote: versions, `origin` set, one version checked out."""
    import pvc.api

    with progress_bar(not json_out, "clone") as progress:
        result = pvc.api.clone(url, directory, version=version, datasets=dataset, endpoint=endpoint, region=region,
                               progress=progress)
    if json_out:
        emit_json(result.to_json())
        return
    only = f" (datasets {', '.join(result.datasets)})" if result.datasets else ""
    out.print(f"Cloned {result.remote.url} into {result.project}: version {result.version} of {result.versions}{only}, "
              f"{result.files} files, {human_bytes(result.bytes)}; received {human_bytes(result.bytes_received)}")


def _version_list(text: str) -> list[int]:
    try:
        numbers = [int(part.strip().lstrip("vV")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"--versions {text!r}: give version numbers separated by commas, e.g. 3,5") from None
    if not numbers:
        raise UsageError("--versions: give at least one version number")
    return numbers


def _numbers(numbers: list[int]) -> str:
    return ", ".join(f"v{n}" for n in numbers)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run a command, turning every error into one line and its exit code."""
    args = sys.argv[1:] if argv is None else argv
    command = typer.main.get_command(app)
    start = os.getcwd()
    try:
        code = command.main(args=args, prog_name="pvc", standalone_mode=False)
        if code == 130:  # typer turns Ctrl-C into 130 instead of raising
            return _fail("interrupted", 130, "Interrupted", args)
        return code if isinstance(code, int) else 0
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        return _fail("interrupted", 130, "Interrupted", args)
    except typer.TyperException as exc:  # typer's own usage errors: unknown option, missing argument
        message = exc.format_message()
        return _fail(message, 1, "UsageError", args) if message else 0  # empty: `pvc` alone, help shown
    except (KeyboardInterrupt, Exception) as exc:  # PvcError among them: `failed` says each as it should be said
        return failed(exc, args)
    finally:
        os.chdir(start)  # `-C` changed it for this command only (a caller in the same process keeps its own)


def failed(exc: BaseException, args: list[str]) -> int:
    """Say what `exc` (raised by a command given `args`) means, in one line, and return the exit code (pvc/entry.py
    says the errors of the commands it answers with this too)."""
    if isinstance(exc, PvcError):
        return _fail(str(exc), exc.exit_code, type(exc).__name__, args)
    if isinstance(exc, KeyboardInterrupt):
        return _fail("interrupted", 130, "Interrupted", args)
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(f"{where}{exc.strerror or exc}", 1, "OSError", args)
    if os.environ.get("PVC_DEBUG") == "1":  # a bug: one line, the traceback only when asked for
        traceback.print_exception(exc)
    return _fail(f"internal error: {type(exc).__name__}: {exc} (set PVC_DEBUG=1 for the traceback)", 1, "InternalError", args)


def _fail(message: str, code: int, kind: str, args: list[str]) -> int:
    message = _without_secrets(message)
    output.err.print(f"pvc: error: {message}", markup=False, highlight=False)
    if "--json" in args:
        try:
            emit_json({"error": {"type": kind, "message": message, "exit_code": code}})
        except OSError:  # stdout is what failed (a closed pipe): stderr has said it
            pass
    return code



_SECRETS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID")


def _without_secrets(message: str) -> str:
    """Credentials are never printed, whatever a library put in an error message."""
    for name in _SECRETS:
        value = os.environ.get(name)
        if value and len(value) >= 4:
            message = message.replace(value, "***")
    return message


if __name__ == "__main__":
    sys.exit(main())
