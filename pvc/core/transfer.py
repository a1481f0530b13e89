"""Moving the objects of versions between two stores (push: local to remote; pull and clone: remote to local).

Records are copied as they are stored (codec and bytes unchanged), each checked against its id on the way in, so a
damaged or forged object on either side is refused and never written. Only what the destination lacks moves: the
walk lists every object a version needs, and the destination's index answers which it has (no request per object).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from pvc.errors import CorruptObject, ObjectMissing
from pvc.record import field, record
from pvc.store.local.packcheck import check_record
from pvc.store.local.packs import RECORD, Record, check_record_header
from pvc.store.model import Manifest, Page, Tree
from pvc.store.objects import hash_bytes
from pvc.store.packed import PackedStore

__all__ = ["VersionObjects", "walk_version", "copy_objects", "send_objects", "receive_objects", "Copied", "in_datasets"]


@record
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


def walk_version(get_object: Callable, manifest_id: bytes, prefetch: Callable[[list[bytes]], None] | None = None
                 ) -> VersionObjects:
    """The objects of the version whose manifest is `manifest_id`, reading its structure with `get_object(oid, cls)`;
    `prefetch(ids)`, if given, is told each tree's files pages before they are read one by one."""
    found = VersionObjects(structure=[manifest_id])
    manifest = get_object(manifest_id, Manifest)
    stack: list[tuple[bytes, str | None]] = [(manifest.root, None)]
    while stack:
        tree_id, dataset = stack.pop()
        tree = get_object(tree_id, Tree)
        found.structure.append(tree_id)
        if prefetch is not None and tree.files:
            prefetch([ref.oid for ref in tree.files])
        for ref in tree.files:
            found.structure.append(ref.oid)
            for _, value in get_object(ref.oid, Page).entries:
                found.blobs.setdefault(value.oid, set()).add(dataset)
        found.structure += [ref.oid for ref in tree.items]
        stack += [(child.oid, child.name) for child in tree.children]
    return found


@record
class Copied:
    objects: int = 0
    bytes: int = 0  # stored bytes copied


def copy_objects(src: PackedStore, dst: PackedStore, oids: list[bytes], *, progress=None, phase: str = "objects",
                 expand_chunks: bool = True) -> Copied:
    """Copy the objects of `oids` that `dst` lacks (the chunks of chunked blobs too, unless `expand_chunks` is
    False: `oids` names them already) from `src` into `dst` (staged: the caller flushes). ObjectMissing when `src`
    lacks one; CorruptObject when one does not check out."""
    wanted = [oid for oid in dict.fromkeys(oids) if not dst.has(oid)]
    chunked = [oid for oid in wanted if expand_chunks and (info := src.info(oid)) is not None and info.chunked]
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
        problem = check_record(stored, Record(oid, loc.codec, loc.raw_len, loc.stored_len, loc.offset),
                               _dictionaries(src, dst))
        if problem:
            raise CorruptObject(f"object {oid.hex()} from {_where(src)}: {problem}; nothing of it was stored")
        dst.put_record(oid, loc.codec, loc.raw_len, stored)
        done.objects += 1
        done.bytes += len(stored)
        if progress:
            progress(phase, done.bytes, total)
    return done


WHOLE_PACK = 0.9  # a local pack goes as it is when at least this share of its bytes is wanted


def send_objects(src, dst, oids: list[bytes], *, progress=None, phase: str = "objects") -> Copied:
    """Send the objects of `oids` that the remote `dst` lacks (the chunks of chunked blobs too) from the local store
    `src`. A local pack whose bytes are (nearly) all wanted records is uploaded as it is, checked against its name,
    with an index naming the wanted records only (no record is read, decoded or re-packed: a first push moves the
    packs the commits wrote); the other records are copied one by one into new packs, as `copy_objects` does."""
    wanted, whole = _plan_whole(src, dst, oids)
    done = Copied()
    whole_bytes = sum(loc.stored_len for _, records in whole for _, loc in records)
    for pack, records in whole:
        dst.send_pack(lambda pack=pack: src.read_pack(pack), pack,
                      [(oid, loc.offset, loc.stored_len, loc.raw_len, loc.codec) for oid, loc in records])
        done.objects += len(records)
        done.bytes += sum(loc.stored_len for _, loc in records)
        if progress:
            progress(phase, done.bytes, whole_bytes)
    return _copy_the_rest(src, dst, wanted, whole, done, progress, phase)


def receive_objects(src, dst, oids: list[bytes], *, progress=None, phase: str = "objects",
                    on_pack: Callable | None = None) -> Copied:
    """Fetch the objects of `oids` that the local store `dst` lacks (the chunks of chunked blobs too) from the remote
    `src` (staged: the caller flushes). A remote pack whose bytes are (nearly) all wanted records is downloaded
    whole, checked against its name, each wanted record's header against the remote's index and its content against
    its id (a pack renamed to the hash of forged records passes the first check, not this one), and staged as it is
    with an index of those records; the other records are read with ranged reads and checked one by one, as
    `copy_objects` does. Nothing that does not check out is stored.

    `on_pack(src, [(id, location, content)])`, if given, is called with the wanted records of each pack downloaded
    whole, once it is staged, while its bytes are still in memory (in the download's thread): `content` is the
    object's content, checked against its id (None for a chunked object's chunk list). A content may be a read-only
    view of the pack's download buffer, which the thread fills with its next pack: valid during the call only
    (copy what must outlive it)."""
    wanted, whole = _plan_whole(src, dst, oids)
    done = Copied()
    whole_bytes = sum(loc.stored_len for _, records in whole for _, loc in records)

    def fetch(item) -> tuple[int, int]:
        pack, records = item
        data = src.read_pack(pack)  # this thread's download buffer: everything done with it is done before return
        view = memoryview(data).toreadonly()  # the records' views: nothing written through them
        contents = []  # (kept for on_pack only: a pull drops each content once checked)
        for oid, loc in records:
            check_record_header(view[loc.offset - RECORD.size : loc.offset + loc.stored_len], loc, oid)
            content = _checked(src, dst, oid, loc, view[loc.offset : loc.offset + loc.stored_len])
            if on_pack is not None:
                contents.append((oid, loc, content))
        dst.stage_pack(pack, data, [(oid, loc.offset, loc.stored_len, loc.raw_len, loc.codec) for oid, loc in records])
        if on_pack is not None:
            on_pack(src, contents)
        return len(records), sum(loc.stored_len for _, loc in records)

    if whole:
        with ThreadPoolExecutor(max_workers=_WHOLE_PACKS) as pool:
            for objects, stored in pool.map(fetch, whole):
                done.objects += objects
                done.bytes += stored
                if progress:
                    progress(phase, done.bytes, whole_bytes)
    return _copy_the_rest(src, dst, wanted, whole, done, progress, phase)


def _checked(src, dst, oid: bytes, loc, stored):
    """The content of the record of `oid` read from `src` whose stored bytes are `stored`, checked against its id
    (CorruptObject if it does not match); None for a chunked object, whose chunk list is checked instead. A record
    compressed with a zstd dictionary `src` lacks is decoded with `dst`'s copy of it, if `dst` has one."""
    if src.info_at(loc).chunked:
        problem = check_record(stored, Record(oid, loc.codec, loc.raw_len, loc.stored_len, loc.offset),
                               _dictionaries(src, dst))
        content = None
    else:
        try:
            try:
                content = src.decoded(oid, loc, stored)
            except ObjectMissing:  # the zstd dictionary its record names
                content = dst.decoded(oid, loc, stored)
            problem = (None if len(content) == loc.raw_len and hash_bytes(content) == oid
                       else "content does not match its id")
        except ObjectMissing:
            problem = "the zstd dictionary it was compressed with is missing there"
        except CorruptObject as exc:
            problem = str(exc).removeprefix(f"object {oid.hex()}: ")
    if problem:
        raise CorruptObject(f"object {oid.hex()} from {_where(src)}: {problem}; nothing of it was stored")
    return content


def _dictionaries(src, dst) -> Callable:
    """How a record read from `src` gets the zstd dictionary it names: from `src`, else from `dst` (a record is
    checked against its id whatever dictionary decodes it)."""

    def find(ref: bytes):
        try:
            return src.dictionary_by_ref(ref)
        except ObjectMissing:
            return dst.dictionary_by_ref(ref)

    return find


def _copy_the_rest(src, dst, wanted: list[bytes], whole: list, done: Copied, progress, phase: str) -> Copied:
    """After the whole packs (`done`), the wanted objects they did not hold, record by record."""
    sent = {oid for _, records in whole for oid, _ in records}
    shifted = None if progress is None else (lambda p, d, t: progress(p, done.bytes + d, done.bytes + t))
    more = copy_objects(src, dst, [oid for oid in wanted if oid not in sent], progress=shifted, phase=phase,
                        expand_chunks=False)
    return Copied(done.objects + more.objects, done.bytes + more.bytes)


def _plan_whole(src, dst, oids: list[bytes]) -> tuple[list[bytes], list[tuple[bytes, list]]]:
    """The objects of `oids` that `dst` lacks, chunks included, and the packs of `src` that hold (nearly) only
    such objects: [(pack, [(id, location)])]. The zstd dictionaries of `src` always go along (records of the
    objects name them; docs/format.md, "Dictionaries")."""
    wanted = list(dict.fromkeys([*oids, *src.dictionary_ids()]))
    held = dst.held(wanted)  # asked at once, not once per object: a clone plans every object of a version here
    wanted = [oid for oid in wanted if oid not in held]
    located = src.locate_many(wanted)
    # (in the order of `wanted`, not of the answer: the packs a push builds of copied records, and the order packs
    # move in, stay the same from one run to the next)
    chunks = [cid for oid in wanted if (loc := located.get(oid)) is not None and loc.chunked
              for cid, _ in src.chunk_list(oid)]
    if chunks:
        known = set(wanted)
        chunks = [cid for cid in dict.fromkeys(chunks) if cid not in known]
        held = dst.held(chunks)
        chunks = [cid for cid in chunks if cid not in held]
        located.update(src.locate_many(chunks))
        wanted += chunks
    by_pack: dict[bytes, list] = {}
    wanted_bytes: dict[bytes, int] = {}
    for oid in wanted:
        loc = located.get(oid)
        if loc is not None:
            by_pack.setdefault(loc.pack, []).append((oid, loc))
            wanted_bytes[loc.pack] = wanted_bytes.get(loc.pack, 0) + RECORD.size + loc.stored_len
    whole = [(pack, sorted(records, key=lambda r: r[1].offset)) for pack, records in by_pack.items()
             if (size := src.pack_size_of(pack)) and wanted_bytes[pack] >= WHOLE_PACK * size]
    return wanted, whole


_WHOLE_PACKS = 4  # whole packs downloaded at once (each is held in memory until written)


def _where(store) -> str:
    return getattr(store, "url", None) or "the local store"
