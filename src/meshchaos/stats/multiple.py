"""Multiple-comparison control: the run's alpha, split so that it holds run-wide.

How one run keeps its family-wise false-alarm rate at or below ``alpha``:

1. **Across scenarios, Bonferroni.** Each of the run's ``N`` scenarios (test items)
   gets ``alpha / N``. By the union bound, P(any scenario falsely fails) <= sum of
   the per-scenario rates <= N * alpha / N = alpha, whatever the dependence between
   scenarios (they share a mesh, so they are not independent). Bonferroni, not Holm,
   at this level because Holm needs every p-value of the run before it can decide
   one, and a pytest verdict must be immediate, per test.
2. **Inside a scenario, Holm.** The checks of one ``expect(...).to(...)`` call are
   tested with Holm's step-down procedure at the scenario's level ``alpha / N``. Holm
   controls the family-wise error of those checks at that level under any dependence
   (the checks of one run are dependent: shares of one multinomial), and is uniformly
   more powerful than Bonferroni.

Chaining the two: P(run falsely fails) <= sum over scenarios of P(scenario falsely
fails) <= N * (alpha / N) = alpha. A scenario that calls ``to`` more than once, or
is retried, spends its level once per call: count each such call as a scenario, or
split the scenario's level explicitly with :meth:`AlphaBudget.split`.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = [
    "DEFAULT_ALPHA",
    "AlphaBudget",
    "current_alpha",
    "holm",
    "holm_adjusted",
    "use_alpha",
]

DEFAULT_ALPHA = 0.01
"""The run's family-wise false-alarm rate unless configured otherwise."""

_ALPHA: contextvars.ContextVar[float] = contextvars.ContextVar(
    "meshchaos_alpha", default=DEFAULT_ALPHA
)


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")


def holm_adjusted(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the input order: reject ``i`` at alpha iff ``adj[i] <= alpha``.

    ``adj_(j) = max_{i <= j} min(1, (m - i + 1) * p_(i))`` over the sorted p-values;
    the running maximum makes the step-down stop at the first non-rejection.
    """
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def holm(pvalues: Sequence[float], alpha: float) -> list[bool]:
    """Holm's step-down procedure: which hypotheses to reject, in the input order.

    Family-wise error <= ``alpha`` under any dependence between the tests.
    """
    _check_alpha(alpha)
    return [q <= alpha for q in holm_adjusted(pvalues)]


@dataclass(frozen=True)
class AlphaBudget:
    """The run's family-wise ``alpha``, spread over its ``scenarios`` (see module doc).

    >>> AlphaBudget(alpha=0.01, scenarios=40).per_scenario
    0.00025
    """

    alpha: float = DEFAULT_ALPHA
    scenarios: int = 1

    def __post_init__(self) -> None:
        _check_alpha(self.alpha)
        if self.scenarios < 1:
            raise ValueError(f"scenarios must be >= 1, got {self.scenarios}")

    @property
    def per_scenario(self) -> float:
        """Bonferroni share of one scenario: ``alpha / scenarios``."""
        return self.alpha / self.scenarios

    def split(self, parts: int) -> float:
        """Level of each of ``parts`` verdicts inside one scenario (e.g. before/after phases)."""
        if parts < 1:
            raise ValueError(f"parts must be >= 1, got {parts}")
        return self.per_scenario / parts


def current_alpha() -> float:
    """The level checks use by default: the current scenario's, or ``DEFAULT_ALPHA``."""
    return _ALPHA.get()


@contextmanager
def use_alpha(alpha: float) -> Iterator[float]:
    """Make ``alpha`` the default level of every check evaluated inside the block.

    The pytest plugin wraps each scenario in ``use_alpha(budget.per_scenario)``.
    Context-local, so threads and asyncio tasks each see their own level.
    """
    _check_alpha(alpha)
    token = _ALPHA.set(alpha)
    try:
        yield alpha
    finally:
        _ALPHA.reset(token)
