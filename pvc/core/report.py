"""The status/diff report document (the JSON contract in docs/cli.md), built in one place."""

from __future__ import annotations

from typing import Any

__all__ = ["change_report", "clean_report", "no_meta_changes", "class_table"]


def no_meta_changes() -> dict[str, list]:
    return {"classes_added": [], "classes_removed": [], "classes_changed": [], "tags_added": [], "tags_removed": [],
            "tags_changed": []}


def class_table(before: dict, after: dict) -> dict:
    """Objects per class, before -> after, for every class on either side."""
    return {c: {"before": before.get(c, 0), "after": after.get(c, 0)} for c in sorted(set(before) | set(after))}


def change_report(source: Any, target: Any, *, clean: bool, datasets_added: list, datasets_removed: list,
                  items_added: list, items_removed: list, items_modified: list, files: dict[str, list],
                  classes_before: dict, classes_after: dict, meta: dict) -> dict:
    return {
        "from": source,
        "to": target,
        "clean": clean,
        "datasets": {"added": datasets_added, "removed": datasets_removed},
        "items": {"added": items_added, "removed": items_removed, "modified": items_modified},
        "files": files,
        "classes": class_table(classes_before, classes_after),
        "meta": meta,
    }


def clean_report(source: Any, target: Any, classes: dict) -> dict:
    """Nothing changed between `source` and `target`, whose objects per class are `classes`."""
    return change_report(source, target, clean=True, datasets_added=[], datasets_removed=[], items_added=[],
                         items_removed=[], items_modified=[], files={"added": [], "removed": [], "modified": []},
                         classes_before=classes, classes_after=classes, meta=no_meta_changes())
