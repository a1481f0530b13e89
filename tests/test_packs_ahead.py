"""clone's downloads do not wait for the file plan: packs that arrive before it are kept (up to a bound) and written
once it is there, in the order they came (pvc.core.pull._PacksAhead)."""

from __future__ import annotations

import threading
from concurrent.futures import Future

import pytest

from pvc.core.pull import _PacksAhead


def _pack(name: str, size: int = 10) -> list:
    return [(name.encode(), None, memoryview(bytes(size)))]


def test_packs_before_the_plan_are_kept_then_taken_in_order_and_at_the_end():
    ready: Future = Future()
    taken = []
    ahead = _PacksAhead(ready)
    ahead("src", _pack("a"))
    ahead("src", _pack("b"))
    assert taken == [] and len(ahead.kept) == 2  # the download threads went on, nothing written yet
    ready.set_result(lambda src, records: taken.append(records[0][0]))
    ahead("src", _pack("c"))  # the first pack after the plan takes the kept ones first
    assert taken == [b"a", b"b", b"c"]
    ahead2 = _PacksAhead(Future())
    ahead2("src", _pack("x"))
    ahead2.ready.set_result(lambda src, records: taken.append(records[0][0]))
    ahead2.finish()  # kept packs no later pack came to take
    assert taken[-1] == b"x" and not ahead2.kept


def test_past_the_bound_a_download_waits_for_the_plan():
    ready: Future = Future()
    taken = []
    ahead = _PacksAhead(ready)
    ahead.AHEAD_BYTES = 25
    ahead("src", _pack("a", 10))
    ahead("src", _pack("b", 10))
    waiting = threading.Thread(target=ahead, args=("src", _pack("c", 10)))  # 30 bytes would be kept: it waits
    waiting.start()
    waiting.join(0.2)
    assert waiting.is_alive() and taken == []
    ready.set_result(lambda src, records: taken.append(records[0][0]))
    waiting.join(5)
    assert taken == [b"a", b"b", b"c"]


def test_a_plan_that_failed_fails_the_next_pack_and_finish():
    ready: Future = Future()
    ahead = _PacksAhead(ready)
    ahead("src", _pack("a"))
    ready.set_exception(ValueError("the plan failed"))
    with pytest.raises(ValueError):
        ahead("src", _pack("b"))
    with pytest.raises(ValueError):
        ahead.finish()
