"""Brooker's contention experiment ("Exponential Backoff And Jitter", AWS Architecture Blog 2015).

The model of ``aws-samples/aws-arch-backoff-simulator``: one row with a version number; each of
100 clients reads the version and writes once, the write succeeding only if no other write
succeeded since its read (optimistic concurrency); every message takes |N(10 ms, 2 ms)|; a client
that loses retries (read again) after its back-off, until it succeeds. Base 5 ms with his attempt
numbering (``ExponentialBackoff(base=10 ms)`` here, see ``patterns.retry``), cap 2 s; the
decorrelated variant uses base 5 ms. Work = writes; time = when the last client finishes.

What the post found, and what this reproduces (10 seeds): no jitter does by far the most work and
takes by far the longest; equal jitter does slightly more work than full jitter and takes much
longer; decorrelated jitter does *more* work than full jitter (about a quarter more at 100
clients; readers of the post's graphs quote ~33 %) in about the same time (the post: slightly
less; here 4.97 s against 4.95 s over 10 seeds).
"""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from patterns.retry import ExponentialBackoff, RetryConfig, run_with_retry

CLIENTS = 100
SEEDS = range(10)
KINDS = ("none", "equal", "full", "decorrelated")


def occ_run(jitter: str, seed: int, clients: int = CLIENTS) -> tuple[int, float]:
    """One run: (writes, completion time in s)."""
    env = simpy.Environment()
    rng = np.random.default_rng(seed)
    row = {"version": 0, "writes": 0}
    base = 0.005 if jitter == "decorrelated" else 0.010
    config = RetryConfig(
        max_attempts=1_000_000, backoff=ExponentialBackoff(base=base, cap=2.0, jitter=jitter)
    )
    finished = []

    def net():
        return abs(rng.normal(0.010, 0.002))

    def read_then_write(n):
        yield env.timeout(net())  # read request
        seen = row["version"]
        yield env.timeout(net())  # read response
        yield env.timeout(net())  # write request
        row["writes"] += 1
        won = row["version"] == seen
        if won:
            row["version"] += 1
        yield env.timeout(net())  # write response
        return "ok" if won else "conflict"

    def client():
        outcome, _ = yield from run_with_retry(env, read_then_write, config, rng=rng)
        assert outcome == "ok"
        finished.append(env.now)

    for _ in range(clients):
        env.process(client())
    env.run()
    assert row["version"] == clients
    return row["writes"], max(finished)


@pytest.fixture(scope="module")
def results():
    """Mean writes and mean completion time per jitter kind over the seeds."""
    table = {}
    for kind in KINDS:
        runs = [occ_run(kind, seed) for seed in SEEDS]
        table[kind] = (np.mean([w for w, _ in runs]), np.mean([t for _, t in runs]))
    return table


def test_no_jitter_does_the_most_work_by_far(results):
    """Without jitter the clients stay in lock-step: over twice the writes of any jittered kind."""
    writes = {kind: w for kind, (w, _) in results.items()}
    assert writes["none"] > 1.7 * max(writes["equal"], writes["full"], writes["decorrelated"])


def test_work_ordering_none_equal_full(results):
    """Total work: no jitter > equal jitter > full jitter (equal by a few percent only)."""
    writes = {kind: w for kind, (w, _) in results.items()}
    assert writes["none"] > writes["equal"] > writes["full"]
    assert writes["equal"] < 1.10 * writes["full"]


def test_decorrelated_does_10_to_40_percent_more_work_than_full(results):
    """Decorrelated jitter ≈ full jitter only loosely: 1.10 x to 1.40 x its writes."""
    ratio = results["decorrelated"][0] / results["full"][0]
    assert 1.10 < ratio < 1.40


def test_completion_time_ordering(results):
    """No jitter takes far longest; equal jitter clearly longer than full and decorrelated."""
    time = {kind: t for kind, (_, t) in results.items()}
    assert time["none"] > 5 * time["equal"]
    assert time["equal"] > 1.2 * time["full"]
    assert time["equal"] > 1.2 * time["decorrelated"]
