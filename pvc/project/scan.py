"""Walk a project directory: every regular file under it, or a one-line error for what pvc cannot version.

Symlinks to regular files are followed (versioned by content, restored as regular files) and flagged, so that
commit can say how many it followed. A symlinked directory, a broken link, a FIFO, socket or device, or a name
that is not valid UTF-8 stops the walk with `BadInput` naming the path, unless `.pvcignore` excludes it.

The ignore rules, and the same walk in C, are in pvc/project/walk.py; `files_from_walk` turns the C walk's
result into what `scan` returns, several times faster.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from pvc.errors import BadInput
from pvc.project.walk import ALWAYS_IGNORED, IGNORE_FILE, RECORD, Ignore
from pvc.record import record

__all__ = ["FileInfo", "Ignore", "scan", "files_from_walk", "IGNORE_FILE"]


@record(frozen=True, slots=True)
class FileInfo:
    """One regular file of the project, as stat saw it."""

    relpath: str  # posix path relative to the project root
    prefix: str  # the project root and a slash, one string shared by every file of a scan (a path a file would
    # cost ~100 bytes each); str, not Path: building 50k Path objects costs more than the stat calls
    size: int
    mtime_ns: int
    ino: int
    ctime_ns: int
    executable: bool
    symlink: bool = False  # reached through a symbolic link to it (followed: the target's content is versioned)

    @property
    def abspath(self) -> str:
        return self.prefix + self.relpath

    @property
    def path(self) -> Path:
        return Path(self.prefix + self.relpath)


def scan(root: Path, ignore: Ignore | None = None) -> list[FileInfo]:
    """Every file under `root` (except `.pvc/` and ignored paths), sorted by relative path."""
    ignore = ignore or Ignore([])
    root_prefix = f"{root}/"
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
                found.append(_file_info(rel, root_prefix, st, entry.is_symlink()))
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


def _file_info(rel: str, prefix: str, st: os.stat_result, symlink: bool) -> FileInfo:
    return FileInfo(rel, prefix, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, bool(st.st_mode & 0o111), symlink)



def files_from_walk(root: Path, records: bytes, flags: bytes) -> list[FileInfo] | None:
    """What `scan(root)` returns, from the C walk's records and flags (`native_walk`); None for a name that is
    not UTF-8, which `scan` then reports."""
    files, prefix, unpack, at = [], f"{root}/", RECORD.unpack_from, 0
    try:
        for flag in flags:
            end = records.index(b"\0", at)
            rel = records[at:end].decode()
            size, mtime_ns, ino, ctime_ns = unpack(records, end + 1)
            files.append(FileInfo(rel, prefix, size, mtime_ns, ino, ctime_ns, bool(flag & 1), bool(flag & 2)))
            at = end + 1 + RECORD.size
    except UnicodeDecodeError:
        return None
    return files
