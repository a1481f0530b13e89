"""pvc/core/tuning.py: capture and restore run with fewer cyclic collections, and give the caller's setting back."""

from __future__ import annotations

import gc

import pytest

from pvc.core import tuning


@pytest.fixture
def default_threshold():
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)


def test_a_call_runs_with_fewer_collections_and_restores_the_setting(default_threshold):
    seen = []
    tuning.fewer_collections(lambda: seen.append(gc.get_threshold()))()
    assert seen == [(tuning.YOUNG_THRESHOLD, 10, 10)]
    assert gc.get_threshold() == (700, 10, 10)


def test_the_setting_comes_back_when_the_call_fails(default_threshold):
    def fails():
        raise KeyError("x")

    with pytest.raises(KeyError):
        tuning.fewer_collections(fails)()
    assert gc.get_threshold() == (700, 10, 10)


def test_a_caller_that_collects_less_often_or_not_at_all_is_left_alone(default_threshold):
    for mine in ((0, 10, 10), (200_000, 10, 10)):
        gc.set_threshold(*mine)
        seen = []
        tuning.fewer_collections(lambda: seen.append(gc.get_threshold()))()
        assert seen == [mine] and gc.get_threshold() == mine


def test_capture_and_restore_are_wrapped():
    from pvc.core import capture, restore

    for fn in (capture.capture, restore.restore, restore.materialize):
        assert fn.__wrapped__ is not None  # functools.wraps of fewer_collections
