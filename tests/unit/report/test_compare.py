"""``compare``: zero false alarms on same-distribution runs, real changes caught exactly,
non-comparable records never tested, and the verb's exit codes."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from report_fakes import Spec, write_run

from meshchaos.cli import main
from meshchaos.report._statistics import newcombe
from meshchaos.report.compare import Comparison, Thresholds, Verdict, compare_runs
from meshchaos.report.markdown import to_markdown
from meshchaos.report.record import read_run

SPECS = [Spec(f"s{i:02d}", error_share=0.02 + 0.01 * (i % 5)) for i in range(20)]


def _compare(
    tmp_path: Path, baseline: list[Spec], current: list[Spec], seed: int = 0
) -> tuple[Path, Path, Comparison]:
    a = write_run(tmp_path / "base", baseline, seed=seed)
    b = write_run(tmp_path / "cur", current, seed=seed + 1000)
    return a, b, compare_runs(read_run(a), read_run(b))


def _verdicts(comparison: Comparison) -> dict[str, Verdict | None]:
    return {s.scenario.split("[")[-1].rstrip("]"): s.verdict for s in comparison.scenarios}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_twenty_same_distribution_pairs_give_no_regression(tmp_path: Path, seed: int) -> None:
    _, _, c = _compare(tmp_path, SPECS, SPECS, seed)
    assert len(c.scenarios) == 20
    assert c.tests == 80  # failure share, error share, p50 and p99 of every scenario
    assert c.count(Verdict.REGRESSED) == 0
    assert c.count(Verdict.IMPROVED) == 0
    assert not c.has_regression
    assert c.count(Verdict.SAME) + c.count(Verdict.INCONCLUSIVE) == 20


def test_latency_scaled_by_one_and_a_half_is_exactly_that_regression(tmp_path: Path) -> None:
    current = [replace(s, median=s.median * 1.5) if s.name == "s07" else s for s in SPECS]
    _, _, c = _compare(tmp_path, SPECS, current)
    verdicts = _verdicts(c)
    assert [k for k, v in verdicts.items() if v is Verdict.REGRESSED] == ["s07"]
    (s07,) = c.regressed
    p50 = next(m for m in s07.metrics if m.metric == "p50 latency")
    assert p50.verdict is Verdict.REGRESSED
    assert p50.change == pytest.approx(0.5, abs=0.06)
    assert p50.low > p50.threshold
    assert c.has_regression
    text = to_markdown(c)
    assert "## Regressions" in text
    assert "+5" in text.split("## Regressions")[1].splitlines()[4]  # +5x.x% on s07's row


def test_between_run_noise_widens_the_latency_threshold_instead_of_alarming(
    tmp_path: Path,
) -> None:
    # Two honest runs on a shared machine: every scenario's latency moved by its own
    # factor (contention bursts), far beyond sampling error, none of it the mesh's doing.
    rng = np.random.default_rng(7)
    noisy = [replace(s, median=s.median * float(np.exp(rng.normal(0, 0.2)))) for s in SPECS]
    noisy[3] = replace(noisy[3], median=SPECS[3].median * 1.8)  # one burst, +80%
    _, _, c = _compare(tmp_path, SPECS, noisy)
    assert c.count(Verdict.REGRESSED) == 0
    assert not c.has_regression
    p50s = [m for s in c.scenarios for m in s.metrics if m.metric == "p50 latency"]
    assert all(m.threshold > 0.3 for m in p50s)  # what this pair can resolve, said
    assert all("run-to-run noise" in m.note for m in p50s)


def test_a_uniformly_slower_run_is_a_shift_not_twenty_regressions(tmp_path: Path) -> None:
    slower = [replace(s, median=s.median * 1.4) for s in SPECS]
    _, _, c = _compare(tmp_path, SPECS, slower)
    assert c.count(Verdict.REGRESSED) == 0
    p50s = [m for s in c.scenarios for m in s.metrics if m.metric == "p50 latency"]
    assert all(m.shift == pytest.approx(0.4, abs=0.05) for m in p50s)
    assert all(abs(m.change) < 0.05 for m in p50s)
    assert "run-wide" in to_markdown(c)


def test_error_share_up_ten_points_is_exactly_that_regression(tmp_path: Path) -> None:
    current = [
        replace(s, error_share=s.error_share + 0.10) if s.name == "s12" else s for s in SPECS
    ]
    _, _, c = _compare(tmp_path, SPECS, current)
    assert [k for k, v in _verdicts(c).items() if v is Verdict.REGRESSED] == ["s12"]
    (s12,) = c.regressed
    err = next(m for m in s12.metrics if m.metric.startswith("error share"))
    assert err.verdict is Verdict.REGRESSED
    assert err.change == pytest.approx(0.10, abs=0.025)
    assert err.adjusted is not None
    assert err.adjusted <= 0.01


def test_an_error_share_down_ten_points_is_an_improvement_not_a_failure(tmp_path: Path) -> None:
    base = [replace(s, error_share=0.15) if s.name == "s03" else s for s in SPECS]
    _, _, c = _compare(tmp_path, base, SPECS)
    assert [k for k, v in _verdicts(c).items() if v is Verdict.IMPROVED] == ["s03"]
    assert not c.has_regression


def test_a_routing_split_that_moves_is_a_regression_either_way(tmp_path: Path) -> None:
    base = [replace(s, v2_share=0.5) for s in SPECS[:5]]
    current = [replace(s, v2_share=0.35) if s.name == "s01" else s for s in base]
    _, _, c = _compare(tmp_path, base, current)
    assert [k for k, v in _verdicts(c).items() if v is Verdict.REGRESSED] == ["s01"]
    (s01,) = c.regressed
    moved = {m.metric for m in s01.metrics if m.verdict is Verdict.REGRESSED}
    assert moved == {
        "share of reviews-v1 (of the non-failure classes)",
        "share of reviews-v2-black (of the non-failure classes)",
    }
    # Fewer errors alone never read as a routing change.
    fewer = [replace(s, error_share=0.0) if s.name == "s02" else s for s in base]
    _, _, c2 = _compare(tmp_path / "again", base, fewer)
    assert c2.regressed == []


def test_policy_text_differing_under_the_same_name_is_not_comparable(tmp_path: Path) -> None:
    current = [
        replace(s, policy_text="kind: VirtualService\n# edited\n") if s.name == "s05" else s
        for s in SPECS
    ]
    _, _, c = _compare(tmp_path, SPECS, current)
    (s05,) = [s for s in c.scenarios if s.scenario.endswith("[s05]")]
    assert not s05.comparable
    assert s05.verdict is None
    assert s05.metrics == []  # never tested, so never "equal"
    assert "policy s05.yaml differs" in s05.reason
    assert "## Not comparable" in to_markdown(c)


def test_new_and_gone_scenarios_are_not_comparable(tmp_path: Path) -> None:
    _, _, c = _compare(tmp_path, SPECS[:3], SPECS[1:4])
    reasons = {s.scenario.split("[")[-1].rstrip("]"): s.reason for s in c.scenarios}
    assert reasons["s00"].startswith("gone")
    assert reasons["s03"].startswith("new")
    assert reasons["s01"] == ""


def test_verdict_flips_come_first_and_fail_the_comparison(tmp_path: Path) -> None:
    current = [replace(s, outcome="failed") if s.name == "s09" else s for s in SPECS]
    _, _, c = _compare(tmp_path, SPECS, current)
    assert c.has_regression
    text = to_markdown(c)
    assert text.index("## Verdict flips") < min(
        text.index(h) for h in ("## Regressions", "## Inconclusive", "<details>") if h in text
    )
    assert "| passed | failed |" in text


def test_too_few_samples_for_p99_is_inconclusive_not_same(tmp_path: Path) -> None:
    small = [Spec("tiny", n=300)]
    _, _, c = _compare(tmp_path, small, small)
    p99 = next(m for m in c.scenarios[0].metrics if m.metric == "p99 latency")
    assert p99.pvalue is None
    assert p99.verdict is Verdict.INCONCLUSIVE
    assert "n too small" in p99.note


def test_newcombe_interval_covers_the_difference() -> None:
    low, high = newcombe(50, 1000, 80, 1000, 0.95)
    assert low < 0.03 < high
    assert low > 0  # 5% vs 8% at n=1000 is a real difference
    with pytest.raises(ValueError, match="alpha"):
        Thresholds(alpha=1.5)


def test_cli_exit_codes_and_markdown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write_run(tmp_path / "a", SPECS[:4], seed=1)
    b = write_run(tmp_path / "b", SPECS[:4], seed=2)
    summary = tmp_path / "summary.md"
    assert main(["compare", str(a), str(b), "--markdown", "-o", str(summary)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# meshchaos compare")
    assert summary.read_text() == out
    worse = [replace(s, error_share=0.3) for s in SPECS[:4]]
    c = write_run(tmp_path / "c", worse, seed=3)
    assert main(["compare", str(a), str(c / "run.json")]) == 1
    capsys.readouterr()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ({"schema_version": 99}, "newer than this meshchaos reads"),
        ({"records": "x"}, "field 'records' is str"),
    ],
)
def test_cli_unusable_input_is_one_line_and_exit_two(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: dict[str, object], message: str
) -> None:
    a = write_run(tmp_path / "a", SPECS[:2], seed=1)
    b = write_run(tmp_path / "b", SPECS[:2], seed=2)
    data = json.loads((b / "run.json").read_text())
    data.update(damage)
    (b / "run.json").write_text(json.dumps(data))
    assert main(["compare", str(a), str(b)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("meshchaos compare: ")
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert main(["compare", str(a), str(tmp_path / "missing")]) == 2
    assert "no such run directory" in capsys.readouterr().err
