"""Validation against queueing theory (DESIGN §6): M/M/1, M/M/c, M/M/c/K and Little's law.

Each check runs one long seeded simulation of a single service with exponential service times
and Poisson arrivals, and compares an estimate with the exact formula of ``tests/queueing.py``.

Why the tolerances mean something. A simulation estimate is itself noisy; a tolerance is only a
test if it is several times the estimate's own standard deviation (SD) and much smaller than the
errors a modelling bug makes. The SDs below were measured over independent seeds (8-12 seeds per
configuration) and scaled by 1/sqrt(number of customers):

* mean wait, M/M/1 at rho = 0.6, 1 000 000 customers: SD ~0.7%, so 3% is ~4 SD;
* mean wait, M/M/4 at rho = 0.7, 1 500 000 customers: SD ~0.85%, so 3% is ~3.5 SD;
* blocking, M/M/4/8 at rho = 1.2, 400 000 arrivals: SD ~0.5%, so 3% is ~6 SD;
* Little's law is a sample-path identity: it holds up to the requests still inside at the end,
  a relative error of order (in-flight / customers) ~1e-5, so 2% is loose and 0.1% still passes.

Bugs these bands catch: losing one worker (M/M/4 at rho 0.7 becomes M/M/3 at 0.93: Wq x12),
an off-by-one queue capacity (blocking 22.9% -> 24.7% or 21.6%, 6-8% relative), zero waits
left out of wait_mean (an earlier bug: it gave 33 ms instead of 14 ms here). Not caught: serving
LIFO instead of FIFO (the same mean wait; only the wait's variance differs).

Warm-up: the model starts empty, which biases early waits down. The bias is of the order of the
relaxation time over the run length (tens of customers over a million), far below the noise, so
the whole run is used.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from queueing import (
    erlang_b,
    erlang_c,
    mmc_mean_wait,
    mmc_mean_wait_given_wait,
    mmck_blocking,
    mmck_mean_in_system,
)

from sim import RunResult, Scenario, World, load_scenario, run
from sim.recorder import EntityStats

SEED = 2024


def mmc_scenario(
    workers: int, mean_service: float, rate: float, customers: int, capacity: int | None = None
) -> Scenario:
    """One ``server`` with ``workers`` workers, exponential service and Poisson arrivals."""
    server: dict[str, Any] = {
        "workers": workers,
        "service_time": {"dist": "exponential", "mean": mean_service},
    }
    if capacity is not None:
        server["admission"] = {"queue": {"capacity": capacity}}
    return Scenario.model_validate(
        {
            "name": "theory",
            "duration": customers / rate,
            "hosts": [{"name": "node-a", "memory": "8Gi"}],
            "services": {"server": server},
            "workload": {"entry": "server", "rate": {"profile": "constant", "rate": rate}},
        }
    )


class Measured:
    """A finished run, its ``server`` row, and how many requests had to queue there."""

    def __init__(self, scenario: Scenario, seed: int = SEED) -> None:
        queued = [0]
        waited = EntityStats.waited

        def counting_waited(self: EntityStats, now: float, wait: float) -> None:
            if wait > 0:
                queued[0] += 1
            waited(self, now, wait)

        # the recorder keeps the sum of waits, not how many were positive: count those here
        with pytest.MonkeyPatch.context() as monkeypatch:
            monkeypatch.setattr(EntityStats, "waited", counting_waited)
            self.result: RunResult = World(scenario, seed=seed).run()
        self.row = self.result.services.set_index("entity").loc["server"]
        # served = ok (+ at most c still in service at the end: a 1e-6 effect)
        self.waited_fraction = queued[0] / int(self.row["ok"])


def rel_error(simulated: float, formula: float) -> float:
    """Relative error of a simulated figure against the formula."""
    return abs(simulated - formula) / formula


# --------------------------------------------------------------------------- runs (shared)

MM1 = {"workers": 1, "mean_service": 0.010, "rate": 60.0}  # rho 0.6, Wq 15 ms
MMC = {"workers": 4, "mean_service": 0.040, "rate": 70.0}  # rho 0.7, C 0.429, Wq 14.3 ms
MMCK = {"workers": 4, "mean_service": 0.040, "rate": 120.0, "capacity": 4}  # K 8, rho 1.2


@pytest.fixture(scope="module")
def mm1() -> Measured:
    """M/M/1 at rho 0.6 over a million customers."""
    return Measured(mmc_scenario(**MM1, customers=1_000_000))


@pytest.fixture(scope="module")
def mmc() -> Measured:
    """M/M/4 at rho 0.7 over 1.5 million customers."""
    return Measured(mmc_scenario(**MMC, customers=1_500_000))


@pytest.fixture(scope="module")
def mmck() -> Measured:
    """M/M/4/8 at rho 1.2 over 400 000 arrivals."""
    return Measured(mmc_scenario(**MMCK, customers=400_000))


@pytest.fixture(scope="module")
def catalogue_run() -> RunResult:
    """The catalogue's ``mmc-queue`` (M/M/4, rho 0.8), shortened to ten minutes."""
    return run(load_scenario("mmc-queue"), seed=SEED, duration=600.0)


# --------------------------------------------------------------------------- the formulas


def test_formulas_reduce_to_closed_forms() -> None:
    """The helper formulas agree with the textbook closed forms they generalise."""
    # M/M/1: P(wait) = rho and Wq = rho / (mu - lam)
    assert erlang_c(1, 0.8) == pytest.approx(0.8)
    assert mmc_mean_wait(1, 80.0, 100.0) == pytest.approx(0.8 / 20.0)
    # Erlang B(2, 1) = (1/2) / (1 + 1 + 1/2)
    assert erlang_b(2, 1.0) == pytest.approx(0.2)
    # M/M/2 with a = 1: C = 1/3 (from p0 = 1/3 and P(n >= 2) = 1/3)
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    # M/M/1/K: p_K = (1 - r) r^K / (1 - r^(K+1))
    r, k = 0.8, 5
    assert mmck_blocking(1, k, r) == pytest.approx((1 - r) * r**k / (1 - r ** (k + 1)))
    # M/M/c/K with a huge room is M/M/c: its mean number inside is L = lam * (Wq + 1/mu)
    assert mmck_mean_in_system(4, 400, 3.2) == pytest.approx(
        80.0 * (mmc_mean_wait(4, 80, 25) + 0.04)
    )
    # and M/M/c/c is Erlang B
    assert mmck_blocking(3, 3, 2.5) == pytest.approx(erlang_b(3, 2.5))


# --------------------------------------------------------------------------- waiting time


def test_mm1_mean_wait_matches_formula(mm1: Measured) -> None:
    """M/M/1 mean queue wait (wait_mean) is rho / (mu - lam) within 3%."""
    mu = 1 / MM1["mean_service"]
    formula = mmc_mean_wait(1, MM1["rate"], mu)
    assert rel_error(mm1.row["wait_mean"], formula) < 0.03, (mm1.row["wait_mean"], formula)


def test_mm1_probability_of_waiting_is_rho(mm1: Measured) -> None:
    """M/M/1: the share of customers who queue is the utilisation rho, within 3%."""
    rho = MM1["rate"] * MM1["mean_service"]
    assert rel_error(mm1.waited_fraction, rho) < 0.03, mm1.waited_fraction


def test_mmc_mean_wait_matches_erlang_c(mmc: Measured) -> None:
    """M/M/c mean queue wait (wait_mean) is Erlang C's C(c, a) / (c mu - lam) within 3%."""
    mu = 1 / MMC["mean_service"]
    formula = mmc_mean_wait(MMC["workers"], MMC["rate"], mu)
    assert rel_error(mmc.row["wait_mean"], formula) < 0.03, (mmc.row["wait_mean"], formula)


def test_mmc_probability_of_waiting_matches_erlang_c(mmc: Measured) -> None:
    """M/M/c: the share of customers who queue is Erlang C within 3%."""
    formula = erlang_c(MMC["workers"], MMC["rate"] * MMC["mean_service"])
    assert rel_error(mmc.waited_fraction, formula) < 0.03, (mmc.waited_fraction, formula)


def test_mmc_response_time_is_wait_plus_service(mmc: Measured) -> None:
    """M/M/c mean response time (latency_mean) is Wq + 1/mu within 1%."""
    mu = 1 / MMC["mean_service"]
    formula = mmc_mean_wait(MMC["workers"], MMC["rate"], mu) + 1 / mu
    assert rel_error(mmc.row["latency_mean"], formula) < 0.01, mmc.row["latency_mean"]


def test_wait_mean_is_not_the_wait_of_those_who_queued(mmc: Measured) -> None:
    """wait_mean averages over every served request (zero waits too), not only the queued ones."""
    mu = 1 / MMC["mean_service"]
    conditional = mmc_mean_wait_given_wait(MMC["workers"], MMC["rate"], mu)  # 33.3 ms
    assert rel_error(mmc.row["wait_mean"], conditional) > 0.5


# --------------------------------------------------------------------------- blocking


def test_mmck_blocking_matches_formula(mmck: Measured) -> None:
    """M/M/c/K: shed / arrivals is p_K of the birth-death chain within 3% (relative)."""
    summary = mmck.result.summary
    c, k = MMCK["workers"], MMCK["workers"] + MMCK["capacity"]
    formula = mmck_blocking(c, k, MMCK["rate"] * MMCK["mean_service"])
    shed = summary["outcomes"]["shed"]
    blocking = shed / summary["arrivals"]
    assert rel_error(blocking, formula) < 0.03, (blocking, formula)
    assert shed == mmck.row["shed"]  # what the users see is what the server shed


def test_mmck_mean_in_system_matches_formula(mmck: Measured) -> None:
    """M/M/c/K: the time-average number inside (in_system_mean) is sum n p_n within 3%."""
    c, k = MMCK["workers"], MMCK["workers"] + MMCK["capacity"]
    formula = mmck_mean_in_system(c, k, MMCK["rate"] * MMCK["mean_service"])
    assert rel_error(mmck.row["in_system_mean"], formula) < 0.03, mmck.row["in_system_mean"]


# --------------------------------------------------------------------------- Little's law


def _littles_law_error(result: RunResult) -> float:
    row = result.services.set_index("entity").loc["server"]
    duration = result.summary["duration"]
    # latency is recorded for ok/degraded only; shed requests spend no time inside, so the
    # throughput that matches latency_mean is the served one
    throughput = (row["ok"] + row["degraded"]) / duration
    return rel_error(row["in_system_mean"], throughput * row["latency_mean"])


@pytest.mark.parametrize("which", ["mm1", "mmc", "mmck"])
def test_littles_law(which: str, request: pytest.FixtureRequest) -> None:
    """in_system_mean = throughput x mean response time (L = lam W) within 2%."""
    measured: Measured = request.getfixturevalue(which)
    assert _littles_law_error(measured.result) < 0.02


def test_littles_law_on_the_catalogue_scenario(catalogue_run: RunResult) -> None:
    """Little's law holds on mmc-queue at rho 0.8, for the server and for the client view."""
    assert _littles_law_error(catalogue_run) < 0.02
    client = catalogue_run.services.set_index("entity").loc["client"]
    throughput = client["ok"] / catalogue_run.summary["duration"]
    assert rel_error(client["in_system_mean"], throughput * client["latency_mean"]) < 0.02


def test_catalogue_scenario_matches_its_narrative(catalogue_run: RunResult) -> None:
    """mmc-queue's narrative figures (rho 0.8, W 69.8 ms) hold to within run noise (10%)."""
    row = catalogue_run.services.set_index("entity").loc["server"]
    # ten minutes at rho 0.8 is only ~48 000 customers: W's SD is ~2-3%, so 10% is a sanity band
    assert row["latency_mean"] == pytest.approx(0.0698, rel=0.10)
    assert catalogue_run.summary["arrivals"] == pytest.approx(80 * 600, rel=0.02)
    assert math.isclose(catalogue_run.summary["availability"], 1.0)
