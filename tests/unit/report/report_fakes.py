"""Synthetic runs for the report tests: real LoadResults and checks, written through the
record module's own writer, so the tests read exactly what the plugin would write."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from meshchaos.check import expect, share
from meshchaos.errors import PolicyDeviation
from meshchaos.load import LoadResult, Sample
from meshchaos.oracle.prediction import LatencyBand, OutcomeShare, Prediction, RequestClass
from meshchaos.report import record as rec
from meshchaos.scenario.planning import Sizing

POLICY = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: {name}\n"


@dataclass
class Spec:
    """One synthetic scenario: an error share and a latency distribution."""

    name: str
    error_share: float = 0.05
    median: float = 0.010  # seconds, lognormal
    sigma: float = 0.3
    n: int = 2000
    policy_text: str | None = None
    outcome: str = "passed"
    v2_share: float = 0.0  # share of the non-error requests routed to reviews-v2
    extra: dict[str, Any] = field(default_factory=dict)


def load_result(spec: Spec, rng: np.random.Generator) -> LoadResult:
    errors = rng.random(spec.n) < spec.error_share
    v2 = rng.random(spec.n) < spec.v2_share
    latencies = spec.median * np.exp(spec.sigma * rng.standard_normal(spec.n))
    samples = [
        Sample(
            i * 0.001,
            float(lat),
            503 if err else 200,
            "reviews-error" if err else ("reviews-v2-black" if to_v2 else "reviews-v1"),
        )
        for i, (lat, err, to_v2) in enumerate(zip(latencies, errors, v2, strict=True))
    ]
    return LoadResult("http://gw/productpage", samples, spec.n * 0.001, 8)


def scenario(spec: Spec, rng: np.random.Generator, policy_dir: Path) -> dict[str, Any]:
    """A scenario record of ``spec`` (its policy file written into ``policy_dir``)."""
    result = load_result(spec, rng)
    policy = policy_dir / f"{spec.name}.yaml"
    policy.write_text(spec.policy_text or POLICY.format(name=spec.name))
    request = RequestClass()
    prediction = Prediction(
        request,
        (
            OutcomeShare("reviews-v1", 0.95, LatencyBand(0.0, float("inf"))),
            OutcomeShare("reviews-error", 0.05, LatencyBand(0.0, 1.0)),
        ),
        reasoning=("route to v1", "abort 5% with 503"),
    )
    reports = []
    try:
        reports.append(expect(result).to(share("reviews-error", equals=0.05), alpha=0.01))
    except PolicyDeviation as exc:
        reports.append(exc.report)  # type: ignore[attr-defined]
    return rec.scenario_record(
        scenario_id=f"scenarios/test_synthetic.py::test_s[{spec.name}]",
        family="fault_injection",
        outcome=spec.outcome,
        phases={"setup": "passed", "call": spec.outcome, "teardown": "passed"},
        duration=1.5,
        alpha=0.001,
        policies=[rec.policy_entry(policy)],
        request=request,
        prediction=prediction,
        sizing=Sizing(planned=2684, used=spec.n, min_effect=0.05, detectable=0.04, alpha=5e-4),
        loads=[rec.load_entry("load0", result)],
        checks=reports,
        counters={"fault.aborts_injected": sum(1 for s in result.samples if s.status == 503)},
        extra=spec.extra,
    )


def write_run(
    run_dir: Path, specs: Sequence[Spec], seed: int, *, run_id: str | None = None
) -> Path:
    """A run directory with one record per spec and ``run.json``."""
    rng = np.random.default_rng(seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    policy_dir = run_dir.parent / f".policies-{run_dir.name}"
    policy_dir.mkdir(exist_ok=True)
    names = []
    for spec in specs:
        data = scenario(spec, rng, policy_dir)
        name = hashlib.sha256(spec.name.encode()).hexdigest()[:12] + ".json"
        rec.write_json(run_dir / name, data)
        names.append(name)
    outcomes: dict[str, int] = {}
    for spec in specs:
        outcomes[spec.outcome] = outcomes.get(spec.outcome, 0) + 1
    rec.write_json(
        run_dir / "run.json",
        rec.run_record(
            run_id=run_id or run_dir.name,
            backend="local",
            alpha=0.01,
            min_effect=0.05,
            started="2026-12-02T03:00:00+0000",
            finished="2026-12-02T03:10:00+0000",
            exit_status=0,
            outcomes=outcomes,
            families={"fault_injection": {"outcomes": outcomes, "alpha_per_scenario": 0.001}},
            records=sorted(names),
            versions={"meshchaos": "0.1.0", "envoy": "1.40.0", "istio": None},
            git_revision="0" * 40,
            machine={"hostname": "ci", "platform": "Linux", "python": "3.11.7", "cores": 2},
        ),
    )
    return run_dir
