"""Statistics of a few seeds: mean, spread, a 95% interval, and a paired comparison with the default.

With 3-5 seeds the normal approximation is too narrow, so intervals use Student's t with ``n - 1`` degrees of
freedom. Two experiments trained with the same seeds share their data order, augmentation and (where shapes allow)
initialisation, so their difference is compared seed by seed: a paired t-test on the per-seed differences, whose
spread is usually much smaller than either experiment's own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as _scipy_stats

from mvgtutor.errors import ConfigError


@dataclass(frozen=True)
class Summary:
    """``n`` values: their mean, sample standard deviation (ddof 1) and the 95% t interval of the mean."""

    n: int
    mean: float
    std: float  # NaN for n < 2
    low: float  # NaN for n < 2
    high: float  # NaN for n < 2

    @property
    def half_width(self) -> float:
        """Half the 95% interval (NaN for n < 2)."""
        return (self.high - self.low) / 2


@dataclass(frozen=True)
class Paired:
    """``other - reference`` over the seeds both have: mean difference, its 95% t interval, t and two-sided p."""

    n: int
    mean_difference: float
    std: float  # standard deviation of the per-seed differences (NaN for n < 2)
    low: float
    high: float
    t: float
    p: float


def t_interval(values, confidence: float = 0.95) -> Summary:
    """Mean, std and the ``confidence`` interval of the mean of ``values`` (1-D), by Student's t (n - 1 dof)."""
    data = np.asarray(values, dtype=np.float64).ravel()
    if data.size == 0:
        raise ConfigError("no values to summarise: run at least one seed (`python -m mvgtutor ablate NAME`)")
    if not np.all(np.isfinite(data)):
        raise ConfigError(f"values {data.tolist()} hold NaN or inf: a run that scored nothing; rerun it")
    n, mean = data.size, float(data.mean())
    if n < 2:
        return Summary(n, mean, math.nan, math.nan, math.nan)
    std = float(data.std(ddof=1))
    half = float(_scipy_stats.t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half, mean + half)


def paired_comparison(reference: dict, other: dict, confidence: float = 0.95) -> Paired:
    """Paired t-test of ``other[seed] - reference[seed]`` over the seeds in both dicts (``{seed: value}``).

    Fewer than two common seeds give NaN interval, t and p (the mean difference is still given for one seed).
    Identical differences (zero spread) give p = 0 when their mean is not 0, else p = 1.
    """
    seeds = sorted(set(reference) & set(other))
    if not seeds:
        return Paired(0, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan)
    differences = np.array([other[s] - reference[s] for s in seeds], dtype=np.float64)
    summary = t_interval(differences, confidence)
    if summary.n < 2:
        return Paired(1, summary.mean, math.nan, math.nan, math.nan, math.nan, math.nan)
    if summary.std == 0:
        p = 1.0 if summary.mean == 0 else 0.0
        t = 0.0 if summary.mean == 0 else math.copysign(math.inf, summary.mean)
        return Paired(summary.n, summary.mean, 0.0, summary.mean, summary.mean, t, p)
    t = summary.mean / (summary.std / math.sqrt(summary.n))
    p = float(2 * _scipy_stats.t.sf(abs(t), summary.n - 1))
    return Paired(summary.n, summary.mean, summary.std, summary.low, summary.high, float(t), p)


def seeds_needed(difference: float, std_of_differences: float, confidence: float = 0.95,
                 max_seeds: int = 1000) -> int:
    """The fewest seeds ``n`` (>= 2) whose paired 95% interval, ``mean ± t(n-1) * std / sqrt(n)``, excludes 0
    when the true per-seed difference is ``difference`` with spread ``std_of_differences`` (the planning rule
    of thumb; it ignores that the measured spread itself varies). ``ConfigError`` for a zero difference."""
    if not (math.isfinite(difference) and math.isfinite(std_of_differences)) or std_of_differences < 0:
        raise ConfigError(f"difference {difference} and spread {std_of_differences}: give finite numbers, the "
                          f"spread >= 0")
    if difference == 0:
        raise ConfigError("a difference of 0 is never detected: give the smallest difference that matters")
    for n in range(2, max_seeds + 1):
        half = float(_scipy_stats.t.ppf(0.5 + confidence / 2, n - 1)) * std_of_differences / math.sqrt(n)
        if half < abs(difference):
            return n
    return max_seeds
