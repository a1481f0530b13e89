"""tag: names for versions, kept in the refs file (`tags`: name -> version number).

A tag is usable wherever a version is named (restore, diff, show, ls, cat, edit, delete). Names are validated
so that none can be read as another kind of version name: no number or `v<number>`, not `latest`. A tag never
points at a deleted version: deleting a version removes its tags with it (pvc/core/delete.py).
"""

from __future__ import annotations

import re

from pvc.core.resolve import resolve_version
from pvc.errors import UsageError
from pvc.record import record, replace
from pvc.store.refs import RefsDoc
from pvc.store.repository import Repository

__all__ = ["TagChange", "TagView", "check_tag_name", "tag", "untag", "list_tags", "tags_by_version"]

MAX_TAG_LENGTH = 200
_NUMBERISH = re.compile(r"[vV]?\d+")


@record(frozen=True)
class TagChange:
    tag: str
    version: int
    previous: int | None = None  # the version a moved tag (`force`) pointed at before
    deleted: bool = False

    def to_json(self) -> dict:
        return {"tag": self.tag, "version": self.version, "previous": self.previous, "deleted": self.deleted}


@record(frozen=True)
class TagView:
    tag: str
    version: int
    title: str
    manifest: str

    def to_json(self) -> dict:
        return {"tag": self.tag, "version": self.version, "title": self.title, "manifest": self.manifest}


def check_tag_name(name: str) -> str:
    """`name` if it can be a tag; UsageError saying why not otherwise."""
    why = None
    if not name:
        why = "is empty"
    elif len(name) > MAX_TAG_LENGTH:
        why = f"is longer than {MAX_TAG_LENGTH} characters"
    elif any(c.isspace() or not c.isprintable() for c in name):
        why = "contains a space or a control character"
    elif name.strip("/") == "":
        why = "is only slashes"
    elif name.startswith("-"):
        why = "starts with a dash (it would read as an option)"
    elif _NUMBERISH.fullmatch(name):
        why = "is a version number"
    elif name == "latest":
        why = "is reserved (latest names the newest version)"
    if why:
        raise UsageError(f"{name[:80]!r} cannot be a tag: it {why}")
    return name


def tag(repo: Repository, name: str, version: str | int = "latest", *, force: bool = False,
        lock_timeout: float = 60.0) -> TagChange:
    """Name `version`; an existing tag is refused unless `force` moves it."""
    check_tag_name(name)
    with repo.lock(lock_timeout):
        refs = repo.refs.read()
        record = resolve_version(refs.versions, version, refs.tags)
        previous = refs.tags.get(name)
        if previous is not None and previous != record.number and not force:
            raise UsageError(f"tag {name!r} already names version {previous} (use --force to move it)")
        if previous != record.number:
            repo.refs.write(replace(refs, tags=refs.tags | {name: record.number}))
    return TagChange(name, record.number, previous if previous != record.number else None)


def untag(repo: Repository, name: str, *, lock_timeout: float = 60.0) -> TagChange:
    """Remove a tag (the version stays)."""
    with repo.lock(lock_timeout):
        refs = repo.refs.read()
        if name not in refs.tags:
            raise UsageError(f"no tag {name[:80]!r}" + (f" (tags: {', '.join(sorted(refs.tags))})" if refs.tags else ""))
        number = refs.tags[name]
        repo.refs.write(replace(refs, tags={k: v for k, v in refs.tags.items() if k != name}))
    return TagChange(name, number, deleted=True)


def list_tags(refs: RefsDoc) -> list[TagView]:
    """Every tag, by name, with its version's title and manifest."""
    return [TagView(name, n, refs.versions[n - 1].title, refs.versions[n - 1].manifest)
            for name, n in sorted(refs.tags.items()) if 1 <= n <= len(refs.versions)]


def tags_by_version(refs: RefsDoc) -> dict[int, list[str]]:
    """Version number -> its tags, sorted."""
    found: dict[int, list[str]] = {}
    for name, n in sorted(refs.tags.items()):
        found.setdefault(n, []).append(name)
    return found
