"""Capture, stage 2: the blob id and own meaning of every file, from the stat cache when its stat vouches for it,
else by reading it (in a thread pool; the hashing and the header parsers release the GIL for the big work)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

from pvc.errors import BadInput
from pvc.project.annotation import image_annotation_summary, volume_annotation_summary
from pvc.project.image import image_meta
from pvc.project.jsonfile import parse_json
from pvc.project.scan import FileInfo
from pvc.record import record
from pvc.store.objects import canonical
from pvc.store.statcache import CacheEntry, StatCache, pack_info, raw_is_invalid, unpack_info

__all__ = ["ObjectSink", "Hashed", "hash_files", "video_module", "volume_module", "is_invalid", "invalid_reason"]


class ObjectSink(Protocol):
    """What capture needs of a store: the local store, or an overlay that writes nothing."""

    chunk_threshold: int

    def has(self, oid: bytes) -> bool: ...
    def put_file(self, path: Path, size: int, on_data: Any = None) -> bytes: ...
    def put_object(self, obj: Any) -> bytes: ...
    def get_object(self, oid: bytes, cls: type) -> Any: ...
    def get(self, oid: bytes, *, verify: bool = True) -> bytes: ...


@record(frozen=True, slots=True)
class Hashed:
    """What reading one file gave: its blob id and what it means on its own (media header, annotation summary, or
    None), the latter as its canonical msgpack bytes (`raw`; what the stat cache stores, and a few dozen bytes
    instead of a tree of dicts): a capture holds one per file until its pages are built; `info` decodes it."""

    oid: bytes
    raw: bytes

    @property
    def info(self) -> Any:
        return unpack_info(self.raw)


def hash_files(cache: StatCache, store: ObjectSink, files: list[FileInfo], roles: dict[str, str], allow_invalid: bool,
               progress) -> tuple[dict[str, CacheEntry], list[FileInfo]]:
    """The stat cache entry of every file (blob id and info, from the cache or by reading the file: what the
    later stages read and what the cache saves, one compact entry a file), and the files read."""
    entries: dict[str, CacheEntry] = {}
    todo: list[tuple[FileInfo, str]] = []
    has, adopt = store.has, getattr(store, "adopt", None)
    for f, cached in zip(files, cache.get_all(files, roles)):
        if (cached is None or not (has(cached.oid) or (adopt is not None and adopt(cached.oid, f.abspath, f.size)))
                or (not allow_invalid and raw_is_invalid(cached.raw))):
            # not vouched for; object lost from the store (stored again from the file; an overlay takes the file,
            # which the stat cache vouches for, as where that object is); or kept with --allow-invalid before and
            # now to be refused again
            todo.append((f, roles[f.relpath]))
        else:
            entries[f.relpath] = cached
    train = getattr(store, "train_dictionaries", None)  # a store that writes (not an overlay): docs/format.md
    if train is not None and todo:
        train([(f.path, f.size) for f, _ in todo])
    total_bytes = sum(f.size for f, _ in todo)
    runner = (_in_processes if _worth_processes(store, todo, total_bytes)
              else _in_threads if total_bytes >= _THREAD_BYTES else _in_caller)
    results = runner(store, todo, allow_invalid, progress, total_bytes)
    for (f, role), result in zip(todo, results):
        entries[f.relpath] = CacheEntry.of(f, result.oid, role, result.raw)
    return entries, [f for f, _ in todo]


# Fewer bytes than this (a small change: a few hundred annotations and images), and the files are read in the calling
# thread: their per-file Python work holds the GIL, and a pool's threads only contend for it (measured on the 20k
# bench projects' 1% change, 600 files of 2.3 and 9.4 MB: a commit took 0.41-0.45 s with the pool, 0.32-0.38 s
# without it). More, and reading and hashing (which release the GIL) overlap in a pool.
_THREAD_BYTES = 16 << 20


def _in_caller(store: ObjectSink, todo: list, allow_invalid: bool, progress, total_bytes: int) -> list[Hashed]:
    results, done = [], 0
    for f, role in todo:
        results.append(_hash_one(store, f, role, allow_invalid))
        done += f.size
        if progress:
            progress("hashing", done, total_bytes)
    return results


def _in_threads(store: ObjectSink, todo: list, allow_invalid: bool, progress, total_bytes: int) -> list[Hashed]:
    """Hash and describe the files in a thread pool (reads and hashing release the GIL)."""
    from concurrent.futures import ThreadPoolExecutor  # ~5 ms to import (logging): a small change never needs it

    results, done = [], 0
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) * 2)) as pool:
        for (f, _), result in zip(todo, pool.map(lambda t: _hash_one(store, t[0], t[1], allow_invalid), todo)):
            results.append(result)
            done += f.size
            if progress:
                progress("hashing", done, total_bytes)
    return results


# Many files into the local store: worker processes, each with its GIL, read, hash, describe and write the files
# into packs of their own (under tmp/, like the commit's), which the store then publishes with the rest. Measured
# on 20k JPEG items (docs/performance.md): the per-file Python work (headers, JSON summaries, pack records) holds
# the GIL about half the time, so threads alone use about one core of two.
_PROCESS_FILES = 2000
_PROCESS_BYTES = 256 << 20
_CHUNK_BYTES = 32 << 20


def _worth_processes(store: ObjectSink, todo: list, total_bytes: int) -> bool:
    return (hasattr(store, "stage_sealed") and (os.cpu_count() or 1) > 1
            and (len(todo) >= _PROCESS_FILES or total_bytes >= _PROCESS_BYTES))


def _in_processes(store, todo: list, allow_invalid: bool, progress, total_bytes: int) -> list[Hashed]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    chunks = _chunks(todo)
    settings = (str(store.root), store.chunk_threshold, store.pack_size, allow_invalid, store.writing_dictionaries())
    results: list[Hashed] = []
    done = 0
    # fork: the workers start with pvc, Pillow and the readers already imported, and no open pool to inherit
    with ProcessPoolExecutor(max_workers=os.cpu_count(), mp_context=multiprocessing.get_context("fork")) as pool:
        futures = [pool.submit(_hash_chunk, settings, [(f.abspath, f.size, role) for f, role in chunk])
                   for chunk in chunks]
        try:
            for chunk, future in zip(chunks, futures):
                hashed, sealed = future.result()
                store.stage_sealed(sealed)  # published by the commit's flush, deleted by its abort
                results += hashed
                done += sum(f.size for f, _ in chunk)
                if progress:
                    progress("hashing", done, total_bytes)
        except BaseException:
            for future in futures:
                future.cancel()
            for future in futures:  # a worker that finished after the failure: its packs go too
                if not future.cancelled() and future.done() and future.exception() is None:
                    store.stage_sealed(future.result()[1])
            raise
    return results


def _chunks(todo: list) -> list[list]:
    """Runs of files of about _CHUNK_BYTES (and at most a few thousand files), in scan order."""
    chunks, current, size = [], [], 0
    for item in todo:
        current.append(item)
        size += item[0].size
        if size >= _CHUNK_BYTES or len(current) >= 4096:
            chunks.append(current)
            current, size = [], 0
    if current:
        chunks.append(current)
    return chunks


def _hash_chunk(settings: tuple, files: list[tuple[str, int, str]]) -> tuple[list[Hashed], list]:
    """In a worker process: store `files` in packs of its own under tmp/ and describe them; return what it found and
    the sealed packs (not published: the parent's commit does that). On any failure its packs are deleted."""
    from pvc.store.local.packstore import PackStore

    root, chunk_threshold, pack_size, allow_invalid, dictionaries = settings
    store = PackStore(Path(root), chunk_threshold=chunk_threshold, pack_size=pack_size)
    try:
        for did, data in dictionaries:  # the parent's, maybe trained and staged by it just now
            store.use_dictionary(did, data)
        hashed = [_hash_one(store, _Path(path, size), role, allow_invalid) for path, size, role in files]
        return hashed, store.seal_staged()
    except BaseException:
        store.abort()
        raise
    finally:
        store.close_files()


@record(frozen=True, slots=True)
class _Path:
    """What _hash_one needs of a FileInfo."""

    abspath: str
    size: int

    @property
    def path(self) -> Path:
        return Path(self.abspath)


def _hash_one(store: ObjectSink, f: FileInfo, role: str, allow_invalid: bool) -> Hashed:
    seen: dict[str, bytes] = {}
    oid = store.put_file(f.path, f.size, on_data=lambda data: seen.setdefault("data", data))
    data = seen.get("data")
    try:
        info = _role_info(role, data, f.path)
    except BadInput as exc:
        if not allow_invalid:
            raise
        info = {"invalid": exc.reason}
    return Hashed(oid, pack_info(canonical(info)))  # sorted once here, so every encoding of it can take it as it is


def _role_info(role: str, data: bytes | None, path: Path) -> Any:
    """What pvc understands of one file on its own: media header, annotation summary, or nothing."""
    if role == "image":
        return image_meta(data, path)
    if role == "video":
        return video_module().video_meta(path)
    if role == "volume":
        return volume_module().volume_meta([path])
    if role == "dicom":
        return {"series": next(iter(volume_module().group_dicom_series([path])))}
    if role in ("ann", "video_ann", "volume_ann"):
        doc = parse_json(data if data is not None else path.read_bytes(), path)
        if role == "ann":
            return image_annotation_summary(doc, path)
        if role == "volume_ann":
            return volume_annotation_summary(doc, path)
        if not isinstance(doc, dict):
            raise BadInput(path, "not a Supervisely video annotation (not a JSON object)")
        video = video_module()
        return video.video_annotation_summary(doc, None) | {"extent": video.annotation_frame_extent(doc)}
    return None


def is_invalid(info: Any) -> bool:
    return isinstance(info, dict) and "invalid" in info


def invalid_reason(entry: CacheEntry | Hashed) -> str | None:
    """Why the file of `entry` is refused by a commit (its info is {"invalid": reason}), or None."""
    return entry.info["invalid"] if raw_is_invalid(entry.raw) else None


def video_module():
    """The video module, imported on first use: PyAV costs ~0.1 s to load and image projects never need it."""
    from pvc.project import video

    return video


def volume_module():
    """The volume module, imported on first use (NumPy, pydicom, pynrrd, nibabel)."""
    from pvc.project import volume

    return volume
