"""A pytest plugin that makes the local mesh deviate from its policies on purpose.

Loaded by ``benchmarks/deviation.py`` (``-p _deviate`` with ``benchmarks/`` on
``PYTHONPATH``), never by the suite. ``MESHCHAOS_DEVIATE`` names the deviation; the
plugin wraps the local mesh's xDS route translation so that the Envoys run something
other than what the Istio YAML says, while the oracle still predicts from the YAML:

- ``abort``: every partial fault abort fires 5 points less often (50 % at 45 %,
  10 % at 5 %);
- ``delay``: the same for partial fault delays;
- ``weight``: every weighted route moves 5 points from its first destination to its
  last (50/50 at 45/55, 90/10 at 85/15);
- ``mirror``: every partial mirror copies 5 points less often.

A test whose mesh ran a changed route is marked ``deviated`` in its report's
``user_properties`` (the runner reads them from the JUnit file), so the runner can tell
"caught" (deviated and failed) from "blind" (deviated and passed) and from "untouched".
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from meshchaos.mesh.local import _xds_routes

POINTS = 5  # the size of every deviation, in percentage points
KINDS = ("abort", "delay", "weight", "mirror")
_SCALE = {"HUNDRED": 100, "MILLION": 1_000_000}

_changed: list[str] = []  # what the current test's translations changed


def _lower(pct: dict[str, Any], what: str) -> None:
    """Lower a partial FractionalPercent (JSON) by ``POINTS`` points, in place."""
    scale = _SCALE[pct["denominator"]]
    if not 0 < pct["numerator"] < scale:
        return  # 0 % and 100 % stay: a deviation there is not a 5-point one
    before = pct["numerator"]
    pct["numerator"] = max(0, before - POINTS * scale // 100)
    _changed.append(f"{what} {before / scale:.0%} -> {pct['numerator'] / scale:.0%}")


def _wrap_fault(kind: str) -> None:
    original = _xds_routes.translate_fault

    def translate_fault(fault: Any, warnings: list[str]) -> dict[str, Any]:
        out = original(fault, warnings)
        if kind in out:
            _lower(out[kind]["percentage"], kind)
        return out

    _xds_routes.translate_fault = translate_fault  # type: ignore[assignment]


def _wrap_route_action(kind: str) -> None:
    original = _xds_routes._route_action

    def route_action(*args: Any) -> dict[str, Any]:
        action = original(*args)
        if kind == "weight" and "weighted_clusters" in action:
            clusters = action["weighted_clusters"]["clusters"]
            total = sum(c["weight"] for c in clusters)
            first, last = clusters[0], clusters[-1]
            step = min(first["weight"], round(POINTS * total / 100))
            if step:
                first["weight"] -= step
                last["weight"] += step
                _changed.append(f"weights shifted {step} of {total} to {last['name']}")
        if kind == "mirror":
            for mirror in action.get("request_mirror_policies", []):
                _lower(mirror["runtime_fraction"]["default_value"], "mirror")
        return action

    _xds_routes._route_action = route_action  # type: ignore[assignment]


def pytest_configure(config: pytest.Config) -> None:
    kind = os.environ.get("MESHCHAOS_DEVIATE", "")
    if kind not in KINDS:
        raise pytest.UsageError(f"MESHCHAOS_DEVIATE={kind!r}: must be one of {', '.join(KINDS)}")
    if kind in ("abort", "delay"):
        _wrap_fault(kind)
    else:
        _wrap_route_action(kind)


def pytest_runtest_setup(item: pytest.Item) -> None:
    _changed.clear()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "teardown":
        changes = sorted(set(_changed))
        report.user_properties.append(("deviated", "; ".join(changes)))
    return report
