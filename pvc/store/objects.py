"""Object ids and the canonical encoding of structured objects (trees, pages, manifests).

A structured object is a msgpack map with sorted keys, so equal content gives equal bytes and equal ids.
Its id is the blake3 of those msgpack bytes; a blob's id is the blake3 of the file's raw bytes.
"""

from __future__ import annotations

import re
from typing import Any

import blake3
import msgpack

from pvc.errors import CorruptObject

__all__ = ["ID_SIZE", "hash_bytes", "encode", "decode", "hex_id", "parse_hex_id", "canonical"]

ID_SIZE = 32
_HEX_ID = re.compile(r"[0-9a-f]{64}")


def hash_bytes(data: bytes | memoryview) -> bytes:
    """The 32-byte blake3 digest: the id of an object whose logical content is `data`."""
    return blake3.blake3(data, max_threads=blake3.blake3.AUTO if len(data) > (1 << 20) else 1).digest()


def canonical(value: Any) -> Any:
    """A copy of `value` with every map's keys sorted, tuples as lists: one encoding per content."""
    if isinstance(value, dict):
        return {k: canonical(value[k]) for k in sorted(value)}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return value


def encode(obj: dict) -> bytes:
    """Canonical msgpack bytes of a structured object."""
    return msgpack.packb(canonical(obj), use_bin_type=True)


def decode(data: bytes, what: str = "object") -> dict:
    """Parse a structured object, turning any decoder failure into a one-line CorruptObject."""
    try:
        obj = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types on garbage
        raise CorruptObject(f"{what}: not a valid msgpack object ({type(exc).__name__})") from None
    if not isinstance(obj, dict):
        raise CorruptObject(f"{what}: expected a map, found {type(obj).__name__}")
    return obj


def hex_id(oid: bytes) -> str:
    return oid.hex()


def parse_hex_id(text: str) -> bytes:
    """Validate a full hex id before it is used anywhere (e.g. as part of a path)."""
    if not _HEX_ID.fullmatch(text):
        raise CorruptObject(f"not an object id: {text[:80]!r}")
    return bytes.fromhex(text)
