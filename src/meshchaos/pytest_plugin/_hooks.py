"""The plugin's hooks: options, markers, the alpha budget and the run summary.

What they own:

* one option group, ``meshchaos`` (``--backend``, ``--kube-context``, ``--keep-mesh``,
  ``--reports-dir``, ``--alpha``, ``--min-effect``, ``--policy-dir``) and two ini
  options (``meshchaos_policy_dirs``, ``meshchaos_scenario_paths``), validated at
  configure time;
* the markers of every scenario family, plus ``scenario`` and ``integration``;
* the family-wise false-alarm budget: ``--alpha`` is split evenly over the scenario
  items of the session (Bonferroni); each scenario then spends its share over its own
  checks with Holm (in :mod:`meshchaos.check`). The share is set per test with
  :func:`meshchaos.stats.use_alpha` around setup and call;
* a ``makereport`` wrapper that stores each phase's report on the item, so fixtures
  know whether their test failed (diagnostics are kept only on failure), and that
  writes the test's record once its teardown is reported;
* a terminal summary line per family, and the run id shared by xdist workers.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Generator, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from meshchaos.mesh.kube.flags import add_kube_options, kube_options
from meshchaos.pytest_plugin import _report_hooks
from meshchaos.pytest_plugin._record import write_after_teardown
from meshchaos.pytest_plugin._settings import (
    BACKENDS,
    CHECKS,
    DEFAULT_ALPHA,
    DEFAULT_MIN_EFFECT,
    FAMILIES,
    OTHER_MARKERS,
    REPORTS,
    SETTINGS,
    Settings,
    family_of,
    is_scenario,
    scenario_alpha,
    settings,
)

_ALPHA_PROPERTY = "meshchaos_alpha"
_FAMILY_PROPERTY = "meshchaos_family"

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
    add_kube_options(group)
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
    group.addoption(
        "--policy-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="where policy names are looked up before meshchaos's packaged samples "
        "(repeatable; searched before the meshchaos_policy_dirs ini option)",
    )
    parser.addini(
        "meshchaos_policy_dirs",
        type="paths",
        default=[],
        help="meshchaos: directories of your own Istio policies, looked up by name "
        "before the packaged samples (relative to the ini file)",
    )
    parser.addini(
        "meshchaos_scenario_paths",
        type="paths",
        default=[],
        help="meshchaos: tests under these paths count as scenarios for the --alpha split "
        "(besides tests with a family marker or the chaos fixture)",
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
    here = config.invocation_params.dir
    policy_dirs = [here / d for d in config.getoption("policy_dir")]
    policy_dirs += [Path(p) for p in config.getini("meshchaos_policy_dirs")]
    for d in policy_dirs:
        if not d.is_dir():
            raise pytest.UsageError(f"meshchaos: policy directory {d} does not exist")
    config.stash[SETTINGS] = Settings(
        backend=str(config.getoption("backend")),
        kube=kube_options(config),
        keep_mesh=bool(config.getoption("keep_mesh")),
        reports_dir=reports_dir,
        alpha=alpha,
        min_effect=min_effect,
        run_id=str(run_id),
        policy_dirs=tuple(policy_dirs),
        scenario_paths=tuple(Path(p) for p in config.getini("meshchaos_scenario_paths")),
        started=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )
    config.pluginmanager.register(_Tally(config.stash[SETTINGS]), "meshchaos-tally")
    # Now, once the run id exists and before junitxml configures (see _report_hooks).
    config.pluginmanager.register(_report_hooks, "meshchaos-report")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(), "meshchaos-xdist")


class _XdistHooks:
    """Hands the controller's run id to every worker, so all records share one run dir."""

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["meshchaos_run_id"] = settings(node.config).run_id


# ------------------------------------------------------------ collection


def pytest_sessionstart(session: pytest.Session) -> None:
    # A cluster backend's tools are checked before anything is collected or started, on
    # the controller only: a missing Docker engine ends the run in seconds with one
    # message, not one error per test minutes later.
    s = settings(session.config)
    if s.backend == "local" or hasattr(session.config, "workerinput"):
        return
    from meshchaos.errors import BackendUnavailable
    from meshchaos.mesh.registry import check_backend

    try:
        check_backend(s.backend)
    except BackendUnavailable as exc:
        raise pytest.UsageError(f"meshchaos: {exc}") from None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if is_scenario(item) and not item.get_closest_marker("scenario"):
            item.add_marker(pytest.mark.scenario)


def pytest_collection_finish(session: pytest.Session) -> None:
    # After -k/-m deselection, so the budget is split over what actually runs. Every
    # xdist worker collects the same items, so every worker computes the same share.
    s = settings(session.config)
    s.scenario_count = sum(1 for i in session.items if i.get_closest_marker("scenario"))


@contextlib.contextmanager
def _alpha_context(item: pytest.Item) -> Iterator[None]:
    # Imported when a test runs, not when the plugin loads: the plugin is active in
    # every pytest run of an environment with meshchaos, and scipy costs a start-up.
    from meshchaos.stats import use_alpha

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
    from meshchaos.check import collect_reports

    with collect_reports() as sink:
        item.stash[CHECKS] = sink
        yield


# ------------------------------------------------------------- reporting


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    item.stash.setdefault(REPORTS, {})[report.when] = report
    if report.when == "call" or (report.when == "setup" and not report.passed):
        # user_properties travel with the report to the xdist controller.
        family = family_of(item)
        if family is not None:
            report.user_properties.append((_FAMILY_PROPERTY, family))
            report.user_properties.append((_ALPHA_PROPERTY, scenario_alpha(item)))
    if report.when == "teardown":
        # Every fixture is finalized (policies rolled back, instances restored): the
        # record now carries the test's final outcome. A record that cannot be written
        # fails this test's teardown, saying why, rather than the whole session.
        try:
            report.user_properties.extend(write_after_teardown(item))
        except Exception as exc:  # any: reported on the test, never lost
            report.outcome = "failed"
            report.longrepr = f"meshchaos: could not write the run record: {exc!r}"
    return report


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
    short = sample_shortfall(s.run_dir)
    for family in sorted(s.outcomes):
        counts = s.outcomes[family]
        parts = [f"{counts[k]} {k}" for k in ("passed", "failed", "skipped") if counts[k]]
        below = ""
        if family in short:
            n, worst = short[family]
            below = (
                f"; {n} below planned n, the least sensitive detecting only a "
                f"{worst:.3f} deviation (--min-effect {s.min_effect:g})"
            )
        terminalreporter.write_line(
            f"{family:<18} {', '.join(parts):<28} alpha per scenario {s.alphas[family]:.2g}{below}"
        )
    terminalreporter.write_line(
        f"family-wise alpha {s.alpha:g} (Bonferroni over scenarios, Holm within); "
        f"records in {s.run_dir}"
    )


def sample_shortfall(run_dir: Path) -> dict[str, tuple[int, float]]:
    """Per family, how many recorded scenarios ran fewer requests than their plan asked
    for (a cap for time) and the largest deviation one of them can still miss: the
    summary says so rather than let a capped sample pass for a planned one."""
    out: dict[str, tuple[int, float]] = {}
    for path in sorted(run_dir.glob("*.json")) if run_dir.is_dir() else ():
        if path.name == "run.json":
            continue
        try:
            record = json.loads(path.read_text())
            sizing, family = record.get("sizing") or {}, str(record.get("family"))
            used, planned = int(sizing["used"]), int(sizing["planned"])
            detectable = float(sizing["detectable"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue  # no sizing (not a sized scenario) or unreadable: run.json says which
        if used < planned:
            n, worst = out.get(family, (0, 0.0))
            out[family] = (n + 1, max(worst, detectable))
    return out
