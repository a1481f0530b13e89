"""A medium's whole-object reads: into the reading thread's reusable, page-aligned buffer, on a folder and on S3."""

from __future__ import annotations

import ctypes
import os
import threading

import pytest

from pvc.errors import ObjectMissing
from pvc.store.remote import medium as medium_module
from pvc.store.remote.medium import FileMedium, S3Medium
from pvc.store.remote.url import parse_remote


@pytest.fixture(params=["folder", "s3"])
def medium(request, tmp_path):
    if request.param == "folder":
        return FileMedium(tmp_path / "remote")
    bucket = request.getfixturevalue("s3_bucket")
    spec = parse_remote(f"s3://{bucket}/pre", endpoint=request.getfixturevalue("s3_server"))
    return S3Medium(spec, timeout=20, retries=1)


def _address(view: memoryview) -> int:
    return ctypes.addressof(ctypes.c_char.from_buffer(view))


def test_a_whole_object_comes_exactly_into_an_aligned_buffer_the_thread_reuses(medium):
    first, second = os.urandom(700_001), os.urandom(5_000)
    medium.create("packs/a.pack", first)
    medium.create("packs/b.pack", second)
    got = medium.get_whole("packs/a.pack", len(first))
    assert bytes(got) == first
    assert _address(got) % 4096 == 0  # O_DIRECT can write it from where it is
    where = _address(got)
    again = medium.get_whole("packs/b.pack", len(second))
    assert bytes(again) == second
    assert _address(again) == where  # the same buffer: no new pages for the next pack


def test_each_thread_has_its_own_buffer(medium):
    medium.create("packs/a.pack", b"a" * 9000)
    medium.create("packs/b.pack", b"b" * 9000)
    views = {}

    def read(name):
        views[name] = medium.get_whole(f"packs/{name}.pack", 9000)

    threads = [threading.Thread(target=read, args=(n,)) for n in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert bytes(views["a"]) == b"a" * 9000 and bytes(views["b"]) == b"b" * 9000
    assert _address(views["a"]) != _address(views["b"])


def test_an_object_longer_than_listed_and_than_the_buffer_comes_whole(medium, monkeypatch):
    """The listed size is a hint: an object that grew past it, and past the thread's buffer, is read whole."""
    monkeypatch.setattr(medium_module, "_MIN_BUFFER", 4096)
    monkeypatch.setattr(medium_module, "_STREAM_CHUNK", 64 << 10)
    monkeypatch.setattr(medium_module, "_held", threading.local())
    data = os.urandom(300_000)
    medium.create("packs/c.pack", data)
    assert bytes(medium.get_whole("packs/c.pack", 10)) == data


def test_a_missing_object_is_object_missing(medium):
    medium.create("packs/other.pack", b"x")
    with pytest.raises(ObjectMissing, match="is missing"):
        medium.get_whole("packs/absent.pack", 100)
