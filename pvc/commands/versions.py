"""The life of versions after commit: names (tag), words (edit), and going away (delete, prune)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from pvc.commands.common import JsonOpt, LockTimeoutOpt, ProjectOpt, VersionArg, open_project, read_description
from pvc.errors import UsageError
from pvc.output import emit_json, out
from pvc.render import tags_text

app = typer.Typer()


@app.command("tag")
def tag_(
    name: Annotated[str | None, typer.Argument(help="Tag name (no spaces, not a number, not `latest`).", show_default=False)] = None,
    version: Annotated[str | None, typer.Argument(help="Version to name (default: latest).", show_default=False)] = None,
    list_: Annotated[bool, typer.Option("--list", "-l", help="List the tags (also what `pvc tag` alone does).")] = False,
    delete: Annotated[bool, typer.Option("--delete", "-d", help="Remove the tag NAME (the version stays).")] = False,
    force: Annotated[bool, typer.Option("--force", "-f", help="Move NAME if it already names another version.")] = False,
    lock_timeout: LockTimeoutOpt = 60.0,
    project: ProjectOpt = Path("."),
    json_out: JsonOpt = False,
) -> None:
    """Name a version (usable wherever a version is), list the names, or remove one."""
    if delete and (name is None or version is not None or list_):
        raise UsageError("use `pvc tag -d NAME`")
    if list_ and name is not None:
        raise UsageError("`pvc tag --list` takes no name")
    with open_project(project) as p:
        if name is None:
            _print_tags(p.version.tags(), json_out)
            return
        if delete:
            change = p.version.untag(name, lock_timeout=lock_timeout)
        else:
            change = p.version.tag(name, version or "latest", force=force, lock_timeout=lock_timeout)
    if json_out:
        emit_json(change.to_json())
    elif change.deleted:
        out.print(f"Deleted tag {change.tag} (was v{change.version})", markup=False)
    else:
        moved = f" (moved from v{change.previous})" if change.previous else ""
        out.print(f"Tagged v{change.version} as {change.tag}{moved}", markup=False)


def _print_tags(tags, json_out: bool) -> None:
    if json_out:
        emit_json([t.to_json() for t in tags])
    else:
        sys.stdout.write(tags_text(tags) + "\n")


@app.command()
def edit(
    version: VersionArg,
    message: Annotated[str | None, typer.Option("--message", "-m", help="New title.", show_default=False)] = None,
    description: Annotated[str | None, typer.Option(help="New description (text).", show_default=False)] = None,
    description_json: Annotated[Path | None, typer.Option("--description-json", "--meta-json", help="New description from a JSON object file.", show_default=False)] = None,
    no_description: Annotated[bool, typer.Option("--no-description", help="Remove the description.")] = False,
    lock_timeout: LockTimeoutOpt = 60.0,
    project: ProjectOpt = Path("."),
    json_out: JsonOpt = False,
) -> None:
    """Change a version's title or description (its content never changes; edited_at is recorded)."""
    given = [name for name, on in (("--description", description is not None),
                                   ("--description-json", description_json is not None),
                                   ("--no-description", no_description)) if on]
    if len(given) > 1:
        raise UsageError(f"give only one of {' and '.join(given)}")
    changes: dict[str, Any] = {}
    if given:
        changes["description"] = read_description(description_json) if description_json else description
    with open_project(project) as p:
        record = p.version.update(version_id=version, title=message, lock_timeout=lock_timeout, **changes)
    if json_out:
        emit_json(record.to_json())
    else:
        out.print(f"Edited version {record.number}: {record.title}", markup=False)


@app.command()
def delete(
    versions: Annotated[list[str], typer.Argument(help="Versions to delete (numbers, tags, ...).", show_default=False)],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Really delete (otherwise only show what would go).")] = False,
    lock_timeout: LockTimeoutOpt = 60.0,
    project: ProjectOpt = Path("."),
    json_out: JsonOpt = False,
) -> None:
    """Delete versions: they leave the log (numbers stay taken), their tags go too; `pvc gc` then frees their space."""
    with open_project(project) as p:
        result = p.version.delete_many(versions, apply=yes, lock_timeout=lock_timeout)
    if json_out:
        emit_json(result.to_json())
        return
    names = ", ".join(f"v{n}" for n in result.versions)
    tags = f" and tags {', '.join(result.tags_removed)}" if result.tags_removed else ""
    if result.applied:
        out.print(f"Deleted {names}{tags}; run `pvc gc` to free their space", markup=False)
    else:
        out.print(f"would delete {names}{tags}; run again with --yes to do it", markup=False)


@app.command()
def prune(
    keep_last: Annotated[int | None, typer.Option(min=1, help="Keep the newest N versions.", show_default=False)] = None,
    keep_tagged: Annotated[bool, typer.Option(help="Keep every tagged version.")] = False,
    keep_within: Annotated[str | None, typer.Option(help="Keep versions created within this long (e.g. 30d, 12h).", show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option(help="Only say what would be deleted.")] = False,
    lock_timeout: LockTimeoutOpt = 60.0,
    project: ProjectOpt = Path("."),
    json_out: JsonOpt = False,
) -> None:
    """Delete every version that no --keep rule keeps (then `pvc gc` frees their space)."""
    with open_project(project) as p:
        result = p.prune(keep_last=keep_last, keep_tagged=keep_tagged, keep_within=keep_within, dry_run=dry_run,
                         lock_timeout=lock_timeout)
    if json_out:
        emit_json(result.to_json())
        return
    verb = "would delete" if result.dry_run else "deleted"
    gone = ", ".join(f"v{n}" for n in result.deleted) or "nothing"
    out.print(f"{verb} {gone}; kept {', '.join(f'v{n}' for n in result.kept) or 'nothing'}"
              + (f"; tags removed: {', '.join(result.tags_removed)}" if result.tags_removed else ""), markup=False)
