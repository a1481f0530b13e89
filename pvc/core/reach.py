"""What the versions reach: the roots (every version, plus saved states under `.pvc/stash/`) and a walk from
a root's manifest to every tree, page, blob and chunk it names, collecting damage instead of stopping.

`gc` marks with it (and refuses to delete anything when the walk meets damage: what a damaged object names is
unknown); `verify` uses it to say which versions and items each damaged object affects. Item ownership follows
`Snapshot.files` (media, annotation, media files, companions), so a blob's affected item is the item that
`restore --skip-missing` leaves out.
"""

from __future__ import annotations

import re
from typing import Any

from pvc.errors import CorruptObject, ObjectMissing
from pvc.record import record
from pvc.store.backend import ObjectStore, T
from pvc.store.model import Manifest, Page, PageRef, Tree, safe_relpath
from pvc.store.objects import parse_hex_id
from pvc.store.repository import Repository

__all__ = ["Damage", "Root", "Walker", "extra_roots", "version_roots"]

_ID_PREFIX = re.compile(r"^(object|tree|page|manifest) [0-9a-f]{64}: ")


@record(frozen=True)
class Root:
    """A manifest that must stay whole: a version's, or one a saved state names."""

    label: str  # "v3", or "stash/<file>"
    version: int | None
    manifest: bytes
    partial: str | None = None  # "records" / "structure": some of its objects are on a remote only (.pvc/partial)


@record(frozen=True)
class Damage:
    """One damaged object met on a walk, and what of the root it takes away."""

    oid: bytes
    kind: str  # manifest, tree, page, blob
    what: str
    root: str
    dataset: str | None = None
    item: str | None = None
    path: str | None = None  # the file whose content is lost, or what part of a dataset a page/tree held


def version_roots(repo: Repository) -> list[Root]:
    """A root for every version that is not deleted (marked when its objects are, in part, on a remote only)."""
    partial = repo.partial.read()
    return [Root(f"v{v.number}", v.number, parse_hex_id(v.manifest), partial[v.id].has if v.id in partial else None)
            for v in repo.versions() if not v.deleted]


def extra_roots(repo: Repository) -> list[Root]:
    """Manifests named by saved states under `.pvc/stash/` (see pvc/store/stash.py); CorruptObject when a
    record there does not parse (better keep everything than guess)."""
    return [Root(label, None, parse_hex_id(m)) for label, m in repo.saved_states.roots()]


class Walker:
    """Walks roots through one store; remembers every id reached and what it found per tree and blob.

    `bad` names objects already known to be damaged (from reading the packs), so they are not read again.
    With `check_blobs` False, blobs are only marked (and chunk lists read, to mark their chunks): that is gc.
    """

    def __init__(self, store: ObjectStore, *, bad: dict[bytes, str] | None = None, check_blobs: bool = True) -> None:
        self.store = store
        self.bad = bad or {}
        self.check_blobs = check_blobs
        self.reached: set[bytes] = set()
        self._trees: dict[tuple[bytes, str], list[tuple]] = {}
        self._blobs: dict[bytes, str | None] = {}

    def walk(self, root: Root) -> list[Damage]:
        """Everything damaged under `root`, each with the dataset, item and path it takes away. Of a version
        whose objects are partly on a remote (`root.partial`), what is absent by design is not damage: all of
        it when only its record is here, the blobs when its structure is."""
        if root.partial == "records":
            return []
        damage = self._walk(root)
        if root.partial == "structure":
            damage = [d for d in damage if not (d.kind == "blob" and _absent(d.what))]
        return damage

    def _walk(self, root: Root) -> list[Damage]:
        manifest = self._read(root.manifest, Manifest)
        if isinstance(manifest, str):
            return [Damage(root.manifest, "manifest", manifest, root.label, path="the whole version")]
        try:
            hits = self._tree(manifest.root, "", None)
        except RecursionError:  # only a crafted store nests datasets this deep (paths would exceed PATH_MAX)
            return [Damage(root.manifest, "manifest", "datasets nested too deeply to walk", root.label, path="the whole version")]
        return [Damage(*hit[:3], root.label, *hit[3:]) for hit in hits]

    # -- structured objects --------------------------------------------------------------------------

    def _read(self, oid: bytes, cls: type[T]) -> T | str:
        """The decoded object, or why it cannot be had."""
        self.reached.add(oid)
        if oid in self.bad:
            return self.bad[oid]
        try:
            return self.store.get_object(oid, cls)
        except ObjectMissing:
            return "missing"
        except CorruptObject as exc:
            return _ID_PREFIX.sub("", str(exc))

    def _tree(self, tree_id: bytes, folder: str, dataset: str | None) -> list[tuple]:
        key = (tree_id, folder)
        if key not in self._trees:
            self._trees[key] = self._tree_hits(tree_id, folder, dataset)
        return self._trees[key]

    def _tree_hits(self, tree_id: bytes, folder: str, dataset: str | None) -> list[tuple]:
        where = f"dataset {dataset}" if dataset else "the project's own files and datasets"
        tree = self._read(tree_id, Tree)
        if isinstance(tree, str):
            return [(tree_id, "tree", tree, dataset, None, f"all of {where}")]
        hits: list[tuple] = []
        owner = self._owners(tree, dataset, hits)
        if dataset is None:
            owner = {}  # the root tree's files belong to no item (as in `Snapshot.files`)
        self._files(tree, tree_id, folder, dataset, owner, hits)
        for child in tree.children:
            hits += self._tree(child.oid, child.folder, child.name)
        return hits

    def _pages(self, refs: tuple[PageRef, ...], kind: str, dataset: str | None, hits: list) -> list[tuple[str, Any]]:
        """The entries of one paged map of a tree; damaged pages become hits and are skipped."""
        entries = []
        for ref in refs:
            page = self._read(ref.oid, Page)
            if not isinstance(page, str) and (page.kind != kind or len(page.entries) != ref.count):
                page = f"not the {kind} page its reference names"
            if isinstance(page, str):
                hits.append((ref.oid, "page", page, dataset, None, f"{kind} of {dataset or 'the project'} from {ref.first!r} ({ref.count} entries)"))
                continue
            entries += page.entries
        return entries

    def _owners(self, tree: Tree, dataset: str | None, hits: list) -> dict[str, str]:
        """File path (relative to the dataset folder) -> the item it belongs to, as `Snapshot.files` has it."""
        return {rel: name for name, item in self._pages(tree.items, "items", dataset, hits) for rel in item.files()}

    def _files(self, tree: Tree, tree_id: bytes, folder: str, dataset: str | None, owner: dict, hits: list) -> None:
        prefix = f"{folder}/" if folder else ""
        seen: set[str] = set()
        for rel, value in self._pages(tree.files, "files", dataset, hits):
            try:
                path = safe_relpath(prefix + rel, f"tree of {dataset or 'project'}")
            except CorruptObject as exc:
                hits.append((tree_id, "tree", str(exc), dataset, None, f"files of {dataset or 'the project'}"))
                continue
            if path in seen:
                hits.append((tree_id, "tree", f"lists {path[:120]!r} twice", dataset, owner.get(rel), path))
            seen.add(path)
            problem = self._blob(value.oid)
            if problem:
                hits.append((value.oid, "blob", problem, dataset, owner.get(rel), path))

    # -- blobs and chunks ------------------------------------------------------------------------------

    def _blob(self, oid: bytes) -> str | None:
        if oid not in self._blobs:
            self.reached.add(oid)
            self._blobs[oid] = self._blob_problem(oid)
        return self._blobs[oid]

    def _blob_problem(self, oid: bytes) -> str | None:
        if oid in self.bad:
            return self.bad[oid]
        info = self.store.info(oid)
        if info is None:
            return "missing"
        if not info.chunked:
            return None
        try:
            chunks = self.store.chunk_list(oid)
        except (ObjectMissing, CorruptObject) as exc:
            return _ID_PREFIX.sub("", str(exc))
        self.reached.update(cid for cid, _ in chunks)
        for cid, length in chunks:
            chunk = self.store.info(cid)
            if chunk is None:
                return f"its chunk {cid.hex()} is missing"
            if cid in self.bad:
                return f"its chunk {cid.hex()} is damaged: {self.bad[cid]}"
            if self.check_blobs and chunk.size != length:
                return f"its chunk {cid.hex()} is {chunk.size} bytes, the chunk list says {length}"
        if sum(n for _, n in chunks) != info.size:
            return "its chunk lengths do not add up to its length"
        return None


def _absent(what: str) -> bool:
    return what == "missing" or (what.startswith("its chunk ") and what.endswith(" is missing"))
