"""Determinism and common random numbers (DESIGN §2.1).

Same scenario + same seed => bit-identical results; another seed => another sample path; and a
variant that changes one service's capacity leaves the users' arrival stream untouched, because
the arrivals draw from their own named streams (``arrivals/<entry>``, ``classes/<entry>``).
"""

from __future__ import annotations

import gc
from collections.abc import Callable

import pytest
from pandas.testing import assert_frame_equal

from sim import RunResult, Scenario, World, load_scenario, run
from sim.request import Request
from sim.world import YOUNG_COLLECTION_THRESHOLD, fewer_collections

# Three tiers, timeouts, a crash at 60 s and a restart: every part of the result has content.
DURATION = 66.0


@pytest.fixture(scope="module")
def three_tier() -> Scenario:
    """The catalogue's three-tier scenario, cut to 66 s (the crash at 60 s included)."""
    return load_scenario("three-tier").model_copy(update={"duration": DURATION})


@pytest.fixture(scope="module")
def seed_11(three_tier: Scenario) -> RunResult:
    """three-tier with seed 11."""
    return run(three_tier, seed=11)


def assert_same_result(a: RunResult, b: RunResult) -> None:
    """Every table and figure of two runs is identical (NaN equals NaN)."""
    assert a.summary == b.summary
    assert_frame_equal(a.services, b.services, check_exact=True)
    assert_frame_equal(a.timeseries, b.timeseries, check_exact=True)
    assert_frame_equal(a.events, b.events, check_exact=True)
    assert_frame_equal(a.failures, b.failures, check_exact=True)


def test_same_seed_gives_identical_results(three_tier: Scenario, seed_11: RunResult) -> None:
    """Two runs with the same seed agree on summary, services, timeseries, events, failures."""
    first = seed_11
    second = run(three_tier, seed=11)
    assert first.summary["arrivals"] > 30_000  # a real run, not an empty one
    assert len(first.events) > 0
    assert_same_result(first, second)


def test_same_seed_gives_identical_results_for_a_variant(three_tier: Scenario) -> None:
    """Determinism holds for a variant too (the overlay path builds a new scenario)."""
    assert_same_result(
        run(three_tier, variant="more-payment-workers", seed=5),
        run(three_tier, variant="more-payment-workers", seed=5),
    )


def test_different_seed_gives_a_different_result(three_tier: Scenario, seed_11: RunResult) -> None:
    """Another seed draws another sample path: the summary and the time series differ."""
    first = seed_11
    other = run(three_tier, seed=12)
    assert first.summary != other.summary
    with pytest.raises(AssertionError):
        assert_frame_equal(first.timeseries, other.timeseries)


Arrival = tuple[float, float]
"""One arrival: its time and the uniform that chose its request class."""


def _arrival_stream(
    scenario: Scenario, variant: str | None, seed: int
) -> tuple[RunResult, list[Arrival]]:
    """Run, recording every arrival by wrapping the workload's ``_new`` and class draw."""
    world = World(scenario, variant=variant, seed=seed)
    workload = world.workload
    new: Callable[[int, float], Request] = workload._new
    draw_class: Callable[[], float] = workload._class_draw
    stream: list[Arrival] = []
    last_draw = [-1.0]

    def class_draw() -> float:
        last_draw[0] = draw_class()
        return last_draw[0]

    def recording_new(cls: int, now: float) -> Request:
        stream.append((now, last_draw[0]))
        return new(cls, now)

    workload._new = recording_new  # type: ignore[method-assign]
    workload._class_draw = class_draw
    return world.run(), stream


@pytest.fixture(scope="module")
def base_stream(three_tier: Scenario) -> tuple[RunResult, list[Arrival]]:
    """three-tier with seed 3, and its recorded arrival stream."""
    return _arrival_stream(three_tier, None, seed=3)


def test_variant_changing_workers_keeps_the_arrival_stream(
    three_tier: Scenario, base_stream: tuple[RunResult, list[Arrival]]
) -> None:
    """A variant with more payments workers sees the very same arrival times and classes."""
    base, first = base_stream
    more, more_stream = _arrival_stream(three_tier, "more-payment-workers", seed=3)
    # the variant really changes the system (fewer failures after the crash) ...
    assert base.summary["outcomes"] != more.summary["outcomes"]
    # ... but not the users: the same arrivals, at the same instants, of the same classes
    assert len(first) == base.summary["arrivals"] > 30_000
    assert first == more_stream
    assert base.summary["arrivals"] == more.summary["arrivals"]
    assert base.summary["arrivals"] == more.summary["completed"] + more.summary["in_flight_at_end"]


def test_arrival_stream_check_can_fail(
    three_tier: Scenario, base_stream: tuple[RunResult, list[Arrival]]
) -> None:
    """The arrival-stream comparison detects a different stream (another seed)."""
    _, first = base_stream
    _, other = _arrival_stream(three_tier, None, seed=4)
    assert first != other
    assert first[:100] != other[:100]


def test_fewer_collections_is_shared_by_overlapping_runs_and_restored() -> None:
    """The first world raises the young-generation threshold, the last one restores it."""
    before = gc.get_threshold()
    first, second = fewer_collections(), fewer_collections()
    first.__enter__()
    assert gc.get_threshold()[0] == YOUNG_COLLECTION_THRESHOLD
    second.__enter__()
    first.__exit__(None, None, None)
    assert gc.get_threshold()[0] == YOUNG_COLLECTION_THRESHOLD  # the other run still goes on
    second.__exit__(None, None, None)
    assert gc.get_threshold() == before
    with pytest.raises(RuntimeError), fewer_collections():
        raise RuntimeError("a run that fails")
    assert gc.get_threshold() == before
