"""What the versions reach: the roots (every version, plus saved states under `.pvc/stash/`) and a walk from
a root's manifest to every tree, page, blob and chunk it names, collecting damage instead of stopping.

`gc` marks with it (and refuses to delete anything when the walk meets damage: what a damaged object names is
unknown); `verify` uses it to say which versions and items each damaged object affects. Item ownership follows
`Snapshot.files` (media, annotation, media files, companions), so a blob's affected item is the item that
`restore --skip-missing` leaves out.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pvc.core.snapshot import safe_relpath
from pvc.errors import CorruptObject, ObjectMissing
from pvc.store.objects import parse_hex_id
from pvc.store.packs import Codec
from pvc.store.repository import Repository
from pvc.store.store import ObjectStore

__all__ = ["Damage", "Root", "Walker", "extra_roots", "version_roots"]

_ID_PREFIX = re.compile(r"^(object|tree|page|manifest) [0-9a-f]{64}: ")


@dataclass(frozen=True)
class Root:
    """A manifest that must stay whole: a version's, or one a saved state names."""

    label: str  # "v3", or "stash/<file>"
    version: int | None
    manifest: bytes


@dataclass(frozen=True)
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
    return [Root(f"v{v.number}", v.number, parse_hex_id(v.manifest)) for v in repo.versions()]


def extra_roots(repo: Repository) -> list[Root]:
    """Manifests named by saved states under `.pvc/stash/` (for example saved discard states).

    Every file there is read as JSON and every `"manifest"` value in it, at any depth, is a root, so a
    refs-like file of any shape is kept whole. A file that does not parse stops gc: better keep everything
    than guess. No `stash/` directory means no extra roots.
    """
    roots: list[Root] = []
    if not repo.stash_dir.is_dir():
        return roots
    for path in sorted(p for p in repo.stash_dir.rglob("*") if p.is_file() and not p.name.endswith(".tmp")):
        label = f"stash/{path.relative_to(repo.stash_dir).as_posix()}"
        try:
            doc = json.loads(path.read_bytes())
        except (OSError, ValueError) as exc:
            raise CorruptObject(f"{path}: unreadable saved state ({exc}); nothing can be collected until it is fixed") from None
        roots += [Root(label, None, parse_hex_id(m)) for m in _manifest_values(doc)]
    return roots


def _manifest_values(doc: Any) -> list[str]:
    if isinstance(doc, dict):
        found = [doc["manifest"]] if isinstance(doc.get("manifest"), str) else []
        return found + [m for k, v in doc.items() if k != "manifest" for m in _manifest_values(v)]
    if isinstance(doc, list):
        return [m for v in doc for m in _manifest_values(v)]
    return []


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
        """Everything damaged under `root`, each with the dataset, item and path it takes away."""
        manifest = self._read(root.manifest, "manifest")
        if isinstance(manifest, str):
            return [Damage(root.manifest, "manifest", manifest, root.label, path="the whole version")]
        tree_id = manifest.get("root")
        if not _is_id(tree_id):
            return [Damage(root.manifest, "manifest", "malformed root tree reference", root.label, path="the whole version")]
        try:
            hits = self._tree(tree_id, "", None)
        except RecursionError:  # only a crafted store nests datasets this deep (paths would exceed PATH_MAX)
            return [Damage(root.manifest, "manifest", "datasets nested too deeply to walk", root.label, path="the whole version")]
        return [Damage(*hit[:3], root.label, *hit[3:]) for hit in hits]

    # -- structured objects --------------------------------------------------------------------------

    def _read(self, oid: bytes, kind: str) -> dict | str:
        """The decoded object, or why it cannot be had."""
        self.reached.add(oid)
        if oid in self.bad:
            return self.bad[oid]
        try:
            obj = self.store.get_object(oid, kind)
        except ObjectMissing:
            return "missing"
        except CorruptObject as exc:
            return _ID_PREFIX.sub("", str(exc))
        if obj.get("type") != kind or not _shape_ok(kind, obj):
            return f"not a {kind}"
        return obj

    def _tree(self, tree_id: bytes, folder: str, dataset: str | None) -> list[tuple]:
        key = (tree_id, folder)
        if key not in self._trees:
            self._trees[key] = self._tree_hits(tree_id, folder, dataset)
        return self._trees[key]

    def _tree_hits(self, tree_id: bytes, folder: str, dataset: str | None) -> list[tuple]:
        where = f"dataset {dataset}" if dataset else "the project's own files and datasets"
        tree = self._read(tree_id, "tree")
        if isinstance(tree, str):
            return [(tree_id, "tree", tree, dataset, None, f"all of {where}")]
        hits: list[tuple] = []
        owner = self._owners(tree, tree_id, dataset, hits)
        if dataset is None:
            owner = {}  # the root tree's files belong to no item (as in `Snapshot.files`)
        self._files(tree, tree_id, folder, dataset, owner, hits)
        for child in tree["children"]:
            if not (isinstance(child, list) and len(child) == 3 and isinstance(child[1], str) and _is_id(child[2])):
                hits.append((tree_id, "tree", "malformed dataset entry", dataset, None, f"a dataset inside {where}"))
                continue
            try:
                child_folder = safe_relpath(child[0], f"dataset {child[1]!r}")
            except CorruptObject as exc:
                hits.append((tree_id, "tree", str(exc), dataset, None, f"dataset {child[1]}"))
                continue
            hits += self._tree(child[2], child_folder, child[1])
        return hits

    def _pages(self, tree: dict, tree_id: bytes, kind: str, dataset: str | None, hits: list) -> list[tuple[str, Any]]:
        """The entries of one paged map of a tree; damaged pages become hits and are skipped."""
        entries = []
        for ref in tree[kind]:
            if not (isinstance(ref, list) and len(ref) == 3 and isinstance(ref[0], str) and _is_id(ref[1])):
                hits.append((tree_id, "tree", f"malformed {kind} page reference", dataset, None, f"{kind} of {dataset or 'the project'}"))
                continue
            page = self._read(ref[1], "page")
            if isinstance(page, str) or page.get("kind") != kind:
                what = page if isinstance(page, str) else f"not a {kind} page"
                hits.append((ref[1], "page", what, dataset, None, f"{kind} of {dataset or 'the project'} from {ref[0]!r} ({ref[2]} entries)"))
                continue
            good = [e for e in page["entries"] if isinstance(e, list) and len(e) == 2 and isinstance(e[0], str)]
            if len(good) != len(page["entries"]):
                hits.append((ref[1], "page", "malformed entry", dataset, None, f"{kind} of {dataset or 'the project'} from {ref[0]!r}"))
            entries += good
        return entries

    def _owners(self, tree: dict, tree_id: bytes, dataset: str | None, hits: list) -> dict[str, str]:
        """File path (relative to the dataset folder) -> the item it belongs to, as `Snapshot.files` has it."""
        owner: dict[str, str] = {}
        for name, item in self._pages(tree, tree_id, "items", dataset, hits):
            if not isinstance(item, dict):
                continue
            names = [item.get("media"), item.get("ann")]
            for key in ("media_files", "companions"):
                if isinstance(item.get(key), list):
                    names += item[key]
            owner.update((rel, name) for rel in names if isinstance(rel, str))
        return owner

    def _files(self, tree: dict, tree_id: bytes, folder: str, dataset: str | None, owner: dict, hits: list) -> None:
        prefix = f"{folder}/" if folder else ""
        seen: set[str] = set()
        for rel, value in self._pages(tree, tree_id, "files", dataset, hits):
            try:
                path = safe_relpath(prefix + rel, f"tree of {dataset or 'project'}")
            except CorruptObject as exc:
                hits.append((tree_id, "tree", str(exc), dataset, None, f"files of {dataset or 'the project'}"))
                continue
            if path in seen:
                hits.append((tree_id, "tree", f"lists {path[:120]!r} twice", dataset, owner.get(rel), path))
            seen.add(path)
            if not (isinstance(value, list) and len(value) == 3 and _is_id(value[0]) and isinstance(value[1], int)):
                hits.append((tree_id, "tree", f"malformed entry for {path[:120]!r}", dataset, owner.get(rel), path))
                continue
            problem = self._blob(value[0])
            if problem:
                hits.append((value[0], "blob", problem, dataset, owner.get(rel), path))

    # -- blobs and chunks ------------------------------------------------------------------------------

    def _blob(self, oid: bytes) -> str | None:
        if oid not in self._blobs:
            self.reached.add(oid)
            self._blobs[oid] = self._blob_problem(oid)
        return self._blobs[oid]

    def _blob_problem(self, oid: bytes) -> str | None:
        if oid in self.bad:
            return self.bad[oid]
        loc = self.store.locate(oid)
        if loc is None:
            return "missing"
        if loc.codec != Codec.CHUNKED:
            return None
        try:
            chunks = self.store.chunk_list(oid)
        except (ObjectMissing, CorruptObject) as exc:
            return _ID_PREFIX.sub("", str(exc))
        self.reached.update(cid for cid, _ in chunks)
        for cid, length in chunks:
            where = self.store.locate(cid)
            if where is None:
                return f"its chunk {cid.hex()} is missing"
            if cid in self.bad:
                return f"its chunk {cid.hex()} is damaged: {self.bad[cid]}"
            if self.check_blobs and where.raw_len != length:
                return f"its chunk {cid.hex()} is {where.raw_len} bytes, the chunk list says {length}"
        if sum(n for _, n in chunks) != loc.raw_len:
            return "its chunk lengths do not add up to its length"
        return None


def _is_id(value: Any) -> bool:
    return isinstance(value, bytes) and len(value) == 32


def _shape_ok(kind: str, obj: dict) -> bool:
    if kind == "tree":
        return all(isinstance(obj.get(k), list) for k in ("files", "items", "children"))
    if kind == "page":
        return isinstance(obj.get("entries"), list)
    return True
