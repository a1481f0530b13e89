"""What status, diff and commit report (the JSON contract in docs/cli.md), built in one place: the full
commands and the answers pvc/entry.py gives on an untouched project use the same definitions."""

from __future__ import annotations

from typing import Any

from pvc.record import record
from pvc.store.refs import VersionRecord

__all__ = ["change_report", "clean_report", "no_meta_changes", "class_table", "CommitResult"]


@record(frozen=True)
class CommitResult:
    version: VersionRecord
    created: bool
    files_hashed: int
    bytes_hashed: int
    warnings: tuple[str, ...] = ()  # the new version's (its manifest's); none when nothing was created
    followed_symlinks: int = 0  # files reached through a symlink (versioned as the files they point to)

    @property
    def number(self) -> int:
        return self.version.number

    @property
    def manifest(self) -> str:
        return self.version.manifest

    def to_json(self) -> dict[str, Any]:
        return {"version": self.number, "created": self.created, "manifest": self.manifest,
                "files_hashed": self.files_hashed, "bytes_hashed": self.bytes_hashed, "warnings": list(self.warnings),
                "followed_symlinks": self.followed_symlinks}

    def unchanged_line(self) -> str:
        """What `pvc commit` says when the project is the latest version."""
        return f"Nothing changed: version {self.number} ({self.manifest[:12]}) is the latest"

    def notes(self) -> list[str]:
        """The lines `pvc commit` prints after its first, whatever answered it."""
        if not self.followed_symlinks:
            return []
        return [f"followed {self.followed_symlinks} symlinks to files: their targets' content is versioned, "
                "and restores as regular files"]


def no_meta_changes() -> dict[str, list]:
    return {"classes_added": [], "classes_removed": [], "classes_changed": [], "tags_added": [], "tags_removed": [],
            "tags_changed": []}


def class_table(before: dict, after: dict) -> dict:
    """Objects per class, before -> after, for every class on either side."""
    return {c: {"before": before.get(c, 0), "after": after.get(c, 0)} for c in sorted(set(before) | set(after))}


def change_report(source: Any, target: Any, *, clean: bool, datasets_added: list, datasets_removed: list,
                  items_added: list, items_removed: list, items_modified: list, files: dict[str, list],
                  classes_before: dict, classes_after: dict, meta: dict, problems: list | None = None) -> dict:
    """`problems`: the working tree's files a commit would refuse, as {"path", "problem"} (none between versions)."""
    return {
        "from": source,
        "to": target,
        "clean": clean,
        "datasets": {"added": datasets_added, "removed": datasets_removed},
        "items": {"added": items_added, "removed": items_removed, "modified": items_modified},
        "files": files,
        "classes": class_table(classes_before, classes_after),
        "meta": meta,
        "problems": problems or [],
    }


def clean_report(source: Any, target: Any, classes: dict) -> dict:
    """Nothing changed between `source` and `target`, whose objects per class are `classes`."""
    return change_report(source, target, clean=True, datasets_added=[], datasets_removed=[], items_added=[],
                         items_removed=[], items_modified=[], files={"added": [], "removed": [], "modified": []},
                         classes_before=classes, classes_after=classes, meta=no_meta_changes())
