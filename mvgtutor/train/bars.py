"""Chapter 7's bars: what a trained model should reach on the held-out tomogram, per profile.

Three quantities of the per-class Dice of whole-tomogram inference: the vesicles, the gold fiducials, and the mean
over the five largest proteins (5MRC, 4CR2, 4V94, 1QVR, 3CF3). The bars grow with the budget: a ten-minute
``cpu`` run, a fifteen-minute ``colab`` run on a T4, and a reference run trained for hours. They are the course's
targets, not the paper's (its Table 2 reports means over all classes only).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from mvgtutor.data.classes import largest_proteins

VESICLE, FIDUCIAL = 14, 15
QUANTITIES: dict[str, str] = {"vesicle": "vesicle", "fiducial": "fiducial",
                              "big_five": "mean of 5MRC, 4CR2, 4V94, 1QVR, 3CF3"}
BARS: dict[str, dict[str, float]] = {
    "cpu": dict(vesicle=0.7, fiducial=0.8, big_five=0.4),  # about 10 min on a 2-core CPU
    "colab": dict(vesicle=0.85, fiducial=0.9, big_five=0.6),  # at most 15 min on a T4
    "reference": dict(vesicle=0.9, fiducial=0.9, big_five=0.75),  # hours
}
_PROFILE_BARS = {"test": "cpu", "cpu": "cpu", "colab": "colab", "paper": "reference"}


def finite_or_none(d: float | None) -> float | None:
    """A score as a plain float, or None where it is missing (None or NaN: a class absent from the tomogram)."""
    return None if d is None or not np.isfinite(d) else float(d)


def bar_means(dice: Sequence[float | None]) -> dict[str, float | None]:
    """The bar quantities of one per-class Dice list ``(16,)`` (None or NaN where a class is absent): ``vesicle``,
    ``fiducial``, ``big_five`` (the mean over the five largest proteins that occur)."""
    value = finite_or_none
    big_five = [value(dice[c.label]) for c in largest_proteins(5)]
    big_five = [d for d in big_five if d is not None]
    return dict(vesicle=value(dice[VESICLE]), fiducial=value(dice[FIDUCIAL]),
                big_five=round(float(np.mean(big_five)), 4) if big_five else None)


def bars_for(profile_name: str) -> tuple[str, dict[str, float]]:
    """The bar set that applies to a profile (``test`` borrows ``cpu``'s, ``paper`` the reference's) or the bar set
    of that name (``"reference"``): its name and its bars."""
    name = _PROFILE_BARS.get(profile_name, profile_name)
    if name not in BARS:
        raise KeyError(f"no bars for {profile_name!r}: choose one of {', '.join(sorted({*_PROFILE_BARS, *BARS}))}")
    return name, BARS[name]


def bar_rows(dice: Sequence[float | None], bars: str) -> list[dict]:
    """One row per bar quantity for a per-class Dice list against the bar set ``bars`` (a profile or
    ``"reference"``): ``quantity``, ``dice``, ``bar``, ``met`` (``"met"``, ``"not met"``, or ``"absent"``)."""
    _, targets = bars_for(bars)
    means = bar_means(dice)
    rows = []
    for key, label in QUANTITIES.items():
        value = means[key]
        met = "absent" if value is None else ("met" if value >= targets[key] else "not met")
        rows.append(dict(quantity=label, dice=None if value is None else round(value, 3), bar=targets[key], met=met))
    return rows
