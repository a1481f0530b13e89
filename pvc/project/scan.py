"""Walk a project directory: every regular file under it, or a one-line error for what pvc cannot version.

Symlinks to regular files are followed (versioned by content, restored as regular files). A symlinked
directory, a broken link, a FIFO, socket or device, or a name that is not valid UTF-8 stops the walk with
`BadInput` naming the path, unless `.pvcignore` excludes it.

`stat_records` encodes a scan as bytes (each file's path, size, mtime, inode and ctime, sorted by path) and
`native_stat_records` produces the same bytes from the C walk in pvc/_walk.c, several times faster; their
digest (`tree_digest`) is how `status` and `commit` recognise a tree that nobody touched.
"""

from __future__ import annotations

import fnmatch
import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

import blake3

from pvc.errors import BadInput

try:  # built from pvc/_walk.c at install; without it (no compiler) the Python scan does all the work
    from pvc import _walk
except ImportError:  # pragma: no cover - depends on the install
    _walk = None
NATIVE_WALK = _walk is not None

__all__ = ["NATIVE_WALK", "FileInfo", "Ignore", "scan", "IGNORE_FILE", "stat_records", "native_stat_records", "tree_digest"]

IGNORE_FILE = ".pvcignore"
# At the project root: the store, what a killed `pvc init` may leave, and other tools' repositories
# (a project kept in git next to pvc must not version git's object store).
ALWAYS_IGNORED = (".pvc", ".pvc.init-tmp", ".git", ".hg", ".svn", ".dvc")


@dataclass(frozen=True, slots=True)
class FileInfo:
    """One regular file of the project, as stat saw it."""

    relpath: str  # posix path relative to the project root
    abspath: str  # a str, not a Path: building 50k Path objects costs more than the stat calls
    size: int
    mtime_ns: int
    ino: int
    ctime_ns: int
    executable: bool

    @property
    def path(self) -> Path:
        return Path(self.abspath)


class Ignore:
    """`.pvcignore` patterns, one a line: `name` matches a file or folder name anywhere, `a/b*` matches
    a path from the project root, a trailing `/` matches folders only, `#` starts a comment."""

    def __init__(self, patterns: list[str]) -> None:
        self.patterns = [p for p in (line.strip() for line in patterns) if p and not p.startswith("#")]

    @classmethod
    def load(cls, root: Path) -> Ignore:
        path = root / IGNORE_FILE
        try:
            return cls(path.read_text(encoding="utf-8").splitlines())
        except FileNotFoundError:
            return cls([])
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInput(path, f"unreadable ({exc.__class__.__name__})") from None

    def matches(self, relpath: str, is_dir: bool) -> bool:
        name = relpath.rsplit("/", 1)[-1]
        for pattern in self.patterns:
            dir_only = pattern.endswith("/")
            pat = pattern.rstrip("/")
            if dir_only and not is_dir:
                continue
            target = relpath if "/" in pat else name
            if fnmatch.fnmatchcase(target, pat.lstrip("/")):
                return True
        return False


def scan(root: Path, ignore: Ignore | None = None) -> list[FileInfo]:
    """Every file under `root` (except `.pvc/` and ignored paths), sorted by relative path."""
    ignore = ignore or Ignore([])
    found: list[FileInfo] = []
    stack = [("", root)]
    while stack:  # iterative: a 10k-deep tree must not hit the recursion limit
        prefix, directory = stack.pop()
        try:
            with os.scandir(directory) as listing:
                entries = list(listing)
        except OSError as exc:
            raise BadInput(directory, f"cannot list folder ({exc.strerror or exc})") from None
        for entry in entries:
            rel = f"{prefix}{entry.name}"
            if not prefix and entry.name in ALWAYS_IGNORED:
                continue
            if ignore.matches(rel, entry.is_dir(follow_symlinks=False)):
                continue
            _check_name(rel, entry.path)
            kind, st = _classify(entry)
            if kind == "dir":
                stack.append((rel + "/", entry.path))
            else:
                found.append(_file_info(rel, entry.path, st))
    found.sort(key=lambda f: f.relpath)
    return found


def _check_name(rel: str, path: str) -> None:
    if not rel.isascii() and not _encodable(rel):
        raise BadInput(os.fsencode(path).decode("utf-8", "backslashreplace"), "file name is not valid UTF-8")
    if "\\" in rel or "\n" in rel:
        raise BadInput(path, "file name contains a backslash or a newline, which pvc does not version")


def _encodable(name: str) -> bool:
    """False for names holding undecodable bytes (os.scandir maps them to lone surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _classify(entry: os.DirEntry) -> tuple[str, os.stat_result | None]:
    """'dir' or 'file' (with the followed stat), or BadInput for everything pvc refuses."""
    try:
        if entry.is_symlink():
            try:
                st = os.stat(entry.path)
            except OSError:
                raise BadInput(entry.path, "broken symlink (or a symlink loop)") from None
            if stat.S_ISDIR(st.st_mode):
                raise BadInput(entry.path, "symlink to a folder is not supported (replace it or list it in .pvcignore)")
            if stat.S_ISREG(st.st_mode):
                return "file", st
            raise BadInput(entry.path, "symlink to something that is not a regular file")
        st = entry.stat(follow_symlinks=False)
    except OSError as exc:
        raise BadInput(entry.path, f"cannot stat ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        return "dir", None
    if stat.S_ISREG(st.st_mode):
        return "file", st
    what = "FIFO" if stat.S_ISFIFO(st.st_mode) else "socket" if stat.S_ISSOCK(st.st_mode) else "device or special file"
    raise BadInput(entry.path, f"{what} is not a regular file (remove it or list it in .pvcignore)")


def _file_info(rel: str, path: str, st: os.stat_result) -> FileInfo:
    return FileInfo(rel, path, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, bool(st.st_mode & 0o111))


_RECORD = struct.Struct("<QqQq")  # size, mtime_ns, inode, ctime_ns: the layout pvc/_walk.c writes


def stat_records(files: list[FileInfo]) -> bytes:
    """The scan as bytes: per file, sorted by path, `path NUL` and four little-endian 64-bit integers."""
    pack = _RECORD.pack
    return b"".join(f.relpath.encode() + b"\0" + pack(f.size, f.mtime_ns, f.ino, f.ctime_ns)
                    for f in sorted(files, key=lambda f: f.relpath))


def native_stat_records(root: Path, ignore: Ignore) -> bytes | None:
    """`stat_records(scan(root, ignore))` from the C walk, or None when it cannot stand in for `scan`:
    not built, a `.pvcignore` pattern with `[` (fnmatch's sets are not reimplemented in C), or a tree
    holding something `scan` reports or follows specially (then `scan` runs and says what)."""
    if _walk is None:
        return None
    patterns = []
    for pattern in ignore.patterns:
        if "[" in pattern:
            return None
        pat = pattern.rstrip("/")
        patterns.append((pat.lstrip("/").encode(), pattern.endswith("/"), "/" in pat))
    return _walk.walk(os.fsencode(root), tuple(n.encode() for n in ALWAYS_IGNORED), tuple(patterns))


def tree_digest(records: bytes) -> bytes:
    return blake3.blake3(records).digest()
