"""Content-defined chunking: lossless, bounded sizes, deterministic, stable under edits, bounded memory."""

from __future__ import annotations

import io
import tracemalloc

import blake3
import pytest

from pvc.store.chunking import iter_chunks

MiB = 1 << 20
SMALL = {"avg_size": 16 << 10, "min_size": 4 << 10, "max_size": 64 << 10}


def random_bytes(n: int, seed: bytes = b"seed", offset: int = 0) -> bytes:
    """Deterministic pseudo-random bytes (blake3 XOF), fast enough for tens of MiB."""
    return blake3.blake3(seed).digest(length=n, seek=offset)


def chunks_of(data: bytes, **sizes) -> list[bytes]:
    return list(iter_chunks(io.BytesIO(data), **sizes))


def ids(chunks: list[bytes]) -> list[bytes]:
    return [blake3.blake3(c).digest() for c in chunks]


class TrickleReader(io.RawIOBase):
    """Returns at most `step` bytes per read, to show boundaries do not depend on read sizes."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data, self._pos, self._step = data, 0, step

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        n = min(len(buf), self._step, len(self._data) - self._pos)
        buf[:n] = self._data[self._pos : self._pos + n]
        self._pos += n
        return n


class GeneratedFile(io.RawIOBase):
    """A `size`-byte file whose content is generated on demand and never held whole."""

    def __init__(self, size: int) -> None:
        self._size, self._pos = size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        n = min(len(buf), MiB, self._size - self._pos)
        buf[:n] = random_bytes(n, b"generated", self._pos)
        self._pos += n
        return n


def test_concatenation_is_the_input_and_sizes_are_bounded():
    data = random_bytes(4 * MiB)
    chunks = chunks_of(data, **SMALL)
    assert b"".join(chunks) == data
    assert len(chunks) > 20
    assert all(SMALL["min_size"] <= len(c) <= SMALL["max_size"] for c in chunks[:-1])
    assert 0 < len(chunks[-1]) <= SMALL["max_size"]


def test_default_sizes_on_larger_input():
    data = random_bytes(24 * MiB)
    chunks = chunks_of(data)
    assert b"".join(chunks) == data
    assert all(256 << 10 <= len(c) <= 4 * MiB for c in chunks[:-1])
    assert 10 <= len(chunks) <= 40  # ~1.2 MiB mean


def test_max_size_cuts_uniform_data():
    data = bytes(1 * MiB)  # all zeros: the gear hash never hits, so every cut is at max_size
    chunks = chunks_of(data, **SMALL)
    assert b"".join(chunks) == data
    assert {len(c) for c in chunks[:-1]} == {SMALL["max_size"]}


@pytest.mark.parametrize("size", [0, 1, 100, (4 << 10) - 1])
def test_small_inputs(size):
    data = random_bytes(size)
    assert chunks_of(data, **SMALL) == ([data] if data else [])


def test_same_input_same_boundaries_whatever_the_read_sizes():
    data = random_bytes(2 * MiB)
    first = chunks_of(data, **SMALL)
    assert chunks_of(data, **SMALL) == first
    assert list(iter_chunks(TrickleReader(data, 997), **SMALL)) == first
    assert list(iter_chunks(io.BufferedReader(TrickleReader(data, 5000)), **SMALL)) == first


def test_insertion_keeps_most_chunks():
    data = random_bytes(24 * MiB)
    middle = len(data) // 2
    edited = data[:middle] + random_bytes(100, b"insert") + data[middle:]
    before, after = ids(chunks_of(data)), ids(chunks_of(edited))
    shared = set(before) & set(after)
    assert len(shared) >= 0.8 * len(before)
    assert len(set(after) - set(before)) <= 3


def test_in_place_edit_changes_few_chunks():
    data = random_bytes(24 * MiB)
    start = 12 * MiB
    edited = data[:start] + random_bytes(MiB, b"edit") + data[start + MiB :]
    before, after = chunks_of(data), chunks_of(edited)
    new = [c for c in after if blake3.blake3(c).digest() not in set(ids(before))]
    assert 1 <= len(new) <= 4
    assert sum(len(c) for c in new) <= MiB + 2 * 4 * MiB


def test_memory_stays_bounded():
    size = 64 * MiB
    tracemalloc.start()
    try:
        total = count = 0
        for chunk in iter_chunks(GeneratedFile(size)):
            total += len(chunk)
            count += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == size and count > 30
    assert peak < 20 * MiB  # buffer 2 x max_size + one chunk + one generated block


@pytest.mark.parametrize(
    "sizes",
    [
        {"avg_size": 1 << 20, "min_size": 2 << 20, "max_size": 4 << 20},  # min > avg
        {"avg_size": 8 << 20, "min_size": 1 << 20, "max_size": 16 << 20},  # avg above range
        {"avg_size": 1 << 20, "min_size": 256 << 10, "max_size": 32 << 20},  # max above range
    ],
)
def test_bad_sizes_raise(sizes):
    with pytest.raises(ValueError):
        list(iter_chunks(io.BytesIO(b"x"), **sizes))
