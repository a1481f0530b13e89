"""Remotes: the store on object storage (S3) or in a shared folder. See store.py for the layout and the rules."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from pvc.store.remote.credentials import profile_credentials, profile_region
from pvc.store.remote.medium import open_medium
from pvc.store.remote.store import RemoteStore
from pvc.store.remote.url import RemoteSpec, parse_remote

__all__ = ["RemoteSpec", "RemoteStore", "parse_remote", "open_remote_store"]


def open_remote_store(spec: RemoteSpec, cache_dir: Path, *, chunk_threshold: int = 8 << 20,
                      pack_size: int = 16 << 20) -> RemoteStore:
    """The remote at `spec`, with what is known of it cached under `cache_dir` (its index files, its records)."""
    if spec.scheme == "s3" and spec.region is None and (region := profile_region()):
        spec = replace(spec, region=region)
    credentials = profile_credentials() if spec.scheme == "s3" else None
    medium = open_medium(spec, timeout=spec.timeout, retries=spec.retries, credentials=credentials)
    return RemoteStore(medium, cache_dir, chunk_threshold=chunk_threshold, pack_size=pack_size)
