"""The backends the store suite runs on; each gives a store, a way to open it again, and what it can do."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import pytest

from pvc.store.local.packstore import PackStore
from pvc.store.overlay import OverlayStore
from pvc.store.remote.medium import FileMedium, S3Medium
from pvc.store.remote.store import RemoteStore
from pvc.store.remote.url import parse_remote
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


def store_dir(root):
    """`root` made a bare store folder (its `packs/` and `tmp/`), for a PackStore of its own; returns it."""
    for sub in ("packs", "tmp"):
        (root / sub).mkdir(parents=True)
    return root


def _local(tmp_path) -> Backend:
    Repository.init(tmp_path)
    return Backend("local", lambda: PackStore(tmp_path / ".pvc", chunk_threshold=1 << 20))


def _overlay(tmp_path) -> Backend:
    Repository.init(tmp_path)
    base = PackStore(tmp_path / ".pvc", chunk_threshold=1 << 20)
    return Backend("overlay", lambda: OverlayStore(base), chunks=False)


def _remote(medium_of, tmp_path, fresh_cache: bool) -> Backend:
    """A remote store; with `fresh_cache`, each reopening is another machine (nothing cached of the remote)."""
    caches = iter(range(1000))

    def open_store():
        cache = tmp_path / ("cache-%d" % next(caches) if fresh_cache else "cache")
        return RemoteStore(medium_of(), cache, chunk_threshold=1 << 20, pack_size=1 << 20)

    return Backend(medium_of().url, open_store)


BACKENDS: dict[str, Callable] = {
    "local": lambda tmp_path, request: _local(tmp_path),
    "overlay": lambda tmp_path, request: _overlay(tmp_path),
    "remote-folder": lambda tmp_path, request: _remote(lambda: FileMedium(tmp_path / "remote"), tmp_path, False),
    "remote-s3": lambda tmp_path, request: _remote(_s3(request), tmp_path, True),
}


def _s3(request):
    bucket = request.getfixturevalue("s3_bucket")
    endpoint = request.getfixturevalue("s3_server")
    spec = parse_remote(f"s3://{bucket}/some/prefix", endpoint=endpoint)
    return lambda: S3Medium(spec, timeout=20, retries=2)


@pytest.fixture(params=sorted(BACKENDS))
def backend(request, tmp_path):
    b = BACKENDS[request.param](tmp_path, request)
    yield b
    if hasattr(b.store, "close"):
        b.store.close()
