"""The meshchaos pytest plugin: options, markers, the alpha budget and the run summary.

Loaded through the ``pytest11`` entry point, so it is active in every pytest run in an
environment where meshchaos is installed. It never starts a mesh by itself: the
fixtures in ``fixtures/`` do that, and only for tests that ask for them.

What it owns:

* one option group, ``meshchaos`` (``--backend``, ``--kube-context``, ``--keep-mesh``,
  ``--reports-dir``, ``--alpha``, ``--min-effect``), validated at configure time;
* the markers of every scenario family, plus ``scenario`` and ``integration``;
* the family-wise false-alarm budget: ``--alpha`` is split evenly over the scenario
  items of the session (Bonferroni); each scenario then spends its share over its own
  checks with Holm (in :mod:`meshchaos.check`). The share is set per test with
  :func:`meshchaos.stats.use_alpha` around setup and call;
* a ``makereport`` wrapper that stores each phase's report on the item, so fixtures
  know whether their test failed (diagnostics are kept only on failure);
* a terminal summary line per family, and the run id shared by xdist workers.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections import Counter
from collections.abc import Callable, Generator, Iterator
from contextlib import AbstractContextManager
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
    "scenario": "a chaos scenario (set automatically on every test under scenarios/); "
    "the --alpha budget is split over these",
    "integration": "needs a real mesh (starts Envoy processes)",
}

_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()
_SETTINGS = pytest.StashKey["Settings"]()
_CHECKS = pytest.StashKey[list[Any]]()
_ALPHA_PROPERTY = "meshchaos_alpha"
_FAMILY_PROPERTY = "meshchaos_family"


@dataclass
class Settings:
    """The validated meshchaos options of one pytest session."""

    backend: str
    kube_context: str | None
    keep_mesh: bool
    reports_dir: Path
    alpha: float
    min_effect: float
    run_id: str
    scenario_count: int = 0
    outcomes: dict[str, Counter[str]] = field(default_factory=dict)  # family -> outcome counts
    alphas: dict[str, float] = field(default_factory=dict)  # family -> per-scenario alpha

    @property
    def run_dir(self) -> Path:
        """Where this run's records go: ``<reports-dir>/<run-id>``."""
        return self.reports_dir / self.run_id

    @property
    def per_scenario_alpha(self) -> float:
        """The false-alarm rate one scenario may spend (Bonferroni over the session)."""
        return self.alpha / max(1, self.scenario_count)


# ---------------------------------------------------------------- options


def _fraction(name: str, example: str) -> Callable[[str], float]:
    """An argparse type: a float strictly between 0 and 1, with a helpful message."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not 0.0 < value < 1.0:  # also rejects nan
            raise pytest.UsageError(
                f"{name}: {text!r} is not a valid value; give a number strictly between "
                f"0 and 1, for example {name} {example}"
            )
        return value

    parse.__name__ = name.lstrip("-").replace("-", "_")
    return parse


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("meshchaos", "meshchaos: chaos scenarios for Istio meshes")
    group.addoption(
        "--backend",
        choices=BACKENDS,
        default="local",
        help="where the mesh runs: local (embedded Envoy mesh, default), kind, cluster",
    )
    group.addoption(
        "--kube-context",
        default=None,
        metavar="NAME",
        help="kube context for --backend cluster (must be explicitly allowed)",
    )
    group.addoption(
        "--keep-mesh",
        action="store_true",
        default=False,
        help="print how to reach the mesh and keep it until the session ends "
        "(waits for Enter at the end when interactive); never outlives pytest",
    )
    group.addoption(
        "--reports-dir",
        default="reports",
        metavar="DIR",
        help="where each run writes <run-id>/<test-id>.json and run.json (default: reports)",
    )
    group.addoption(
        "--alpha",
        default=str(DEFAULT_ALPHA),
        metavar="A",
        help=f"family-wise false-alarm rate of the whole run, 0<A<1 (default {DEFAULT_ALPHA})",
    )
    group.addoption(
        "--min-effect",
        default=str(DEFAULT_MIN_EFFECT),
        metavar="D",
        help="smallest deviation of a share each scenario must detect with power 0.95, "
        f"0<D<1 (default {DEFAULT_MIN_EFFECT})",
    )


def _new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


def pytest_configure(config: pytest.Config) -> None:
    for name, text in {**FAMILIES, **OTHER_MARKERS}.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    # Validated here rather than as argparse types so that the message is a clean
    # UsageError ("ERROR: --alpha: ...") rather than argparse's generic one.
    alpha = _fraction("--alpha", "0.01")(str(config.getoption("alpha")))
    min_effect = _fraction("--min-effect", "0.05")(str(config.getoption("min_effect")))
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    run_id = (workerinput or {}).get("meshchaos_run_id") or _new_run_id()
    reports_dir = Path(str(config.getoption("reports_dir")))
    if not reports_dir.is_absolute():
        reports_dir = config.invocation_params.dir / reports_dir
    config.stash[_SETTINGS] = Settings(
        backend=str(config.getoption("backend")),
        kube_context=config.getoption("kube_context"),
        keep_mesh=bool(config.getoption("keep_mesh")),
        reports_dir=reports_dir,
        alpha=alpha,
        min_effect=min_effect,
        run_id=str(run_id),
    )
    config.pluginmanager.register(_Tally(config.stash[_SETTINGS]), "meshchaos-tally")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(), "meshchaos-xdist")


class _XdistHooks:
    """Hands the controller's run id to every worker, so all records share one run dir."""

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["meshchaos_run_id"] = settings(node.config).run_id


def settings(config: pytest.Config) -> Settings:
    """The validated meshchaos settings of this session."""
    return config.stash[_SETTINGS]


# ------------------------------------------------------------ collection


def family_of(item: pytest.Item) -> str | None:
    """The scenario family of ``item`` (its first family marker), if any."""
    for mark in item.iter_markers():
        if mark.name in FAMILIES:
            return mark.name
    return None


def _is_under_scenarios(item: pytest.Item, rootpath: Path) -> bool:
    try:
        rel = item.path.relative_to(rootpath)
    except ValueError:
        return False
    return bool(rel.parts) and rel.parts[0] == "scenarios"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _is_under_scenarios(item, config.rootpath) and not item.get_closest_marker("scenario"):
            item.add_marker(pytest.mark.scenario)


def pytest_collection_finish(session: pytest.Session) -> None:
    # After -k/-m deselection, so the budget is split over what actually runs. Every
    # xdist worker collects the same items, so every worker computes the same share.
    s = settings(session.config)
    s.scenario_count = sum(1 for i in session.items if i.get_closest_marker("scenario"))


def scenario_alpha(item: pytest.Item) -> float:
    """The false-alarm rate ``item`` may spend: its Bonferroni share, or all of --alpha."""
    s = settings(item.config)
    return s.per_scenario_alpha if item.get_closest_marker("scenario") else s.alpha


@contextlib.contextmanager
def _alpha_context(item: pytest.Item) -> Iterator[None]:
    # Imported lazily: the stats module is optional for option parsing and pytester.
    try:
        from meshchaos.stats import use_alpha
    except ImportError:
        yield
        return
    ctx: AbstractContextManager[Any] = use_alpha(scenario_alpha(item))
    with ctx:
        yield


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    with _alpha_context(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    with _alpha_context(item), _collect_checks(item):
        return (yield)


@contextlib.contextmanager
def _collect_checks(item: pytest.Item) -> Iterator[None]:
    """Keep every check report of the test (passed or failed) for the run record."""
    try:
        from meshchaos.check import collect_reports
    except ImportError:
        yield
        return
    with collect_reports() as sink:
        item.stash[_CHECKS] = sink
        yield


def check_reports(item: pytest.Item) -> list[Any]:
    """The :class:`meshchaos.check.CheckReport` objects made during ``item``'s call."""
    reports: list[Any] = item.stash.get(_CHECKS, [])
    return list(reports)


# ------------------------------------------------------------- reporting


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    if report.when == "call" or (report.when == "setup" and not report.passed):
        # user_properties travel with the report to the xdist controller.
        family = family_of(item)
        if family is not None:
            report.user_properties.append((_FAMILY_PROPERTY, family))
            report.user_properties.append((_ALPHA_PROPERTY, scenario_alpha(item)))
    return report


def phase_reports(item: pytest.Item) -> dict[str, pytest.TestReport]:
    """The reports of ``item``'s phases so far, keyed by ``setup``/``call``/``teardown``."""
    return item.stash.get(_REPORTS, {})


def has_failed(item: pytest.Item) -> bool:
    """True if ``item``'s setup or call failed (call it from fixture teardown)."""
    return any(r.failed for r in phase_reports(item).values())


class _Tally:
    """Counts scenario outcomes per family, on the controller when running under xdist."""

    def __init__(self, s: Settings) -> None:
        self.settings = s

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props = dict(report.user_properties)
        family = props.get(_FAMILY_PROPERTY)
        if family is None:
            return
        s = self.settings
        # A passed setup is not an outcome; a passed call, or a failed/skipped setup is.
        s.outcomes.setdefault(str(family), Counter())[report.outcome] += 1
        alpha = props.get(_ALPHA_PROPERTY, s.alpha)
        s.alphas[str(family)] = alpha if isinstance(alpha, float) else s.alpha


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    s = settings(config)
    if not s.outcomes:
        return
    terminalreporter.section("meshchaos")
    for family in sorted(s.outcomes):
        counts = s.outcomes[family]
        parts = [f"{counts[k]} {k}" for k in ("passed", "failed", "skipped") if counts[k]]
        terminalreporter.write_line(
            f"{family:<18} {', '.join(parts):<28} alpha per scenario {s.alphas[family]:.2g}"
        )
    terminalreporter.write_line(
        f"family-wise alpha {s.alpha:g} (Bonferroni over scenarios, Holm within); "
        f"records in {s.run_dir}"
    )
