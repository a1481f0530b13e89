"""The working tree as a version would record it, in four stages (one module each):

    walk      the files and their stats (C walk); an untouched tree stops here
    hash      each file's blob id and own meaning, from the stat cache or by reading it
    describe  each item's metadata and problems
    build     pages, trees and the manifest

`capture` is shared by `commit` (objects go to the store) and by `status` / `diff` / `discard`, which pass an
overlay store that keeps the new objects in memory and writes nothing.
"""

from __future__ import annotations

from typing import Any

from pvc.core.capture.build import PageReuse, build_manifest
from pvc.core.capture.describe import ItemDescriber, read_project_meta, series_uid, sniff_annotation
from pvc.core.capture.hash import ObjectSink, hash_files, invalid_reason
from pvc.core.capture.walk import Walked, walk_project
from pvc.core.fastpath import PriorWalk, capture_settings
from pvc.core.tuning import fewer_collections
from pvc.project.layout import Layout, add_dicom_series, classify
from pvc.project.scan import FileInfo
from pvc.project.walk import stat_records, tree_digest
from pvc.errors import CorruptObject, ObjectMissing
from pvc.record import field, record
from pvc.store import objects
from pvc.store.model import Manifest, Tree
from pvc.store.repository import Repository
from pvc.store.statcache import CacheEntry, StatCache

__all__ = ["Capture", "capture", "ObjectSink"]

MAX_DIRTY = 50_000  # paths a stat cache lists as maybe changed since its base; more, and it keeps no base


@record(frozen=True, kw_only=True)
class Capture:
    """One capture of the working tree: its manifest id and what the stat cache should remember."""

    manifest_id: bytes
    cache: StatCache
    settings: dict
    walked: Walked | None = None
    layout: Layout | None = None  # None when `unchanged`
    files_hashed: int = 0
    bytes_hashed: int = 0
    entries: dict[str, CacheEntry] = field(default_factory=dict)
    derived: dict[bytes, Any] = field(default_factory=dict)
    unchanged: bool = False  # the stat cache vouched for the whole tree: nothing was read
    classes: dict[str, int] | None = None  # objects per class, when known
    record_tree: bool = False  # an unchanged capture whose tree record is missing or stale: write it
    invalid: tuple[tuple[str, str], ...] = ()  # (path, reason) of each file a commit would refuse (report_invalid)
    pages: dict[bytes, list] = field(default_factory=dict)  # the pages built or taken, by what they are made of
    pages_reused: int = 0  # pages taken by id from an earlier capture (build.PageReuse)
    pages_built: int = 0
    ids_in_manifest: bool = False  # the store keeps the manifest (a commit's): the cache need not repeat the ids
    expect: bytes | None = None  # the manifest this capture was compared with (the latest version's)
    fresh: tuple[str, ...] = ()  # the paths hashed by this capture
    gone: tuple[str, ...] = ()  # the paths the stat cache held and the walk did not find
    partial: bool = False  # built from the change alone (delta.py): the entries of the other files were not looked up
    # built from the change: what differs from `expect` in each dataset it touched, by folder: {"files": {path: (old,
    # new)}, "items": {name: (old, new)}}, each value as the msgpack bytes its page holds, None where absent; every
    # other entry of `expect` is unchanged (pagediff.known_changes reads the difference from it, no page compared)
    changes: dict[str, dict[str, dict[str, tuple[bytes | None, bytes | None]]]] = field(default_factory=dict)

    @property
    def files(self) -> list[FileInfo]:
        return (self.walked.files if self.walked else None) or []

    @property
    def followed_symlinks(self) -> int:
        return self.walked.followed_symlinks if self.walked else 0

    def save_cache(self) -> None:
        """Remember the hashes (call with the repository lock held), and the digest of this scan's stat
        records when none of them is racy, so that the next scan of an untouched tree reads nothing."""
        if self.partial:  # built from the change: what it read and what is gone are saved after the rest
            if (self.fresh or self.gone or self.ids_in_manifest) and self.walked.scan_started is not None:
                base, started = self._base(), self.walked.scan_started
                tree = self.scan_digest() if self.ids_in_manifest and self.walked.settled else None
                if not self.cache.save_changes(self.entries, list(self.gone), started, self.manifest_id,
                                               self.settings, base=base, ids_in_manifest=self.ids_in_manifest,
                                               tree=tree, classes=self.classes):
                    # too many entries after the columns already: every entry saved anew, the unchanged ones with
                    # the roles they had (a change the build from the change handles keeps every other file's)
                    entries = self.cache.vouched_entries(self.walked.files) | self.entries
                    self.cache.save(entries, started, self.cache.derived_map(), self.manifest_id, self.settings,
                                    ids_in_manifest=self.ids_in_manifest, tree=tree, classes=self.classes, base=base)
            return
        if self.unchanged:  # proven by the entries, or by the tree record
            if self.record_tree and self.classes is not None:
                self.cache.save_tree(self.scan_digest(), self.manifest_id, self.settings, self.classes)
            return
        if (self.files_hashed == 0 and self.cache.holds(self.entries, self.manifest_id, self.settings)
                and self.pages.keys() == self.cache.pages.keys() and self.cache.base == self._base()):
            return  # every entry came from the cache, which already says all this (a 10 MB write spared); (a commit
            # of what a status saw hashes nothing, and still moves the base to its version)
        if self.walked.scan_started is None:
            return  # no racy cutoff for these entries: the store could not be written when the scan began
        if self.invalid:  # these files make a commit fail, not this manifest: keep the hashes, vouch for nothing
            self.cache.save(self.entries, self.walked.scan_started, self.derived, base=self._base())
            return
        tree = self.scan_digest() if self.walked.settled else None
        self.cache.save(self.entries, self.walked.scan_started, self.derived, self.manifest_id, self.settings,
                        ids_in_manifest=self.ids_in_manifest,
                        tree=tree, classes=self.classes, pages=self.pages, base=self._base())

    def _base(self) -> tuple[bytes, Any, list[str]] | None:
        """The committed manifest these entries describe but for the paths listed (statcache.py, `base`)."""
        if (self.ids_in_manifest or self.manifest_id == self.expect) and not self.invalid:
            return self.manifest_id, self.settings, []  # the entries are exactly that manifest's files
        old = self.cache.base
        if old is None or old[0] != self.expect or old[1] != self.settings:
            return None
        dirty = sorted(set(old[2]).union(self.fresh, self.gone))
        return (old[0], old[1], dirty) if len(dirty) <= MAX_DIRTY else None

    def scan_digest(self) -> bytes:
        """`tree_digest` of this scan's stat records (the C walk's, or computed from the files)."""
        digest = self.walked.digest
        return digest if digest is not None else tree_digest(stat_records(self.files))


@fewer_collections
def capture(repo: Repository, store: ObjectSink, *, allow_invalid: bool = False, report_invalid: bool = False,
            progress=None, expect: bytes | None = None, from_change: bool = False, walk: PriorWalk | None = None) -> Capture:
    """Scan the project, hash what the stat cache cannot vouch for, and build its manifest in `store`.

    `expect` (the latest version's manifest) enables the fast path: when every file's stat is what the
    cache recorded along with that manifest, the project is that manifest, and nothing is read or built.
    `report_invalid` (status, diff, discard): a file a commit refuses (a malformed annotation, an unreadable image)
    is captured as `--allow-invalid` would store it and listed in `Capture.invalid`, instead of stopping the scan.
    `from_change` (status, commit): when the stat cache's base is `expect`, build from the changed paths alone (delta.py),
    the same manifest in time that follows the change; else, or where that cannot be told safely, the full build.
    `walk`: a walk of this project already taken, with the clock read before it (pvc/core/fastpath.py), taken over.
    """
    taken = walk.cache if walk is not None and walk.root == str(repo.project_root) else None
    cache = taken if taken is not None else repo.stat_cache()  # (one read while the walk ran, if any)
    cache.file_ids = lambda manifest: manifest_file_ids(store, manifest)
    settings = capture_settings(repo, allow_invalid)
    walked = walk_project(repo, cache, expect, settings, walk)
    if walked.untouched:
        return Capture(manifest_id=expect, cache=cache, settings=settings, walked=walked, unchanged=True)
    if (expect is not None and cache.manifest == expect and cache.settings == settings
            and cache.walk_differences(walked) == ([], [])):  # (compared from the walk's records, in C)
        # the tree record was missing or stale: write it (if the C walk ran here, it will next time) so the
        # next scan stops at the walk
        record = walked.digest is not None and not cache.may_vouch_for(expect, settings)
        classes = store.get_object(expect, Manifest).classes if record else None
        return Capture(manifest_id=expect, cache=cache, settings=settings, walked=walked, unchanged=True,
                       classes=classes, record_tree=record)
    keep_invalid = allow_invalid or report_invalid
    if from_change and expect is not None:
        from pvc.core.capture.delta import delta_capture

        ahead = (walk.pages, walk.tables) if taken is not None else (None, None)  # read while the walk ran
        if taken is not None:
            walk.pages, walk.tables = {}, {}  # for this build alone: not held through a full build after it
        partial = delta_capture(repo, store, cache, settings, walked, expect, keep_invalid, *ahead)
        del ahead
        if partial is not None:
            return partial
    files = walked.files
    by_path = {f.relpath: f for f in files}
    meta_summary = read_project_meta(by_path.get("meta.json"), keep_invalid)
    layout = _layout(by_path, meta_summary)
    entries, read = hash_files(cache, store, files, layout.roles, keep_invalid, progress)
    gone = tuple(cache.gone(by_path))
    cache.release()  # its bytes as read are not needed beside the entries, which are what it will save
    hashed = entries  # one compact entry a file: what the stages below read and what the stat cache saves
    for ds in layout.all_datasets():
        if ds.loose_dicom:
            add_dicom_series(ds, {rel: series_uid(hashed[f"{ds.dir}/{rel}"].info, rel) for rel in ds.loose_dicom})
    items = ItemDescriber(by_path, hashed, cache, keep_invalid, repo.config.get("dicom_tags"))
    reuse = PageReuse(cache.pages, settings, {f.relpath for f in read}, by_path)
    manifest_id, classes = build_manifest(store, layout, by_path, hashed, items, meta_summary, reuse)
    invalid = _invalid(meta_summary, hashed, items) if report_invalid and not allow_invalid else ()
    return Capture(manifest_id=manifest_id, cache=cache, settings=settings, walked=walked, layout=layout,
                   files_hashed=len(read), bytes_hashed=sum(f.size for f in read), entries=entries,
                   derived=items.derived, classes=classes, invalid=invalid, pages=reuse.made,
                   pages_reused=reuse.reused, pages_built=reuse.built,
                   ids_in_manifest=hasattr(store, "stage_sealed"),  # a store that writes (commit), not an overlay
                   expect=expect, fresh=tuple(f.relpath for f in read), gone=gone)


def manifest_file_ids(store: ObjectSink, manifest_id: bytes) -> dict[str, bytes]:
    """{path from the project root: blob id} of every file of the version `manifest_id` ({} when any of its structure
    cannot be read: the stat cache then vouches for nothing, and the files are read again)."""
    found: dict[str, bytes] = {}
    try:
        stack = [(store.get_object(manifest_id, Manifest).root, "")]
        while stack:
            tree_id, folder = stack.pop()
            tree = store.get_object(tree_id, Tree)
            prefix = f"{folder}/" if folder else ""
            for ref in tree.files:  # the page checked against its id, its entries taken as they are (no models)
                page = objects.decode(store.get(ref.oid), "page")
                for rel, value in page.get("entries", ()):
                    if isinstance(rel, str) and isinstance(value, list) and value and isinstance(value[0], bytes):
                        found[prefix + rel] = value[0]
            stack += [(child.oid, child.folder) for child in tree.children]
    except (ObjectMissing, CorruptObject):
        return {}
    return found


def _layout(by_path: dict[str, FileInfo], meta_summary: dict) -> Layout:
    """The layout; the type is meta.json's projectType, or ("") the layout's own when meta.json has none."""
    project_type = (meta_summary.get("project_type") or "") if "meta.json" in by_path else None
    return classify(list(by_path), project_type, lambda rel: sniff_annotation(by_path[rel]))


def _invalid(meta_summary: dict, hashed: dict, items: ItemDescriber) -> tuple[tuple[str, str], ...]:
    """(path, reason) of every file a commit without --allow-invalid would refuse."""
    found = [("meta.json", meta_summary["invalid"])] if "invalid" in meta_summary else []
    found += sorted((rel, reason) for rel, h in hashed.items() if (reason := invalid_reason(h)) is not None)
    return tuple(found + items.invalid)
