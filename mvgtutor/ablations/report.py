"""The ablation report: per experiment, the seeds' mean, spread and 95% interval beside the paper's figure, the
paired difference from ``default``, and a plot of the same.

Every registered experiment gets a row: ``not run`` when the results file has no seed of it yet, ``not
available`` when the course lacks a part it needs (the registry's ``needs``).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from mvgtutor.ablations.registry import ABLATIONS, DEFAULT
from mvgtutor.ablations.stats import paired_comparison, t_interval


def _fmt(value: float, digits: int = 1) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def report_rows(results: list[dict], profile: str, budget: str, metric: str = "miou") -> list[dict]:
    """One dict per registered experiment for the ``profile``/``budget`` rows of ``results``.

    Keys: experiment, family, seeds, mean, std, ci_low, ci_high, paper, source, compare_with (the experiment
    subtracted: ``default``, or the backbone alone for Table 11's MVP rows), diff (paired ``experiment -
    compare_with``, in points), diff_std (spread of the per-seed differences), diff_low, diff_high, p, status
    (``ok`` | ``not run`` | ``not available``) and verdict (``verdict``).
    """
    chosen = [r for r in results if r["profile"] == profile and r["budget"] == budget]
    by_experiment: dict[str, dict[int, float]] = {}
    for row in chosen:
        by_experiment.setdefault(row["experiment"], {})[int(row["seed"])] = float(row[metric])
    rows = []
    for name, ablation in ABLATIONS.items():
        paper = ablation.paper.miou if metric == "miou" else ablation.paper.dice
        row = dict(experiment=name, family=ablation.family, seeds=0, mean=math.nan, std=math.nan, ci_low=math.nan,
                   ci_high=math.nan, paper=math.nan if paper is None else paper, source=ablation.paper.source,
                   compare_with=ablation.compare_with, diff=math.nan, diff_std=math.nan, diff_low=math.nan,
                   diff_high=math.nan, p=math.nan)
        values = by_experiment.get(name)
        if not ablation.available:
            row["status"] = "not available"
        elif not values:
            row["status"] = "not run"
        else:
            summary = t_interval(list(values.values()))
            row.update(status="ok", seeds=summary.n, mean=summary.mean, std=summary.std, ci_low=summary.low,
                       ci_high=summary.high)
            if name != DEFAULT:
                paired = paired_comparison(by_experiment.get(ablation.compare_with, {}), values)
                row.update(diff=paired.mean_difference, diff_std=paired.std, diff_low=paired.low,
                           diff_high=paired.high, p=paired.p)
        row["verdict"] = verdict(row)
        rows.append(row)
    return rows


def verdict(row: dict) -> str:
    """What a report row says about its experiment against the one it is compared with (``compare_with``):
    ``reference`` (the default itself), ``better`` / ``worse`` (the paired 95% interval excludes 0), ``within seed
    spread`` (it contains 0), ``too few seeds`` (fewer than two seeds in common), or ``""`` for a row not run."""
    if row["status"] != "ok":
        return ""
    if row["experiment"] == DEFAULT:
        return "reference"
    if math.isnan(row["diff_low"]):
        return "too few seeds"
    if row["diff_low"] > 0:
        return "better"
    if row["diff_high"] < 0:
        return "worse"
    return "within seed spread"


def spread_summary(rows: list[dict], difference: float = 1.0) -> str:
    """A few lines about the seed spread of ``report_rows``: the default's spread, how the compared experiments
    fall (``verdict``), and how many seeds a ``difference`` (points) needs at the median spread of the per-seed
    differences (``stats.seeds_needed``)."""
    from mvgtutor.ablations.stats import seeds_needed

    by_name = {r["experiment"]: r for r in rows}
    reference = by_name.get(DEFAULT)
    if reference is None or reference["status"] != "ok" or reference["seeds"] < 2:
        return "no default with two or more seeds yet: run `python -m mvgtutor ablate default --seeds 3`"
    lines = [f"default: mean {reference['mean']:.1f}, seed std {reference['std']:.2f} over {reference['seeds']} "
             f"seeds"]
    compared = [r for r in rows if r["status"] == "ok" and r["experiment"] != DEFAULT]
    counts: dict[str, int] = {}
    for r in compared:
        counts[r["verdict"]] = counts.get(r["verdict"], 0) + 1
    lines.append(f"{len(compared)} experiments compared: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
                                                              or "none"))
    spreads = sorted(r["diff_std"] for r in compared if not math.isnan(r["diff_std"]))
    if spreads:
        median = spreads[len(spreads) // 2]
        lines.append(f"median spread of the per-seed differences: {median:.2f} points; a {difference:g}-point "
                     f"difference needs {seeds_needed(difference, median)} seeds (paired, 95%)")
    return "\n".join(lines)


def format_report(rows: list[dict], metric: str = "miou") -> str:
    """The report as a fixed-width text table (scores and differences in points of ``metric``, in %)."""
    header = (f"{'experiment':<22} {'seeds':>5} {'mean':>6} {'std':>5} {'95% interval':>15} {'paper':>6}  "
              f"{'vs default (paired)':>24} {'p':>6}  {'verdict':<18} source")
    lines = [f"{metric} in % on the held-out patches; paired: experiment - default over common seeds (rows marked "
             f"'vs NAME': experiment - NAME)", header]
    for r in rows:
        if r["status"] != "ok":
            lines.append(f"{r['experiment']:<22} {'':>5} {r['status']:>29} {_fmt(r['paper']):>6}  {'':>24} {'':>6}  "
                         f"{'':<18} {r['source']}")
            continue
        interval = f"[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]" if r["seeds"] > 1 else "(1 seed)"
        diff = "" if math.isnan(r["diff"]) else (
            f"{r['diff']:+.1f} [{_fmt(r['diff_low'])}, {_fmt(r['diff_high'])}]" if not math.isnan(r["diff_low"])
            else f"{r['diff']:+.1f}")
        versus = "" if r["compare_with"] == DEFAULT else f" (vs {r['compare_with']})"
        lines.append(f"{r['experiment']:<22} {r['seeds']:>5} {_fmt(r['mean']):>6} {_fmt(r['std']):>5} "
                     f"{interval:>15} {_fmt(r['paper']):>6}  {diff:>24} {_fmt(r['p'], 3):>6}  {r['verdict']:<18} "
                     f"{r['source']}{versus}")
    return "\n".join(lines)


def plot_report(rows: list[dict], path: str | os.PathLike | None = None, metric: str = "miou", title: str = ""):
    """Horizontal bars of each run experiment's mean with its 95% interval, the default's interval as a grey band,
    and the paper's figure as a cross; written to ``path`` (PNG, atomically) when given. Returns the figure."""
    import matplotlib.pyplot as plt

    from mvgtutor.paths import atomic_path

    shown = [r for r in rows if r["status"] == "ok"]
    fig, ax = plt.subplots(figsize=(7, 0.3 * max(len(shown), 3) + 1.2))
    names = [r["experiment"] for r in shown]
    means = [r["mean"] for r in shown]
    errors = [[0 if math.isnan(r["ci_low"]) else r["mean"] - r["ci_low"] for r in shown],
              [0 if math.isnan(r["ci_high"]) else r["ci_high"] - r["mean"] for r in shown]]
    positions = list(range(len(shown)))[::-1]
    ax.barh(positions, means, xerr=errors, color="#4c72b0", alpha=0.8, capsize=3, label="ours: mean, 95% interval")
    reference = next((r for r in shown if r["experiment"] == DEFAULT), None)
    if reference is not None and not math.isnan(reference["ci_low"]):
        ax.axvspan(reference["ci_low"], reference["ci_high"], color="grey", alpha=0.25, label="default's interval")
    paper = [(p, r["paper"]) for p, r in zip(positions, shown) if not math.isnan(r["paper"])]
    if paper:
        ax.plot([v for _, v in paper], [p for p, _ in paper], "x", color="#c44e52", label="paper")
    ax.set_yticks(positions, names)
    ax.set_xlabel(f"{'mIoU' if metric == 'miou' else 'Dice'} (%) on held-out patches")
    ax.set_title(title or "Ablations")
    if shown:
        ax.legend(loc="lower right", fontsize=7)
    else:
        ax.text(0.5, 0.5, "no results yet", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as temporary:
            fig.savefig(temporary, format="png", dpi=120)
    return fig
