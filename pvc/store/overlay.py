"""An object store that writes nothing: new structured objects stay in memory, files are read in place.

`status`, `diff` and the dry run of `discard` capture the working tree through it, so the working tree
can be compared with a version by the same code that compares two versions, and the store is untouched.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

import blake3

from pvc.errors import CorruptObject
from pvc.store import objects
from pvc.store.store import ObjectStore

__all__ = ["OverlayStore"]

_BLOCK = 4 << 20


class OverlayStore:
    """Reads fall through to `base`; writes are kept in memory (objects) or as paths (files)."""

    def __init__(self, base: ObjectStore) -> None:
        self.base = base
        self._objects: dict[bytes, bytes] = {}
        self._files: dict[bytes, Path] = {}

    def put_object(self, obj: dict) -> bytes:
        data = objects.encode(obj)
        oid = objects.hash_bytes(data)
        self._objects.setdefault(oid, data)
        return oid

    def put_file(self, path: Path, size: int, on_data=None) -> bytes:
        """The file's id, hashed in place (streamed for large files); nothing is copied."""
        with open(path, "rb") as f:
            if size < self.base.chunk_threshold:
                data = f.read()
                if on_data is not None:
                    on_data(data)
                oid = objects.hash_bytes(data)
            else:
                hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
                while block := f.read(_BLOCK):
                    hasher.update(block)
                oid = hasher.digest()
        self._files.setdefault(oid, path)
        return oid

    def has(self, oid: bytes) -> bool:
        return oid in self._objects or oid in self._files or self.base.has(oid)

    def get(self, oid: bytes, *, verify: bool = True) -> bytes:
        if oid in self._objects:
            return self._objects[oid]
        if oid in self._files:
            data = self._files[oid].read_bytes()
            if verify and objects.hash_bytes(data) != oid:
                raise CorruptObject(f"{self._files[oid]}: changed while pvc was reading it")
            return data
        return self.base.get(oid, verify=verify)

    def get_object(self, oid: bytes, what: str = "object") -> dict:
        return objects.decode(self.get(oid), f"{what} {oid.hex()}")

    def write_to(self, oid: bytes, out: BinaryIO) -> int:
        if oid in self._objects or oid in self._files:
            data = self.get(oid)
            out.write(data)
            return len(data)
        return self.base.write_to(oid, out)

    def file_of(self, oid: bytes) -> Path | None:
        """The working-tree file an id was read from, if it came from there."""
        return self._files.get(oid)

    def read(self, oid: bytes) -> bytes:
        buf = io.BytesIO()
        self.write_to(oid, buf)
        return buf.getvalue()
