"""Moving the objects of versions between two stores (push: local to remote; pull and clone: remote to local).

Records are copied as they are stored (codec and bytes unchanged), each checked against its id on the way in, so a
damaged or forged object on either side is refused and never written. Only what the destination lacks moves: the
walk lists every object a version needs, and the destination's index answers which it has (no request per object).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pvc.errors import CorruptObject, ObjectMissing
from pvc.store.local.packcheck import check_record
from pvc.store.local.packs import Record
from pvc.store.model import Manifest, Page, Tree
from pvc.store.packed import PackedStore

__all__ = ["VersionObjects", "walk_version", "copy_objects", "Copied", "in_datasets"]


@dataclass
class VersionObjects:
    """Every object one version needs: the structure (manifest, trees, pages), and its files' blobs."""

    structure: list[bytes] = field(default_factory=list)
    # blob -> the datasets of the files that hold it (None: the project's own files); one blob may be in several
    blobs: dict[bytes, set[str | None]] = field(default_factory=dict)


def in_datasets(dataset: str | None, chosen: list[str] | None) -> bool:
    """Whether a file of `dataset` (None: the project's own files) is part of a restore or clone of `chosen`."""
    if chosen is None or dataset is None:
        return True
    return any(dataset == d or dataset.startswith(d + "/") for d in chosen)


def walk_version(get_object: Callable, manifest_id: bytes) -> VersionObjects:
    """The objects of the version whose manifest is `manifest_id`, reading its structure with `get_object(oid, cls)`."""
    found = VersionObjects(structure=[manifest_id])
    manifest = get_object(manifest_id, Manifest)
    stack: list[tuple[bytes, str | None]] = [(manifest.root, None)]
    while stack:
        tree_id, dataset = stack.pop()
        tree = get_object(tree_id, Tree)
        found.structure.append(tree_id)
        for ref in tree.files:
            found.structure.append(ref.oid)
            for _, value in get_object(ref.oid, Page).entries:
                found.blobs.setdefault(value.oid, set()).add(dataset)
        found.structure += [ref.oid for ref in tree.items]
        stack += [(child.oid, child.name) for child in tree.children]
    return found


@dataclass
class Copied:
    objects: int = 0
    bytes: int = 0  # stored bytes copied


def copy_objects(src: PackedStore, dst: PackedStore, oids: list[bytes], *, progress=None, phase: str = "objects") -> Copied:
    """Copy the objects of `oids` that `dst` lacks (the chunks of chunked blobs too) from `src` into `dst`
    (staged: the caller flushes). ObjectMissing when `src` lacks one; CorruptObject when one does not check out."""
    wanted = [oid for oid in dict.fromkeys(oids) if not dst.has(oid)]
    chunked = [oid for oid in wanted if (info := src.info(oid)) is not None and info.chunked]
    for oid in chunked:
        wanted += [cid for cid, _ in src.chunk_list(oid) if not dst.has(cid)]
    wanted = list(dict.fromkeys(wanted))
    absent = [oid for oid in wanted if src.info(oid) is None]
    if absent:
        raise ObjectMissing(f"object {absent[0].hex()} is missing from {_where(src)}"
                            + (f" (and {len(absent) - 1} more)" if len(absent) > 1 else ""))
    total = sum(src.info(oid).stored for oid in wanted)
    done = Copied()
    for oid, loc, stored in src.read_records(wanted):
        if stored is None:
            raise ObjectMissing(f"object {oid.hex()}: its pack cannot be read from {_where(src)}")
        problem = check_record(stored, Record(oid, loc.codec, loc.raw_len, loc.stored_len, loc.offset))
        if problem:
            raise CorruptObject(f"object {oid.hex()} from {_where(src)}: {problem}; nothing of it was stored")
        dst.put_record(oid, loc.codec, loc.raw_len, stored)
        done.objects += 1
        done.bytes += len(stored)
        if progress:
            progress(phase, done.bytes, total)
    return done


def _where(store) -> str:
    return getattr(store, "url", None) or "the local store"
