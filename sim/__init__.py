"""faultlab's model and everything that runs it.

The Python API: ``load_scenario`` (a file or a catalogue name), ``run`` (one run ->
``RunResult``), and the ``Scenario`` model::

    from sim import load_scenario, run
    result = run(load_scenario("three-tier"), variant="more-payment-workers", seed=3)
    result.summary["availability"], result.timeseries, result.events
"""

from sim.recorder import RunResult
from sim.scenario import Scenario, ScenarioError, load_scenario
from sim.world import World, run

__all__ = ["RunResult", "Scenario", "ScenarioError", "World", "load_scenario", "run"]
