"""Remotes: the store on object storage (S3) or in a shared folder. See store.py for the layout and the rules.

Only the address parsing is imported with the package (`.pvc/config` checks remote URLs when any store opens);
the store, the media and obstore load when a remote is opened."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pvc.record import replace
from pvc.store.remote.url import RemoteSpec, parse_remote

if TYPE_CHECKING:
    from pvc.store.remote.store import RemoteStore

__all__ = ["RemoteSpec", "RemoteStore", "parse_remote", "open_remote_store"]


def open_remote_store(spec: RemoteSpec, cache_dir: Path, *, chunk_threshold: int = 8 << 20,
                      pack_size: int = 16 << 20) -> RemoteStore:
    """The remote at `spec`, with what is known of it cached under `cache_dir` (its index files, its records)."""
    from pvc.store.remote.credentials import profile_credentials, profile_region
    from pvc.store.remote.medium import open_medium
    from pvc.store.remote.store import RemoteStore

    if spec.scheme == "s3" and spec.region is None and (region := profile_region()):
        spec = replace(spec, region=region)
    credentials = profile_credentials() if spec.scheme == "s3" else None
    medium = open_medium(spec, timeout=spec.timeout, retries=spec.retries, credentials=credentials)
    return RemoteStore(medium, cache_dir, chunk_threshold=chunk_threshold, pack_size=pack_size)


def __getattr__(name: str):
    if name == "RemoteStore":
        from pvc.store.remote.store import RemoteStore

        return RemoteStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
