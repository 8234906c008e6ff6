"""What an instructor grades against: the band a student's figure should fall in, from the reference results.

A student's run of an experiment is one more seed of it. The band is the reference seeds' mean ± ``widen``
standard deviations (ours: 3 by default, so an honest run falls outside it rarely; a run of another experiment or
budget usually does not fit). Used by the instructor guide and by the autograder's hidden tests.
"""

from __future__ import annotations

import math

from mvgtutor.ablations.registry import ABLATIONS
from mvgtutor.ablations.stats import t_interval


def expected_band(results: list[dict], experiment: str, profile: str = "cpu", budget: str = "lab",
                  metric: str = "miou", widen: float = 3.0, min_width: float = 1.0) -> tuple[float, float] | None:
    """``(low, high)`` of ``metric`` (%) for one new seed of ``experiment``: the reference mean ± ``widen`` std,
    at least ± ``min_width`` points; ``None`` with fewer than two reference seeds."""
    values = [float(r[metric]) for r in results
              if r["experiment"] == experiment and r["profile"] == profile and r["budget"] == budget]
    if len(values) < 2:
        return None
    summary = t_interval(values)
    half = max(widen * summary.std, min_width)
    return (max(0.0, summary.mean - half), min(100.0, summary.mean + half))


def expected_results(results: list[dict], profile: str = "cpu", budget: str = "lab", metric: str = "miou",
                     widen: float = 3.0) -> list[dict]:
    """One row per registered experiment with reference seeds: seeds, mean, std, the grading band, and the
    measured cost of one run (median training seconds and samples/s, and the load average while it ran)."""
    rows = []
    for name in ABLATIONS:
        chosen = [r for r in results if r["experiment"] == name and r["profile"] == profile and r["budget"] == budget]
        if not chosen:
            continue
        values = [float(r[metric]) for r in chosen]
        summary = t_interval(values)
        band = expected_band(results, name, profile, budget, metric, widen)
        seconds = sorted(float(r["train_seconds"]) for r in chosen)
        speeds = sorted(float(r["samples_per_s"]) for r in chosen)
        loads = sorted(float(r["load_1min"]) for r in chosen)
        rows.append(dict(experiment=name, seeds=summary.n, mean=round(summary.mean, 1),
                         std="" if math.isnan(summary.std) else round(summary.std, 2),
                         band="" if band is None else f"{band[0]:.1f} - {band[1]:.1f}",
                         train_s=round(seconds[len(seconds) // 2]), samples_per_s=speeds[len(speeds) // 2],
                         load=loads[len(loads) // 2]))
    return rows
