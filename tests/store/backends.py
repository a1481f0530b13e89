"""The backends the store suite runs on; each gives a store, a way to open it again, and what it can do."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import pytest

from pvc.store.local.packstore import PackStore
from pvc.store.overlay import OverlayStore
from pvc.store.repository import Repository


@dataclass
class Backend:
    name: str
    open: Callable[[], Any]
    chunks: bool = True  # large files become chunk lists
    store: Any = field(default=None)

    def __post_init__(self) -> None:
        self.store = self.open()

    def reopen(self) -> Any:
        """The same store as a new process would see it (for the overlay: the same one, it lives in memory)."""
        if isinstance(self.store, OverlayStore):
            return self.store
        self.store.close() if hasattr(self.store, "close") else None
        self.store = self.open()
        return self.store


def _local(tmp_path) -> Backend:
    Repository.init(tmp_path)
    return Backend("local", lambda: PackStore(tmp_path / ".pvc", chunk_threshold=1 << 20))


def _overlay(tmp_path) -> Backend:
    Repository.init(tmp_path)
    base = PackStore(tmp_path / ".pvc", chunk_threshold=1 << 20)
    return Backend("overlay", lambda: OverlayStore(base), chunks=False)


BACKENDS: dict[str, Callable] = {"local": _local, "overlay": _overlay}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request, tmp_path):
    b = BACKENDS[request.param](tmp_path)
    yield b
    if hasattr(b.store, "close"):
        b.store.close()
