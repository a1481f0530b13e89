"""The one small protocol every object store implements, and what is derived from it once for all of them.

A store holds immutable objects named by their blake3 id. Implementations: the local packs (`store/local/`),
the overlay that keeps new objects in memory (`store/overlay.py`), and a remote on object storage
(`store/remote/`). Core code sees only this protocol: where the bytes are and how they are encoded stays inside
each implementation.

    has(oid)                 is the object there (staged writes count)
    info(oid)                its size, whether it is chunked, what it takes in the store; None if absent
    get(oid)                 its content, checked against its id
    read_range(oid, start, length)   part of its content (chunked objects read only the chunks needed)
    write_to(oid, out)       stream its content into a file, checked against its id as it goes
    chunk_list(oid)          the (chunk id, length) pairs of a chunked object; None for an object stored whole
    put(data) / put_file(path, size)   store content; staged until flush
    iter_ids()               every object id
    flush() / abort()        make staged objects durable and visible / forget them
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, Protocol, TypeVar

from pvc.errors import ObjectMissing
from pvc.record import record

__all__ = ["ObjectInfo", "ObjectStore", "ObjectAccess", "NullWriter", "T"]

T = TypeVar("T")


@record(frozen=True, slots=True)
class ObjectInfo:
    size: int  # length of the content
    chunked: bool  # stored as a list of chunks (each an object of its own)
    stored: int  # bytes the object takes in the store (a chunk list counts only itself)


class ObjectStore(Protocol):
    chunk_threshold: int

    def has(self, oid: bytes) -> bool: ...
    def info(self, oid: bytes) -> ObjectInfo | None: ...
    def get(self, oid: bytes, *, verify: bool = True) -> bytes: ...
    def read_range(self, oid: bytes, start: int, length: int) -> bytes: ...
    def write_to(self, oid: bytes, out: BinaryIO) -> int: ...
    def chunk_list(self, oid: bytes) -> list[tuple[bytes, int]] | None: ...
    def put(self, data: bytes, *, compress: bool | None = None, quick: bool = False) -> bytes: ...
    def put_file(self, path: Path, size: int, on_data: Callable[[bytes], None] | None = None) -> bytes: ...
    def iter_ids(self) -> Iterator[bytes]: ...
    def flush(self) -> None: ...
    def abort(self) -> None: ...

    # derived, see ObjectAccess
    def get_object(self, oid: bytes, cls: type[T]) -> T: ...
    def put_object(self, obj: Any) -> bytes: ...
    def prefetch(self, oids: list[bytes]) -> None: ...
    def missing_parts(self, oid: bytes) -> list[bytes]: ...
    def check(self, oid: bytes) -> None: ...


class NullWriter:
    """A file that discards what is written (to re-hash an object without keeping it)."""

    def write(self, data: bytes) -> int:
        return len(data)


class ObjectAccess:
    """What every store derives from the protocol: typed objects, missing parts, re-hashing."""

    def get_object(self, oid: bytes, cls: type[T]) -> T:
        """A structured object (Manifest, Tree, Page from pvc/store/model.py), checked and decoded."""
        return cls.decode(self.get(oid), oid)  # type: ignore[attr-defined]

    def put_object(self, obj: Any) -> bytes:
        """Store a structured object in its canonical encoding."""
        return self.put(obj.encode(), compress=True)  # type: ignore[attr-defined]

    def missing_parts(self, oid: bytes) -> list[bytes]:
        """Ids this object needs that the store lacks: itself, or chunks of a chunked object."""
        info = self.info(oid)  # type: ignore[attr-defined]
        if info is None:
            return [oid]
        if not info.chunked:
            return []
        return [cid for cid, _ in self.chunk_list(oid) if not self.has(cid)]  # type: ignore[attr-defined]

    def check(self, oid: bytes) -> None:
        """Re-hash one object (and every chunk of it) without keeping it in memory."""
        self.write_to(oid, NullWriter())  # type: ignore[attr-defined]

    def prefetch(self, oids: list[bytes]) -> None:
        """A hint: the objects of `oids` are about to be read one by one. A store that pays per request (a remote)
        reads them now, neighbours together; any other does nothing. Reads give the same answers either way."""

    def require_info(self, oid: bytes) -> ObjectInfo:
        info = self.info(oid)  # type: ignore[attr-defined]
        if info is None:
            raise ObjectMissing(f"object {oid.hex()} is missing from the store")
        return info
