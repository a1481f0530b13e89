"""pvc: version machine-learning dataset projects in a local content-addressed store.

`pvc.Project` is the entry point (see pvc/api.py). It is imported on first use, so that
`import pvc.errors` or `python -m pvc --help` does not load the whole store.
"""

from pvc.errors import (
    BadInput,
    CorruptObject,
    Locked,
    NotAProject,
    ObjectMissing,
    PvcError,
    RemoteConflict,
    RemoteError,
    TooManyFiles,
    UsageError,
    VersionNotFound,
)

__version__ = "0.1.0"
__all__ = [
    "Project", "VersionApi", "restore", "clone", "PvcError", "UsageError", "NotAProject", "VersionNotFound", "BadInput",
    "ObjectMissing", "CorruptObject", "Locked", "RemoteConflict", "RemoteError", "TooManyFiles", "__version__",
]


def __getattr__(name: str):
    if name in ("Project", "VersionApi", "restore", "clone"):
        from pvc import api

        return getattr(api, name)
    raise AttributeError(f"module 'pvc' has no attribute {name!r}")
