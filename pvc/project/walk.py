"""What a scan skips (`.pvcignore`, other tools' folders), and the scan's stat records, from Python or from C.

The stat records of a scan are bytes: for every file, sorted by path, `path NUL` and its size, mtime, inode and
ctime as little-endian 64-bit integers. `stat_records` makes them from a Python scan (pvc/project/scan.py);
`native_stat_records` makes the same bytes with the C walk in pvc/_walk.c, which lists the tree with the same
rules and stats the files in several threads, several times faster. Their digest (`tree_digest`) is how
`status` and `commit` recognise a tree nobody touched.

This module imports nothing heavy (no pathlib, no dataclasses): `pvc status` starts the C walk from here
before loading the rest of pvc, which then loads while the walk runs.
"""

from __future__ import annotations

import os
import struct

from pvc.errors import BadInput

TYPE_CHECKING = False  # (not typing's: imported before the C walk starts; pvc/core/fastpath.py)

if TYPE_CHECKING:
    from collections.abc import Iterable

try:  # built from pvc/_walk.c at install; without it (no compiler) the Python scan does all the work
    from pvc import _walk
except ImportError:  # pragma: no cover - depends on the install
    _walk = None

__all__ = ["ALWAYS_IGNORED", "IGNORE_FILE", "Ignore", "NATIVE_WALK", "RECORD", "stat_records", "native_walk",
           "native_stat_records", "followed_symlinks", "tree_digest"]

IGNORE_FILE = ".pvcignore"
# At the project root: the store, what a killed `pvc init` may leave, and other tools' repositories
# (a project kept in git next to pvc must not version git's object store).
ALWAYS_IGNORED = (".pvc", ".pvc.init-tmp", ".git", ".hg", ".svn", ".dvc")
NATIVE_WALK = _walk is not None


class Ignore:
    """`.pvcignore` patterns, one a line: `name` matches a file or folder name anywhere, `a/b*` matches
    a path from the project root, a trailing `/` matches folders only, `#` starts a comment."""

    def __init__(self, patterns: list[str]) -> None:
        self.patterns = [p for p in (line.strip() for line in patterns) if p and not p.startswith("#")]
        if self.patterns:  # most projects have none, and then fnmatch (and re) is not imported
            from fnmatch import fnmatchcase

            self._fnmatch = fnmatchcase

    @classmethod
    def load(cls, root: str | os.PathLike) -> Ignore:
        path = os.path.join(root, IGNORE_FILE)
        try:
            with open(path, encoding="utf-8") as f:
                return cls(f.read().splitlines())
        except FileNotFoundError:
            return cls([])
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInput(path, f"unreadable ({exc.__class__.__name__})") from None

    def matches(self, relpath: str, is_dir: bool) -> bool:
        if not self.patterns:
            return False
        name = relpath.rsplit("/", 1)[-1]
        for pattern in self.patterns:
            dir_only = pattern.endswith("/")
            pat = pattern.rstrip("/")
            if dir_only and not is_dir:
                continue
            target = relpath if "/" in pat else name
            if self._fnmatch(target, pat.lstrip("/")):
                return True
        return False


RECORD = struct.Struct("<QqQq")  # size, mtime_ns, inode, ctime_ns: the layout pvc/_walk.c writes


def stat_records(files: Iterable) -> bytes:
    """The scan as bytes (`files` have relpath, size, mtime_ns, ino and ctime_ns)."""
    pack = RECORD.pack
    return b"".join(f.relpath.encode() + b"\0" + pack(f.size, f.mtime_ns, f.ino, f.ctime_ns)
                    for f in sorted(files, key=lambda f: f.relpath))


def native_walk(root: str | os.PathLike, ignore: Ignore) -> tuple[bytes, bytes] | None:
    """`stat_records(scan(root, ignore))` from the C walk, with one byte of flags per file (1: executable,
    2: reached through a symlink; `followed_symlinks` counts them), or None
    when it cannot stand in for `scan`: not built, a `.pvcignore` pattern with `[` (fnmatch's sets are not
    reimplemented in C), or a tree holding something `scan` reports or follows specially (then `scan`
    runs and says what)."""
    if _walk is None:
        return None
    patterns = []
    for pattern in ignore.patterns:
        if "[" in pattern:
            return None
        pat = pattern.rstrip("/")
        patterns.append((pat.lstrip("/").encode(), pattern.endswith("/"), "/" in pat))
    return _walk.walk(os.fsencode(root), tuple(n.encode() for n in ALWAYS_IGNORED), tuple(patterns))


def native_stat_records(root: str | os.PathLike, ignore: Ignore) -> bytes | None:
    walked = native_walk(root, ignore)
    return None if walked is None else walked[0]


def followed_symlinks(flags: bytes) -> int:
    """How many files of a C walk were reached through a symlink (flag 2, with or without 1)."""
    return len(flags) - len(flags.translate(None, b"\x02\x03"))


def tree_digest(records: bytes) -> bytes:
    import blake3  # here: the Python scan and its users never need it

    return blake3.blake3(records).digest()
