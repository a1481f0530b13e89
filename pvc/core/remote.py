"""remote add / list / remove, and opening a remote: its address in `.pvc/config`, its cache in `.pvc/remotes/`.

The config keeps where a remote is (URL, endpoint, region), never how to log in: credentials come from the
environment and the standard AWS files only (pvc/store/remote/credentials.py).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from pvc.core.resolve import resolve_version
from pvc.core.restore import restore
from pvc.core.selection import Selection
from pvc.errors import UsageError
from pvc.record import record
from pvc.store.remote import RemoteStore, open_remote_store, parse_remote
from pvc.store.remote.url import RemoteSpec
from pvc.store.repository import Repository

__all__ = ["RemoteInfo", "add_remote", "remove_remote", "list_remotes", "find_remote", "open_remote", "restore_from_url"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")  # a part of a dotted config key: remotes.<name>.url


@record(frozen=True)
class RemoteInfo:
    name: str
    spec: RemoteSpec

    @property
    def url(self) -> str:
        return self.spec.url

    def to_json(self) -> dict:
        return {"name": self.name} | self.spec.to_config()


def list_remotes(repo: Repository) -> list[RemoteInfo]:
    remotes = repo.config.get("remotes") or {}
    return [RemoteInfo(name, _spec(name, r)) for name, r in sorted(remotes.items())]


def _spec(name: str, entry) -> RemoteSpec:
    if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
        raise UsageError(f"remote {name!r} in .pvc/config has no url (pvc remote remove {name}, then add it again)")
    return parse_remote(entry["url"], endpoint=entry.get("endpoint"), region=entry.get("region"),
                        timeout=entry.get("timeout", 60.0), retries=entry.get("retries", 5))


def add_remote(repo: Repository, name: str, url: str, *, endpoint: str | None = None, region: str | None = None,
               timeout: float = 60.0, retries: int = 5, lock_timeout: float = 60.0) -> RemoteInfo:
    """Record remote `name` (refused if the name is taken or the URL is not one pvc can use)."""
    if not _NAME.fullmatch(name):
        raise UsageError(f"{name!r} is not a remote name (letters, digits, '_', '-'; at most 64)")
    spec = parse_remote(url, endpoint=endpoint, region=region, timeout=timeout, retries=retries)
    with repo.lock(lock_timeout):
        if name in (repo.config.get("remotes") or {}):
            raise UsageError(f"remote {name!r} exists already (remove it first: pvc remote remove {name})")
        repo.update_config(lambda c: c.setdefault("remotes", {}).__setitem__(name, spec.to_config()))
    return RemoteInfo(name, spec)


def remove_remote(repo: Repository, name: str, *, lock_timeout: float = 60.0) -> RemoteInfo:
    """Forget remote `name` and what was cached of it (the remote itself is not touched)."""
    with repo.lock(lock_timeout):
        info = find_remote(repo, name)
        repo.update_config(lambda c: c["remotes"].pop(name))
        shutil.rmtree(repo.remote_cache(name), ignore_errors=True)
    return info


def find_remote(repo: Repository, name: str | None = None) -> RemoteInfo:
    """Remote `name`; without a name `origin`, or the only remote there is."""
    remotes = {r.name: r for r in list_remotes(repo)}
    if name is not None:
        if name not in remotes:
            known = ", ".join(remotes) or "none"
            raise UsageError(f"no remote named {name!r} (remotes: {known}; add one with `pvc remote add NAME URL`)")
        return remotes[name]
    if "origin" in remotes:
        return remotes["origin"]
    if len(remotes) == 1:
        return next(iter(remotes.values()))
    if not remotes:
        raise UsageError("no remote configured (add one with `pvc remote add origin s3://bucket/prefix`)")
    raise UsageError(f"several remotes and none is 'origin': name one ({', '.join(remotes)})")


def open_remote(repo: Repository, info: RemoteInfo) -> RemoteStore:
    return open_remote_store(info.spec, repo.remote_cache(info.name),
                             chunk_threshold=int(repo.config["chunk_threshold"]),
                             pack_size=int(repo.config["pack_size"]))


def restore_from_url(url: str, version: str | int, dest, *, endpoint: str | None = None, region: str | None = None,
                     selection: Selection = Selection(), skip_missing: bool = False, verify: bool = False,
                     force: bool = False, progress=None):
    """Restore a version (the part `selection` keeps) straight from a remote, with no project and no local copy of
    the store: what a CI job that has only a URL and credentials does. The remote's index files are cached in a
    temporary folder."""
    spec = parse_remote(url, endpoint=endpoint, region=region)
    with tempfile.TemporaryDirectory(prefix="pvc-remote-") as cache:
        remote = open_remote_store(spec, Path(cache))
        try:
            remote.require_remote()
            record = resolve_version(remote.versions(), version)
            return restore(remote, record, Path(dest), selection=selection, skip_missing=skip_missing, verify=verify,
                           force=force, progress=progress)
        finally:
            remote.close()
