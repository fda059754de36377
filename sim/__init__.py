"""faultlab's model and everything that runs it.

The Python API: ``load_scenario`` (a file or a catalogue name), ``run`` (one run ->
``RunResult``), the ``Scenario`` model, and the experiments ``compare`` and ``sweep``
(``sim/experiment.py``; replications on a process pool or a Dask cluster, tidy tables out)::

    from sim import compare, load_scenario, run
    result = run(load_scenario("three-tier"), variant="more-payment-workers", seed=3)
    result.summary["availability"], result.timeseries, result.events
    comparison = compare("retry-storm", ["baseline", "retry-budget"], reps=10)
    comparison.stats  # means with 95% CIs, paired differences by seed
"""

from sim.experiment import compare, sweep
from sim.recorder import RunResult
from sim.scenario import Scenario, ScenarioError, load_scenario
from sim.world import World, run

__all__ = [
    "RunResult",
    "Scenario",
    "ScenarioError",
    "World",
    "compare",
    "load_scenario",
    "run",
    "sweep",
]
