"""The benchmark harness's scheduling (bench/): not a benchmark, and nothing here is timed.

Every scenario must run when bench/run.py calls it: a scenario function that became a generator (a `yield` left in
it by an edit) returns at once and measures nothing, silently. Tools' flows measured side by side must stay in step,
and a flow that fails must fail its scenario once the other tools are done.
"""

from __future__ import annotations

import inspect

import pytest

from bench import remote, scenarios
from bench.run import STEPS


@pytest.mark.parametrize("name", sorted(STEPS))
def test_every_scenario_runs_when_called(name):
    step, _ = STEPS[name]
    assert not inspect.isgeneratorfunction(step), f"scenario {name} is a generator: calling it runs nothing"


def test_the_scenarios_inner_steps_are_not_generators_either():
    for fn in (scenarios._image_scenario, scenarios._media, scenarios.floors, remote._remote):
        assert not inspect.isgeneratorfunction(fn), fn.__name__


class _Bench:
    """What _side_by_side asks of a Bench: a log, and measure_together (recorded, not run)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.together: list[tuple[str, list[str], int | None]] = []

    def log(self, line: str) -> None:
        self.lines.append(line)

    def measure_together(self, s, op, tools, *, reps=None):
        self.together.append((op, [tool for tool, _, _ in tools], reps))


def _flow(tool, ops, fail_after=None):
    for k, op in enumerate(ops):
        if fail_after is not None and k == fail_after:
            raise ValueError(f"{tool} broke")
        yield None if op is None else (op, tool, [tool, op], {"reps": 5} if op == "restore" else {})


def test_flows_are_measured_step_by_step_with_the_largest_reps_asked():
    b = _Bench()
    scenarios._side_by_side(b, "s", [_flow("pvc", ["first_commit", "status", "restore"]),
                                     _flow("restic", ["first_commit", None, "restore"])])
    assert b.together == [("first_commit", ["pvc", "restic"], None), ("status", ["pvc"], None),
                          ("restore", ["pvc", "restic"], 5)]


def test_flows_out_of_step_stop_the_scenario():
    with pytest.raises(RuntimeError, match="out of step"):
        scenarios._side_by_side(_Bench(), "s", [_flow("pvc", ["first_commit"]), _flow("git", ["status"])])


def test_a_failing_flow_lets_the_others_finish_then_fails_the_scenario():
    b = _Bench()
    with pytest.raises(RuntimeError, match=r"1 tool flow\(s\) failed: ValueError: restic broke"):
        scenarios._side_by_side(b, "s", [_flow("pvc", ["first_commit", "restore"]),
                                         _flow("restic", ["first_commit", "restore"], fail_after=1)])
    assert b.together == [("first_commit", ["pvc", "restic"], None), ("restore", ["pvc"], 5)]
    assert any("restic broke" in line for line in b.lines)
