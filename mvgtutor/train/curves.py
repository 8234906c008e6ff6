"""Learning curves of the training levers: held-out Dice against training samples seen, one JSON file per curve.

``data_scripts/learning_curve.py`` writes them (profile, the changes from it, data fingerprint, commit, machine and
one row per scoring: ``samples``, ``seconds``, ``loss``, ``vesicle``, ``fiducial``, ``big_five``, ``dice``); the
committed ones live in ``CURVES_DIR`` (shipped with the package) and chapter 7 plots them with
``lever_curves_figure``. A curve can stop early: its ``note`` says why.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping, Sequence

from mvgtutor.errors import DataError

CURVES_DIR = Path(__file__).resolve().parent / "results" / "curves"
METRICS: tuple[str, ...] = ("vesicle", "fiducial", "big_five")  # the bars of chapter 7


def read_curve(curve: str | os.PathLike) -> dict:
    """One curve: a path, or a committed label (``"cpu-fg-cosine"`` reads ``CURVES_DIR/curve-cpu-fg-cosine.json``)."""
    path = Path(curve)
    if not path.is_file():
        path = CURVES_DIR / f"curve-{curve}.json"
    if not path.is_file():
        known = ", ".join(committed_curves()) or "(none)"
        raise DataError(f"no learning curve {curve!r}: pass a JSON file written by data_scripts/learning_curve.py "
                        f"or one of the committed labels: {known}")
    data = json.loads(path.read_text())
    if not isinstance(data.get("rows"), list) or any("samples" not in row for row in data["rows"]):
        raise DataError(f"{path} is not a learning curve (no rows with 'samples'): write one with "
                        f"data_scripts/learning_curve.py")
    return data


def committed_curves() -> list[str]:
    """The labels of the committed curves, sorted."""
    return sorted(p.stem.removeprefix("curve-") for p in CURVES_DIR.glob("curve-*.json"))


def curve_table(curves: Mapping[str, dict], at_samples: Sequence[int]) -> list[dict]:
    """One row per curve: for each budget in ``at_samples``, the vesicle / fiducial / big-five Dice of the last
    scoring at or before it (None where the curve had not been scored yet or stopped before it)."""
    rows = []
    for name, curve in curves.items():
        row: dict = dict(curve=name)
        for budget in at_samples:
            seen = [r for r in curve["rows"] if r["samples"] <= budget]
            reached = bool(seen) and curve["rows"][-1]["samples"] >= budget * 0.97  # ran (about) that far
            last = seen[-1] if seen and reached else None
            for metric in METRICS:
                value = None if last is None or last.get(metric) is None else round(float(last[metric]), 2)
                row[f"{metric}@{budget}"] = value
        rows.append(row)
    return rows


def lever_curves_figure(curves: Mapping[str, dict], metrics: Sequence[str] = METRICS, title: str = ""):
    """One panel per metric (held-out Dice against samples seen), one line per curve; returns the figure."""
    import matplotlib.pyplot as plt

    labels = {"vesicle": "vesicle", "fiducial": "gold fiducial", "big_five": "mean of the 5 largest proteins"}
    figure, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4), sharey=True, squeeze=False)
    for axis, metric in zip(axes[0], metrics):
        for name, curve in curves.items():
            points = [(r["samples"], r[metric]) for r in curve["rows"] if r.get(metric) is not None]
            if points:
                axis.plot(*zip(*points), marker="o", label=name)
        axis.set_title(labels.get(metric, metric))
        axis.set_xlabel("training samples seen")
        axis.set_ylim(0, 1)
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel("held-out Dice (32³ patches)")
    axes[0][-1].legend(fontsize=8)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure
