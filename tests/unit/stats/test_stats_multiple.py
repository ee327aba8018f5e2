"""Holm's procedure and the run's alpha budget."""

from __future__ import annotations

import threading

import pytest

from meshchaos.stats import (
    DEFAULT_ALPHA,
    AlphaBudget,
    current_alpha,
    holm,
    holm_adjusted,
    use_alpha,
)


def test_holm_worked_example() -> None:
    # The worked example of Wikipedia's "Holm-Bonferroni method": m = 4 at alpha 0.05.
    # Sorted: 0.005 <= 0.05/4 (reject H4), 0.01 <= 0.05/3 (reject H1),
    # 0.03 > 0.05/2 (stop): H3 and H2 stand, though each is below 0.05 alone.
    pvalues = [0.01, 0.04, 0.03, 0.005]
    assert holm(pvalues, 0.05) == [True, False, False, True]
    assert holm_adjusted(pvalues) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_rejects_more_than_bonferroni() -> None:
    pvalues = [0.001, 0.012, 0.02]  # Bonferroni at 0.05 rejects only 0.001 (< 0.0167)
    assert holm(pvalues, 0.05) == [True, True, True]  # 0.012 <= 0.025, 0.02 <= 0.05


def test_holm_stops_at_first_non_rejection() -> None:
    assert holm([0.03, 0.001, 0.04], 0.05) == [False, True, False]


def test_holm_edge_cases() -> None:
    assert holm([], 0.05) == []
    assert holm([0.0, 1.0], 0.01) == [True, False]
    assert holm_adjusted([0.6, 0.7]) == [1.0, 1.0]


def test_alpha_budget_splits_bonferroni() -> None:
    budget = AlphaBudget(alpha=0.01, scenarios=40)
    assert budget.per_scenario == pytest.approx(0.00025)
    assert budget.split(2) == pytest.approx(0.000125)
    assert AlphaBudget().per_scenario == DEFAULT_ALPHA


@pytest.mark.parametrize("kwargs", [{"alpha": 0.0}, {"alpha": 1.0}, {"scenarios": 0}])
def test_alpha_budget_validates(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        AlphaBudget(**kwargs)  # type: ignore[arg-type]


def test_use_alpha_sets_and_restores() -> None:
    assert current_alpha() == DEFAULT_ALPHA
    with use_alpha(0.001) as a:
        assert a == current_alpha() == 0.001
        with use_alpha(0.0001):
            assert current_alpha() == 0.0001
        assert current_alpha() == 0.001
    assert current_alpha() == DEFAULT_ALPHA


def test_use_alpha_restores_after_an_error() -> None:
    with pytest.raises(RuntimeError), use_alpha(0.002):
        raise RuntimeError
    assert current_alpha() == DEFAULT_ALPHA


def test_use_alpha_is_context_local() -> None:
    seen: list[float] = []
    with use_alpha(0.003):
        thread = threading.Thread(target=lambda: seen.append(current_alpha()))
        thread.start()
        thread.join()
    assert seen == [DEFAULT_ALPHA]
