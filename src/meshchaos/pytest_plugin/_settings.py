"""The plugin's shared state: validated options, scenario families, per-test reports.

Everything here is keyed by the pytest config or item (stash), so it works the same in
a single process and in every xdist worker.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_MIN_EFFECT",
    "FAMILIES",
    "Settings",
    "check_reports",
    "family_of",
    "has_failed",
    "is_scenario",
    "phase_reports",
    "scenario_alpha",
    "settings",
]

DEFAULT_ALPHA = 0.01
DEFAULT_MIN_EFFECT = 0.05
BACKENDS = ("local", "kind", "cluster")

# Scenario families, each with the marker description `pytest --markers` shows.
FAMILIES: dict[str, str] = {
    "fault_injection": "fault delays and aborts on a hop (Istio HTTPFaultInjection)",
    "timeouts": "route timeouts against slow upstreams and injected delays",
    "retries": "retry attempts, retryOn and perTryTimeout (incl. Istio's default policy)",
    "traffic_shifting": "weighted routing between subsets (blue-green, canary)",
    "routing": "request routing by header and URI match",
    "mirroring": "traffic mirroring to a shadow subset",
    "circuit_breaking": "DestinationRule connection pools overflowing",
    "outlier_detection": "DestinationRule outlier detection ejecting a failing instance",
    "instance_chaos": "killing and restarting workload instances under load",
}
OTHER_MARKERS: dict[str, str] = {
    "scenario": "a chaos scenario: the --alpha budget is split over these (set "
    "automatically on tests with a family marker, that use the chaos fixture, or that "
    "lie under a meshchaos_scenario_paths entry)",
    "integration": "needs a real mesh (starts Envoy processes)",
}
# A test of one of these is a scenario even without a marker: it drives chaos.
SCENARIO_FIXTURES = frozenset({"chaos"})

REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()
SETTINGS = pytest.StashKey["Settings"]()
CHECKS = pytest.StashKey[list[Any]]()
RECORD = pytest.StashKey[Any]()  # the test's ScenarioRecord, until it is written


@dataclass
class Settings:
    """The validated meshchaos options of one pytest session."""

    backend: str
    kube: dict[str, Any]  # BackendOptions keyword arguments of the kube options
    keep_mesh: bool
    reports_dir: Path
    alpha: float
    min_effect: float
    run_id: str
    policy_dirs: tuple[Path, ...] = ()
    scenario_paths: tuple[Path, ...] = ()
    scenario_count: int = 0
    outcomes: dict[str, Counter[str]] = field(default_factory=dict)  # family -> outcome counts
    alphas: dict[str, float] = field(default_factory=dict)  # family -> per-scenario alpha
    started: str = ""  # when the session was configured (ISO 8601, local time with offset)

    @property
    def run_dir(self) -> Path:
        """Where this run's records go: ``<reports-dir>/<run-id>``."""
        return self.reports_dir / self.run_id

    @property
    def per_scenario_alpha(self) -> float:
        """The false-alarm rate one scenario may spend (Bonferroni over the session)."""
        return self.alpha / max(1, self.scenario_count)


def settings(config: pytest.Config) -> Settings:
    """The validated meshchaos settings of this session."""
    return config.stash[SETTINGS]


def family_of(item: pytest.Item) -> str | None:
    """The scenario family of ``item`` (its first family marker), if any."""
    for mark in item.iter_markers():
        if mark.name in FAMILIES:
            return mark.name
    return None


def is_scenario(item: pytest.Item) -> bool:
    """Whether ``item`` spends a share of ``--alpha``: marked ``scenario`` or with a family,
    asking for the ``chaos`` fixture, or under one of ``meshchaos_scenario_paths``."""
    if item.get_closest_marker("scenario") is not None or family_of(item) is not None:
        return True
    if SCENARIO_FIXTURES & set(getattr(item, "fixturenames", ())):
        return True
    return any(item.path.is_relative_to(p) for p in settings(item.config).scenario_paths)


def scenario_alpha(item: pytest.Item) -> float:
    """The false-alarm rate ``item`` may spend: its Bonferroni share, or all of --alpha."""
    s = settings(item.config)
    return s.per_scenario_alpha if item.get_closest_marker("scenario") else s.alpha


def phase_reports(item: pytest.Item) -> dict[str, pytest.TestReport]:
    """The reports of ``item``'s phases so far, keyed by ``setup``/``call``/``teardown``."""
    return item.stash.get(REPORTS, {})


def has_failed(item: pytest.Item) -> bool:
    """True if ``item``'s setup or call failed (call it from fixture teardown)."""
    return any(r.failed for r in phase_reports(item).values())


def check_reports(item: pytest.Item) -> list[Any]:
    """The :class:`meshchaos.check.CheckReport` objects made during ``item``'s call."""
    reports: list[Any] = item.stash.get(CHECKS, [])
    return list(reports)
