"""Statistics of the verdict: exact intervals and tests, sample sizing, alpha control."""

from meshchaos.stats.intervals import (
    Alternative,
    binomial_pvalue,
    bound_pvalue,
    clopper_pearson,
    one_sided_pvalue,
    wilson,
)
from meshchaos.stats.multiple import (
    DEFAULT_ALPHA,
    AlphaBudget,
    current_alpha,
    holm,
    holm_adjusted,
    use_alpha,
)
from meshchaos.stats.sizing import (
    binomial_power,
    detectable_effect,
    latency_sample_size,
    sample_size,
)

__all__ = [
    "DEFAULT_ALPHA",
    "AlphaBudget",
    "Alternative",
    "binomial_power",
    "binomial_pvalue",
    "bound_pvalue",
    "clopper_pearson",
    "current_alpha",
    "detectable_effect",
    "holm",
    "holm_adjusted",
    "latency_sample_size",
    "one_sided_pvalue",
    "sample_size",
    "use_alpha",
    "wilson",
]
