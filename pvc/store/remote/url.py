"""Remote addresses: `s3://bucket/prefix` (with an optional endpoint and region), `file:///path`, or a plain path."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from pvc.errors import UsageError
from pvc.record import record, replace

__all__ = ["RemoteSpec", "parse_remote"]

SCHEMES = ("s3", "file")


@record(frozen=True)
class RemoteSpec:
    """Where a remote is: an S3 bucket and prefix, or a folder."""

    url: str  # normalised: s3://bucket/prefix or file:///absolute/path
    scheme: str
    bucket: str | None = None
    prefix: str = ""
    path: str | None = None
    endpoint: str | None = None  # S3-compatible servers (MinIO, Ceph, ...): http(s)://host:port
    region: str | None = None
    timeout: float = 60.0  # seconds a request may take (and the retries of one request, together)
    retries: int = 5  # retries of a request that failed in a way worth retrying (5xx, timeout, reset)

    def to_config(self) -> dict:
        out = {"url": self.url, "endpoint": self.endpoint, "region": self.region}
        if (self.timeout, self.retries) != (60.0, 5):
            out |= {"timeout": self.timeout, "retries": self.retries}
        return out


def parse_remote(url: str, *, endpoint: str | None = None, region: str | None = None, timeout: float = 60.0,
                 retries: int = 5) -> RemoteSpec:
    """A RemoteSpec for `url`, or UsageError saying what is wrong with it (one line)."""
    if not (isinstance(timeout, (int, float)) and 1 <= timeout <= 3600):
        raise UsageError(f"timeout {timeout!r}: give seconds between 1 and 3600")
    if not (isinstance(retries, int) and 0 <= retries <= 20):
        raise UsageError(f"retries {retries!r}: give a number between 0 and 20")
    return replace(_parse(url, endpoint, region), timeout=float(timeout), retries=retries)


def _parse(url: str, endpoint: str | None, region: str | None) -> RemoteSpec:
    text = str(url).strip()
    if not text:
        raise UsageError("a remote URL is empty (use s3://bucket/prefix, file:///path or a folder)")
    parts = urlsplit(text)
    if len(parts.scheme) <= 1:  # no scheme (or a Windows drive letter): a folder
        return _folder(os.path.abspath(text), endpoint, region)
    scheme = parts.scheme.lower()
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise UsageError(f"{text}: a file:// remote names a folder on this machine (file:///absolute/path)")
        return _folder(parts.path, endpoint, region)
    if scheme != "s3":
        raise UsageError(f"{text}: unsupported remote URL scheme {scheme!r} (use s3://bucket/prefix, file:///path or a folder)")
    bucket = parts.netloc
    if not bucket or parts.query or parts.fragment:
        raise UsageError(f"{text}: an S3 remote is s3://bucket/prefix")
    prefix = parts.path.strip("/")
    if any(p in (".", "..") for p in prefix.split("/")) or "//" in parts.path.strip("/"):
        raise UsageError(f"{text}: the prefix may not hold '.', '..' or empty parts")
    if endpoint is not None and urlsplit(endpoint).scheme not in ("http", "https"):
        raise UsageError(f"{endpoint}: an endpoint is an http:// or https:// URL")
    normal = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
    return RemoteSpec(normal, "s3", bucket=bucket, prefix=prefix, endpoint=endpoint, region=region)


def _folder(path: str, endpoint: str | None, region: str | None) -> RemoteSpec:
    if endpoint is not None or region is not None:
        raise UsageError("--endpoint and --region are for s3:// remotes")
    if not os.path.isabs(path):
        raise UsageError(f"{path}: a file:// remote needs an absolute path (file:///absolute/path)")
    path = os.path.normpath(path)
    return RemoteSpec(f"file://{path}", "file", path=path)
