"""How checks show numbers: durations, percentages and confidence intervals."""

from __future__ import annotations

import math

from meshchaos.stats.intervals import clopper_pearson

__all__ = ["ci", "ci_bounds", "percent", "seconds"]


def seconds(x: float) -> str:
    if math.isinf(x):
        return "∞"
    if math.isnan(x):
        return "n/a"
    return f"{x * 1000:.4g} ms" if abs(x) < 1 else f"{x:.4g} s"


def percent(x: float) -> str:
    return f"{x * 100:.3g}%"


def ci(k: int, n: int, alpha: float) -> str:
    lo, hi = clopper_pearson(k, n, 1 - alpha)
    return f"{100 * (1 - alpha):.6g}% CI [{lo:.3g}, {hi:.3g}]"


def ci_bounds(k: int, n: int, alpha: float) -> tuple[float, float]:
    """The exact (Clopper-Pearson) interval :func:`ci` shows, as numbers."""
    return clopper_pearson(k, n, 1 - alpha)
