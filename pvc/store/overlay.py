"""An object store that writes nothing: new objects stay in memory, files are read in place.

`status`, `diff` and the dry run of `discard` capture the working tree through it, so the working tree
can be compared with a version by the same code that compares two versions, and the store is untouched
(which is also why those commands work on a full disk or a store the user may only read).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import blake3

from pvc.errors import BadInput, CorruptObject
from pvc.store import objects
from pvc.store.backend import ObjectAccess, ObjectInfo, ObjectStore, T
from pvc.store.model import Page

__all__ = ["OverlayStore"]

_BLOCK = 4 << 20


class OverlayStore(ObjectAccess):
    """Reads fall through to `base`; writes are kept in memory (objects) or as paths (files)."""

    def __init__(self, base: ObjectStore) -> None:
        self.base = base
        self.chunk_threshold = base.chunk_threshold
        self._objects: dict[bytes, bytes] = {}
        self._typed: dict[bytes, Any] = {}  # the trees and manifests put here, so reading them back decodes nothing
        self._files: dict[bytes, tuple[Path, int]] = {}

    def put_object(self, obj: Any) -> bytes:
        oid = self.put(obj.encode())
        if not isinstance(obj, Page):  # pages (every item of a changed dataset) stay bytes; diff reads them so
            self._typed.setdefault(oid, obj)
        return oid

    def get_object(self, oid: bytes, cls: type[T]) -> T:
        obj = self._typed.get(oid)
        if type(obj) is cls:
            return obj
        return super().get_object(oid, cls)

    def put(self, data: bytes, *, compress: bool | None = None, quick: bool = False) -> bytes:
        oid = objects.hash_bytes(data)
        self._objects.setdefault(oid, bytes(data))
        return oid

    def put_file(self, path: Path, size: int, on_data: Callable[[bytes], None] | None = None) -> bytes:
        """The file's id, hashed in place (streamed for large files); nothing is copied."""
        try:
            with open(path, "rb") as f:
                if size < self.chunk_threshold:
                    data = f.read()
                    if on_data is not None:
                        on_data(data)
                    oid = objects.hash_bytes(data)
                else:
                    hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
                    while block := f.read(_BLOCK):
                        hasher.update(block)
                    oid = hasher.digest()
        except PermissionError:
            raise BadInput(path, "permission denied") from None
        self._files.setdefault(oid, (path, size))
        return oid

    def adopt(self, oid: bytes, path: str | Path, size: int) -> bool:
        """Take `path` as where object `oid` is, on the word of the stat cache (nothing is read now; a read checks
        the content against the id then)."""
        self._files.setdefault(oid, (path, size))
        return True

    def has(self, oid: bytes) -> bool:
        return oid in self._objects or oid in self._files or self.base.has(oid)

    def info(self, oid: bytes) -> ObjectInfo | None:
        if oid in self._objects:
            return ObjectInfo(len(self._objects[oid]), False, len(self._objects[oid]))
        if oid in self._files:
            size = self._files[oid][1]
            return ObjectInfo(size, False, size)
        return self.base.info(oid)

    def get(self, oid: bytes, *, verify: bool = True) -> bytes:
        if oid in self._objects:
            return self._objects[oid]
        if oid in self._files:
            path = self._files[oid][0]
            with open(path, "rb") as f:
                data = f.read()
            if verify and objects.hash_bytes(data) != oid:
                raise CorruptObject(f"{path}: changed while pvc was reading it")
            return data
        return self.base.get(oid, verify=verify)

    def read_range(self, oid: bytes, start: int, length: int) -> bytes:
        if oid in self._objects:
            return self._objects[oid][start : start + length]
        if oid in self._files:
            with open(self._files[oid][0], "rb") as f:
                f.seek(start)
                return f.read(length)
        return self.base.read_range(oid, start, length)

    def write_to(self, oid: bytes, out: BinaryIO) -> int:
        if oid in self._objects or oid in self._files:
            data = self.get(oid)
            out.write(data)
            return len(data)
        return self.base.write_to(oid, out)

    def chunk_list(self, oid: bytes) -> list[tuple[bytes, int]] | None:
        if oid in self._objects or oid in self._files:
            return None
        return self.base.chunk_list(oid)

    def iter_ids(self) -> Iterator[bytes]:
        yield from self._objects
        yield from (oid for oid in self._files if oid not in self._objects)
        yield from (oid for oid in self.base.iter_ids() if oid not in self._objects and oid not in self._files)

    def flush(self) -> None:
        """Nothing to make durable: an overlay never writes."""

    def abort(self) -> None:
        self._objects.clear()
        self._typed.clear()
        self._files.clear()

    def file_of(self, oid: bytes) -> Path | None:
        """The working-tree file an id was read from, if it came from there."""
        entry = self._files.get(oid)
        return Path(entry[0]) if entry else None
