"""The bytes of a remote: named immutable files under a prefix, on object storage (S3 through obstore) or in a folder.

A medium knows nothing of packs or versions. It lists names, reads whole files or byte ranges, and creates files
**create-only**: a name that exists is never overwritten (`If-None-Match: *` on S3; a hard link, which fails if the
name exists, in a folder). Every failure of the medium itself (unreachable, denied, no such bucket) is one
`RemoteError` line after the retries; an absent name is `ObjectMissing`, for the caller to judge.
"""

from __future__ import annotations

import mmap
import os
import re
import tempfile
import threading
from datetime import timedelta
from pathlib import Path
from typing import Protocol

from pvc.errors import ObjectMissing, RemoteError
from pvc.store.atomic import fsync_dir
from pvc.store.remote.url import RemoteSpec

__all__ = ["Medium", "FileMedium", "S3Medium", "open_medium", "whole_buffer"]

_STREAM_CHUNK = 256 << 10  # bytes obstore gathers before it hands a chunk of a download over (below malloc's mmap
# threshold, so its chunk buffers are reused from the heap instead of being mapped and faulted in anew)
_MIN_BUFFER = 32 << 20  # a download buffer holds at least this (packs are 16 MiB, up to 24 MiB with a large record)
_held = threading.local()


def whole_buffer(size: int) -> memoryview:
    """This thread's download buffer, at least `size` bytes: an anonymous map, page-aligned, kept and reused by the
    thread. A whole pack read into it costs no new pages once the thread has read one (a new 16 MiB buffer per pack
    cost ~4,000 page faults and their zeroing, and its copy from obstore's chunks; measured with `perf record -e
    page-faults` on a 20k clone: 58% of the clone's faults). The view is valid until the thread's next call."""
    buffer = getattr(_held, "buffer", None)
    if buffer is None or len(buffer) < size:
        capacity = max(_MIN_BUFFER, -(-size // mmap.PAGESIZE) * mmap.PAGESIZE)
        # (a private map; the one it replaces goes with its last view)
        buffer = _held.buffer = mmap.mmap(-1, capacity, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    return memoryview(buffer)


class Medium(Protocol):
    url: str

    def list(self, prefix: str) -> dict[str, int]:
        """Names directly under `prefix` ("packs", "versions", ...) -> size."""
        ...

    def get(self, name: str) -> bytes: ...
    def get_whole(self, name: str, size: int) -> memoryview:
        """The object's bytes (`size`: its listed size, a hint) in this thread's `whole_buffer`, valid until the
        thread's next `get_whole`."""
        ...

    def get_range(self, name: str, start: int, length: int) -> bytes: ...
    def get_ranges(self, name: str, ranges: list[tuple[int, int]]) -> list[bytes]: ...
    def create(self, name: str, data: bytes) -> bool:
        """Write `name` unless it exists; True if this call created it."""
        ...

    def create_from(self, name: str, path: Path) -> bool: ...


def open_medium(spec: RemoteSpec, *, timeout: float = 60.0, retries: int = 5, credentials=None) -> Medium:
    if spec.scheme == "file":
        return FileMedium(Path(spec.path))
    return S3Medium(spec, timeout=timeout, retries=retries, credentials=credentials)


class FileMedium:
    """A remote in a folder (a shared or mounted disk): files written through a temp name, fsynced, and linked
    into place, so a name appears complete or not at all, and never replaces one that exists."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = f"file://{root}"

    def list(self, prefix: str) -> dict[str, int]:
        folder = self.root / prefix
        try:
            with os.scandir(folder) as entries:
                return {e.name: e.stat().st_size for e in entries if not e.name.startswith(".") and e.is_file()}
        except FileNotFoundError:  # nothing pushed there yet: the first push creates the folders
            return {}
        except OSError as exc:
            raise RemoteError(f"{self.url}: cannot list {prefix}/ ({exc.strerror or exc})") from None

    def get_whole(self, name: str, size: int) -> memoryview:
        try:
            with open(self.root / name, "rb", buffering=0) as f:
                size = os.fstat(f.fileno()).st_size
                view = whole_buffer(size)[:size]
                done = 0
                while done < size and (n := f.readinto(view[done:])):
                    done += n
                return view[:done]
        except FileNotFoundError:
            raise ObjectMissing(f"{self.url}/{name} is missing") from None
        except OSError as exc:
            raise RemoteError(f"{self.url}/{name}: unreadable ({exc.strerror or exc})") from None

    def get(self, name: str) -> bytes:
        try:
            return (self.root / name).read_bytes()
        except FileNotFoundError:
            raise ObjectMissing(f"{self.url}/{name} is missing") from None
        except OSError as exc:
            raise RemoteError(f"{self.url}/{name}: unreadable ({exc.strerror or exc})") from None

    def get_range(self, name: str, start: int, length: int) -> bytes:
        return self.get_ranges(name, [(start, length)])[0]

    def get_ranges(self, name: str, ranges: list[tuple[int, int]]) -> list[bytes]:
        try:
            fd = os.open(self.root / name, os.O_RDONLY)
        except FileNotFoundError:
            raise ObjectMissing(f"{self.url}/{name} is missing") from None
        except OSError as exc:
            raise RemoteError(f"{self.url}/{name}: unreadable ({exc.strerror or exc})") from None
        try:
            return [os.pread(fd, length, start) for start, length in ranges]
        finally:
            os.close(fd)

    def create(self, name: str, data: bytes) -> bool:
        return self._create(name, lambda f: f.write(data))

    def create_from(self, name: str, path: Path) -> bool:
        def copy(out) -> None:
            with open(path, "rb") as src:
                while block := src.read(1 << 20):
                    out.write(block)

        return self._create(name, copy)

    def _create(self, name: str, write) -> bool:
        target = self.root / name
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        except OSError as exc:
            raise RemoteError(f"{self.url}/{name}: cannot write ({exc.strerror or exc})") from None
        try:
            os.fchmod(fd, 0o644)
            with os.fdopen(fd, "wb") as out:
                write(out)
                out.flush()
                os.fsync(out.fileno())
            try:
                os.link(tmp, target)  # fails if the name exists: create-only
                created = True
            except FileExistsError:
                created = False
        except OSError as exc:
            raise RemoteError(f"{self.url}/{name}: cannot write ({exc.strerror or exc})") from None
        finally:
            Path(tmp).unlink(missing_ok=True)
        fsync_dir(target.parent)
        return created


class S3Medium:
    """A remote in an S3 bucket (AWS, or any S3-compatible server through `endpoint`), through obstore.

    Credentials come from the environment and the standard AWS chain only (AWS_ACCESS_KEY_ID and friends, web
    identity, container and instance credentials, or a profile of ~/.aws through `credentials`), never from the
    project's config. Transient failures (5xx, timeouts, resets) are retried with exponential backoff by obstore."""

    def __init__(self, spec: RemoteSpec, *, timeout: float, retries: int, credentials=None) -> None:
        from obstore.store import S3Store  # loaded on first use: commands without a remote never need it

        self.url = spec.url
        self._bucket = spec.bucket
        client = {"timeout": f"{max(1, int(timeout))}s", "connect_timeout": f"{max(1, int(min(timeout, 10)))}s"}
        if spec.endpoint and spec.endpoint.startswith("http://"):
            client["allow_http"] = True
        options = {"region": spec.region} if spec.region else {}
        if spec.endpoint:
            options["endpoint"] = spec.endpoint
        retry = {"max_retries": retries, "retry_timeout": timedelta(seconds=timeout),
                 "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(seconds=5), "base": 2}}
        try:
            self._store = S3Store(spec.bucket, prefix=spec.prefix or None, client_options=client, retry_config=retry,
                                  credential_provider=credentials, **options)
        except Exception as exc:  # obstore raises its own types on bad configuration
            raise RemoteError(f"{self.url}: {_reason(exc)}") from None

    def list(self, prefix: str) -> dict[str, int]:
        import obstore

        found: dict[str, int] = {}
        try:
            for batch in obstore.list(self._store, prefix=prefix, chunk_size=1000):
                for meta in batch:
                    rel = meta["path"][len(prefix) + 1 :] if prefix else meta["path"]
                    if "/" not in rel:
                        found[rel] = meta["size"]
        except Exception as exc:
            raise self._error(exc, f"{prefix}/") from None
        return found

    def get(self, name: str) -> bytes:
        import obstore

        try:
            return bytes(obstore.get(self._store, name).bytes())
        except Exception as exc:
            raise self._error(exc, name) from None

    def get_whole(self, name: str, size: int) -> memoryview:
        """Streamed into this thread's `whole_buffer` in chunks of `_STREAM_CHUNK` (obstore's `bytes()` would gather
        the download into a new buffer of its own, faulted in page by page, and a copy of it)."""
        import obstore

        view, done = whole_buffer(size), 0
        try:
            for chunk in obstore.get(self._store, name).stream(min_chunk_size=_STREAM_CHUNK):
                end = done + len(chunk)
                if end > len(view):  # longer than listed: a larger buffer, what came so far copied over
                    grown = whole_buffer(2 * end)
                    grown[:done] = view[:done]
                    view = grown
                view[done:end] = chunk
                done = end
        except Exception as exc:
            raise self._error(exc, name) from None
        return view[:done]

    def get_range(self, name: str, start: int, length: int) -> bytes:
        import obstore

        if length == 0:
            return b""
        try:
            return bytes(obstore.get_range(self._store, name, start=start, length=length))
        except Exception as exc:
            raise self._error(exc, name) from None

    def get_ranges(self, name: str, ranges: list[tuple[int, int]]) -> list[bytes]:
        import obstore

        wanted = [(s, n) for s, n in ranges if n]
        try:
            got = obstore.get_ranges(self._store, name, starts=[s for s, _ in wanted], lengths=[n for _, n in wanted]) if wanted else []
        except Exception as exc:
            raise self._error(exc, name) from None
        it = iter(got)
        return [bytes(next(it)) if n else b"" for _, n in ranges]

    def create(self, name: str, data: bytes | Path) -> bool:
        """Create-only PUT of `data` (bytes, or a file obstore reads)."""
        import obstore
        from obstore.exceptions import AlreadyExistsError, PreconditionError

        try:
            obstore.put(self._store, name, data, mode="create", use_multipart=False)
            return True
        except (AlreadyExistsError, PreconditionError):
            return False
        except Exception as exc:
            raise self._error(exc, name) from None

    def create_from(self, name: str, path: Path) -> bool:
        return self.create(name, path)

    def _error(self, exc: Exception, name: str) -> Exception:
        from obstore.exceptions import NotFoundError, PermissionDeniedError, UnauthenticatedError

        text = str(exc)
        if "/latest/api/token" in text or "/latest/meta-data/iam" in text:  # the chain's last resort failed
            return RemoteError(f"{self.url}: no AWS credentials found (set AWS_ACCESS_KEY_ID and "
                               "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)")
        if "NoSuchBucket" in text:
            return RemoteError(f"{self.url}: bucket {self._bucket!r} does not exist")
        if isinstance(exc, (FileNotFoundError, NotFoundError)):
            return ObjectMissing(f"{self.url}/{name} is missing")
        if isinstance(exc, (PermissionDeniedError, UnauthenticatedError)) or re.search(r"\b40[13]\b", text):
            return RemoteError(f"{self.url}: access denied ({_reason(exc)}); check the AWS credentials in the "
                               "environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE)")
        return RemoteError(f"{self.url}: {name}: {_reason(exc)}")


def _reason(exc: Exception) -> str:
    """The useful part of an obstore message, on one line, without request URLs' query strings."""
    text = str(exc).split("\n\nDebug source", 1)[0]
    code = re.search(r"<Code>([^<]+)</Code>", text)
    status = re.search(r"status code: (\d{3} [A-Za-z ]+)", text)
    if "after" in text and "retries" in text:
        tail = re.search(r"after (\d+) retries.*?- (.*)$", text.replace("\n", " "))
        why = tail.group(2).strip() if tail else "no answer"
        return f"no answer after {tail.group(1) if tail else 'several'} retries ({why[:160]})"
    if status:
        return f"{status.group(1).strip()}" + (f", {code.group(1)}" if code else "")
    return " ".join(text.split())[:200] or type(exc).__name__
