"""A scenario's steps: apply the policy, ask the oracle, size the sample, load, judge.

- :mod:`~meshchaos.scenario.spec`: what a scenario is (:class:`Scenario`, ``bookinfo``,
  ``httpbin``), for parametrized tables;
- :mod:`~meshchaos.scenario.planning`: how big its sample must be (:class:`Sizing`);
- :mod:`~meshchaos.scenario.observing`: proxy counters around the load, never read as
  zero when they cannot be read;
- :mod:`~meshchaos.scenario.running`: the steps themselves (:class:`Chaos`), with
  :mod:`~meshchaos.scenario.policies`, :mod:`~meshchaos.scenario.loading` and
  :mod:`~meshchaos.scenario.instances` for applying, loading and instance chaos.
"""

from meshchaos.scenario.instances import Instances
from meshchaos.scenario.loading import LoadDriver
from meshchaos.scenario.planning import POWER, Sizing, plan_sample
from meshchaos.scenario.policies import PolicyApplier, PolicySource
from meshchaos.scenario.running import Chaos, Observation, RecordSink
from meshchaos.scenario.spec import COUNTERS, Mirror, Scenario, bookinfo, httpbin

__all__ = [
    "COUNTERS",
    "POWER",
    "Chaos",
    "Instances",
    "LoadDriver",
    "Mirror",
    "Observation",
    "PolicyApplier",
    "PolicySource",
    "RecordSink",
    "Scenario",
    "Sizing",
    "bookinfo",
    "httpbin",
    "plan_sample",
]
