"""The stat cache of a freshly restored project, written from the version it was restored from.

A restore knows every file's blob id, and the version's item entries hold what hashing each file gave (media
metadata, annotation summary, a DICOM slice's series): the very infos `hash` would compute. Recording them
with the files' stats as written means the project's first commit reads no file that was restored unchanged.
The roles are the ones `classify` gives the files of the items the version lists (`roles`), read from those items
instead of classifying every path again; a file whose info the version does not say is left out of the cache, and
is then simply hashed. A role that differs from the one a commit gives (a version built by rules this pvc no
longer follows) only costs that file's hashing: the cache answers for a path and a role together.

A DICOM series' metadata is not recorded: it holds the tags the `dicom_tags` setting named when the version was
committed, which the project written now may not share (a clone takes no settings; a linked restore takes its
source's current ones). Its first commit reads the series' headers again, with its own setting.
"""

from __future__ import annotations

import os
import time
from typing import Any

from pvc.core.fastpath import capture_settings
from pvc.core.snapshot import FileEntry
from pvc.project.layout import ANN_ROLE, ITEM_KIND, MEDIA_DIRS, classify, is_dicom_name
from pvc.store.model import ItemEntry, Manifest
from pvc.store.repository import Repository
from pvc.store.statcache import CacheEntry, fs_clock, pack_info

__all__ = ["plan_seed", "roles_of", "seed_stat_cache", "write_seed"]

_MEDIA_ROLES = ("image", "video", "volume")
_ANN_ROLES = ("ann", "video_ann", "volume_ann")
_CLOCK_WAIT = 2.0  # seconds to wait for the file system's clock to pass the last write (a tick is ~4 ms)


def seed_stat_cache(repo: Repository, manifest: Manifest, files: list[FileEntry],
                    items: dict[tuple[str, str], ItemEntry], folders: dict[str, str]) -> int:
    """Write `repo`'s stat cache for `files` (just written into its project) from the version's `items`
    ((dataset, item) -> entry) and dataset `folders` (name -> folder); return the number of files recorded."""
    return write_seed(repo, plan_seed(manifest, files, items, folders))


def plan_seed(manifest: Manifest, files: list[FileEntry], items: dict[tuple[str, str], ItemEntry],
              folders: dict[str, str]) -> list[tuple[str, bytes, str, bytes]]:
    """The part of `seed_stat_cache` that needs only the plan, not the files (clone makes it while they download):
    (path, id, role, info as the cache keeps it) of each file the version vouches for."""
    project_type = manifest.project_type if manifest.layout == "supervisely" else None
    if project_type and project_type not in MEDIA_DIRS:  # a type no capture gives (a crafted manifest): the stat
        return []  # cache is only an optimisation, and the next commit hashes what it cannot vouch for
    roles = roles_of(project_type, files, items, folders)
    vouched = []
    for f in files:
        role = roles.get(f.path, "file")
        item = items.get((f.dataset, f.item)) if f.item is not None else None
        known, info = _info(role, item)
        if known:
            vouched.append((f.path, f.oid, role, pack_info(info)))
    return vouched


def roles_of(project_type: str | None, files: list[FileEntry], items: dict[tuple[str, str], ItemEntry],
             folders: dict[str, str]) -> dict[str, str]:
    """path -> role, as `classify` gives them to these files of a version (those left out: "file"): a Supervisely
    project's from its items (media, DICOM slices, annotations; `meta.json` at the root), a generic one's by
    `classify` itself (it has no items to read them from)."""
    if project_type is None:
        return classify([f.path for f in files], None).roles
    media_role, ann_role = ITEM_KIND.get(project_type, "file"), ANN_ROLE.get(project_type, "file")
    roles = {"meta.json": "meta"}
    for (dataset, _), item in items.items():
        folder = folders[dataset]
        media = item.media_paths()
        series = project_type == "volumes" and bool(media) and (len(media) > 1 or is_dicom_name(media[0]))
        for rel in media:
            roles[f"{folder}/{rel}"] = "dicom" if series else media_role
        if item.ann:
            roles[f"{folder}/{item.ann}"] = ann_role
    return roles


def write_seed(repo: Repository, vouched: list[tuple[str, bytes, str, bytes]], unsynced: str | None = None,
               known: dict[str, tuple[int, int, int, int]] | None = None) -> int:
    """Stat the files `plan_seed` vouched for, now written, and save them as the stat cache; return how many were
    recorded. `unsynced`: the mount token of the files (atomic.mount_token), when they may not be on disk yet
    (clone): the cache is then kept as unsynced (StatCache.save). `known`: path -> (size, mtime_ns, inode,
    ctime_ns) of files whose stat was taken as they were written (clone's early files), not taken again."""
    entries: dict[str, CacheEntry] = {}
    newest = 0
    root = f"{repo.project_root}/"  # (a str joined to each path: a Path made for each costs twice the stat)
    known = known or {}
    for path, oid, role, raw in vouched:
        stat = known.get(path)
        if stat is None:
            st = os.stat(root + path)
            stat = (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
        if stat[1] > newest:
            newest = stat[1]
        if stat[3] > newest:
            newest = stat[3]
        entries[path] = CacheEntry.of_stat(stat, oid, role, raw)
    repo.stat_cache().save(entries, _clock_after(repo, newest), settings=capture_settings(repo, False),
                           unsynced=unsynced)
    return len(entries)


def _info(role: str, item: ItemEntry | None) -> tuple[bool, Any]:
    """(whether the version says it, the info `hash` gives) for one file of `role` in `item`."""
    if role in ("meta", "file"):
        return True, None
    if item is None:
        return False, None
    if role in _MEDIA_ROLES and item.media_files is None:
        return True, item.meta or {}
    if role in _ANN_ROLES:
        return True, item.annotation
    if role == "dicom":
        uid = ((item.meta or {}).get("dicom") or {}).get("SeriesInstanceUID")
        return (True, {"series": uid}) if isinstance(uid, str) else (False, None)
    return False, None


def _clock_after(repo: Repository, newest_mtime: int) -> int:
    """The file system's time once it is past `newest_mtime` (the newest mtime or ctime of the files written), so no
    file just written is racy for the cache."""
    deadline = time.monotonic() + _CLOCK_WAIT
    clock = fs_clock(repo.dir / "tmp")
    while clock <= newest_mtime and time.monotonic() < deadline:
        time.sleep(0.005)
        clock = fs_clock(repo.dir / "tmp")
    return clock
