"""Where a project's store is: `.pvc/` in the project folder or in the nearest parent that has one.

Plain `os.path`, nothing heavier: `pvc status` looks here before the rest of pvc is imported.
"""

from __future__ import annotations

import os

__all__ = ["STORE_DIR", "find_project_root"]

STORE_DIR = ".pvc"


def find_project_root(start: str | os.PathLike) -> str | None:
    """The folder of `start` (made absolute, symlinks resolved) or of its nearest parent that has `.pvc/`."""
    candidate = os.path.realpath(start)
    while True:
        if os.path.isdir(os.path.join(candidate, STORE_DIR)):
            return candidate
        parent = os.path.dirname(candidate)
        if parent == candidate:
            return None
        candidate = parent
