"""Three ways to score particle picks, all on ``matching.match_points``.

* ``paper_scores``: the paper's precision, recall and F1 per class (Sec. 5.2.2, Tables 5-6): a pick is a hit
  when its centre lies within the particle's radius of a true centre of its class. One pick per particle
  (``rule="one_to_one"``) is our reading; ``rule="any"`` is the alternative.
* ``czii_score``: the CZII cryo-ET object identification challenge's metric, exactly as its scorer computes it:
  per particle type, a true particle is found when a pick of its type lies within ``0.5 x`` its radius
  (Angstrom); TP / FP / FN are summed over all tomograms, then F-beta with beta = 4 per type, then a weighted
  mean over the types with the challenge's weights.
* ``shrec_scores``: SHREC 2021's official localisation rule: a pick is a hit when its rounded voxel falls
  inside the (once dilated) occupancy of a particle; each particle counts once (TP = unique particles hit);
  a pick on background is a FP; picks and particles of the skipped classes (4V94, vesicle) are left out.
  The class of a found particle's *first* pick gives the classification (a confusion matrix).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from mvgtutor.errors import DataError
from mvgtutor.picking.matching import match_points
from mvgtutor.picking.picks import Picks

# The CZII challenge's scorer (Kaggle "CZII - CryoET Object Identification", 2024-2025): radii in Angstrom and
# weights per particle type. The copick project config of the same data says 80 A for beta-amylase; the
# scorer's 65 A is what counted (beta-amylase has weight 0 anyway).
CZII_RADII_ANGSTROM: dict[str, float] = {
    "apo-ferritin": 60.0, "beta-amylase": 65.0, "beta-galactosidase": 90.0, "ribosome": 150.0,
    "thyroglobulin": 130.0, "virus-like-particle": 135.0,
}
CZII_WEIGHTS: dict[str, float] = {
    "apo-ferritin": 1.0, "beta-amylase": 0.0, "beta-galactosidase": 2.0, "ribosome": 1.0,
    "thyroglobulin": 2.0, "virus-like-particle": 1.0,
}
CZII_BETA = 4.0
CZII_DISTANCE_MULTIPLIER = 0.5
SHREC_SKIPPED = ("4V94", "vesicle")  # left out of the SHREC 2021 results (its evaluation's skip options)


@dataclass(frozen=True)
class Counts:
    """True positives, false positives and false negatives, and the scores made from them."""

    tp: int
    fp: int
    fn: int

    def __add__(self, other: "Counts") -> "Counts":
        return Counts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)

    @property
    def precision(self) -> float:
        """TP / (TP + FP); 0 when there are no picks (the CZII scorer's convention)."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        """TP / (TP + FN); 0 when there are no true particles."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    def fbeta(self, beta: float = 1.0) -> float:
        """(1 + b^2) P R / (b^2 P + R): recall counts b^2 times as much as precision; 0 when P + R = 0."""
        p, r = self.precision, self.recall
        return (1 + beta**2) * p * r / (beta**2 * p + r) if p + r > 0 else 0.0

    @property
    def f1(self) -> float:
        """The harmonic mean of precision and recall (F-beta with beta = 1)."""
        return self.fbeta(1.0)

    def to_json(self) -> dict:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "precision": self.precision, "recall": self.recall,
                "f1": self.f1}


@dataclass(frozen=True)
class PickingScores:
    """Counts per class, their sum (``total``: micro average) and the metric's headline number."""

    metric: str
    per_class: dict[str, Counts]
    total: Counts
    headline: float  # paper: micro F1; czii: weighted F-beta; shrec: localisation F1
    extra: dict = field(default_factory=dict)

    def table(self, beta: float | None = None) -> list[dict]:
        """Rows ``{class, TP, FP, FN, precision, recall, F1[, F-beta]}`` for ``markdown_table``, then the total."""
        rows = []
        for name, c in [*self.per_class.items(), ("all (summed)", self.total)]:
            row = {"class": name, "TP": c.tp, "FP": c.fp, "FN": c.fn, "precision": f"{c.precision:.3f}",
                   "recall": f"{c.recall:.3f}", "F1": f"{c.f1:.3f}"}
            if beta is not None:
                row[f"F{beta:g}"] = f"{c.fbeta(beta):.3f}"
            rows.append(row)
        return rows

    def to_json(self) -> dict:
        return {"metric": self.metric, "headline": self.headline, "total": self.total.to_json(),
                "per_class": {k: v.to_json() for k, v in self.per_class.items()},
                **({"extra": self.extra} if self.extra else {})}


# ------------------------------------------------------------------------------------------------- paper
def paper_scores(picks: Picks, truth: Picks, radius_by_class: dict[str, float], *, rule: str = "one_to_one",
                 strict: bool = True) -> PickingScores:
    """The paper's P / R / F1 per class (Sec. 5.2.2). ``picks`` and ``truth`` share a unit (voxels or Angstrom)
    and ``radius_by_class`` (class name -> particle radius) is in that unit. Per tomogram and class, picks are
    matched to true centres of the same class (``rule``, see ``match_points``; ``strict``: "less than the
    radius"); counts are summed over tomograms. Classes without a radius are skipped (listed in ``extra``).
    """
    _same_unit(picks, truth)
    per_class = {}
    skipped = sorted((set(truth.names) | set(picks.names)) - set(radius_by_class))
    for name in sorted(set(truth.names) | set(picks.names)):
        if name not in radius_by_class:
            continue
        counts = Counts(0, 0, 0)
        for tomogram in sorted(set(truth.tomograms) | set(picks.tomograms)):
            mine = picks.of_class(name).of_tomogram(tomogram)
            true = truth.of_class(name).of_tomogram(tomogram)
            m = match_points(mine.xyz, true.xyz, radius_by_class[name], rule=rule, strict=strict)
            counts = counts + Counts(m.tp, m.fp, m.fn)
        per_class[name] = counts
    total = sum(per_class.values(), Counts(0, 0, 0))
    return PickingScores("paper", per_class, total, total.f1, {"skipped_classes": skipped} if skipped else {})


# -------------------------------------------------------------------------------------------------- CZII
def czii_score(picks: Picks, truth: Picks, *, radii_angstrom: dict[str, float] | None = None,
               weights: dict[str, float] | None = None, beta: float = CZII_BETA,
               distance_multiplier: float = CZII_DISTANCE_MULTIPLIER) -> PickingScores:
    """The CZII challenge's score of ``picks`` against ``truth``, both in Angstrom (as the submission CSV).

    As the challenge's scorer: picks of tomograms (experiments) absent from the truth are ignored; a pick of an
    unknown particle type is an error; per type, TP / FP / FN are summed over every tomogram of the truth, with a
    true particle found when a pick of its type lies within ``distance_multiplier x radius``; the headline is
    the ``weights``-weighted mean over the truth's types of F-beta (``beta`` = 4).
    ``radii_angstrom`` / ``weights`` default to the challenge's (``CZII_RADII_ANGSTROM``, ``CZII_WEIGHTS``);
    pass your own for other particle types.
    """
    radii = CZII_RADII_ANGSTROM if radii_angstrom is None else radii_angstrom
    weights = CZII_WEIGHTS if weights is None else weights
    for table, what in ((picks, "picks"), (truth, "truth")):
        if table.unit != "angstrom":
            raise DataError(f"czii_score: {what} are in {table.unit}s; the CZII metric works in Angstrom "
                            f"(convert with .to_angstrom(voxel_size_angstrom))")
    experiments = sorted(set(truth.tomograms))
    picks = picks.select(np.isin(picks.tomograms, experiments))
    unknown = sorted(set(picks.names) - set(weights))
    if unknown:
        raise DataError(f"czii_score: unknown particle type(s) {unknown}; the metric knows {sorted(weights)}")
    missing = sorted(set(truth.names) - set(radii))
    if missing:
        raise DataError(f"czii_score: no radius for particle type(s) {missing}; pass radii_angstrom")
    per_class = {}
    for name in sorted(set(truth.names)):
        counts = Counts(0, 0, 0)
        for experiment in experiments:
            true = truth.of_class(name).of_tomogram(experiment)
            mine = picks.of_class(name).of_tomogram(experiment)
            m = match_points(mine.xyz, true.xyz, radii[name] * distance_multiplier, rule="czii")
            counts = counts + Counts(m.tp, m.fp, m.fn)
        per_class[name] = counts
    total_weight = sum(weights.get(name, 1.0) for name in per_class)
    if not per_class or total_weight <= 0:
        raise DataError("czii_score: the truth holds no particle type with a positive weight")
    headline = sum(c.fbeta(beta) * weights.get(name, 1.0) for name, c in per_class.items()) / total_weight
    total = sum(per_class.values(), Counts(0, 0, 0))
    fbetas = {name: c.fbeta(beta) for name, c in per_class.items()}
    return PickingScores("czii", per_class, total, float(headline),
                         {"beta": beta, "distance_multiplier": distance_multiplier, "fbeta_per_class": fbetas,
                          "weights": {name: weights.get(name, 1.0) for name in per_class}})


# ------------------------------------------------------------------------------------------------- SHREC
def shrec_scores(picks: Picks, truth_particles, occupancy_mask, *, skip=SHREC_SKIPPED,
                 dilate: bool = True, recall_counts_skipped_vesicles: bool = True) -> PickingScores:
    """SHREC 2021's localisation and classification scores of voxel ``picks`` in one tomogram.

    ``truth_particles``: the tomogram's ``Particle`` s in ``particle_locations.txt`` order (occupancy id ``i``
    is line ``i``, from 1); ``occupancy_mask (Z, Y, X)``: instance ids, 0 = background. As the official
    evaluation script: the mask is dilated once (a 6-neighbour grey dilation, as ``skimage.morphology.dilation``);
    each pick is rounded to a voxel and clamped into the volume; the id there says which particle it hit.
    TP = unique particles hit; precision = TP / all picks (second picks on a particle and picks on skipped
    particles count against it); recall = TP / particles; ``total`` holds TP, FP = picks - TP and
    FN = particles - TP, so that its precision and recall are the script's (the script's own "FP" line, picks on
    background, is ``extra["picks_on_background"]``). Particles of the ``skip`` classes and the picks on them leave the counts, but the
    script subtracts only 4V94 from the recall denominator (skipped vesicles still count there):
    ``recall_counts_skipped_vesicles=False`` subtracts them too. ``per_class`` holds, per true class, the
    particles found (TP), the found ones whose first pick names another class (FP of the classification), and
    the ones never hit (FN); ``extra["confusion"]`` the class confusion counts.
    """
    if picks.unit != "voxel":
        raise DataError("shrec_scores: picks must be in voxels of the tomogram (convert with .to_voxels())")
    occupancy = np.asarray(occupancy_mask)
    if occupancy.ndim != 3:
        raise DataError(f"shrec_scores: occupancy_mask must be a (Z, Y, X) volume, got shape {occupancy.shape}")
    if dilate:
        from scipy.ndimage import generate_binary_structure, grey_dilation

        occupancy = grey_dilation(occupancy, footprint=generate_binary_structure(3, 1))
    truth_names = ["background"] + [p.class_name for p in truth_particles]
    if occupancy.size and occupancy.max() >= len(truth_names):
        raise DataError(f"shrec_scores: the occupancy mask holds id {int(occupancy.max())} but the particle list "
                        f"has {len(truth_names) - 1} particles; use the list that belongs to this mask")
    voxels = np.clip(np.rint(picks.xyz).astype(np.int64), 0, np.array(occupancy.shape[::-1]) - 1)  # (P, 3) x y z
    hit_ids = occupancy[voxels[:, 2], voxels[:, 1], voxels[:, 0]].astype(np.int64)  # (P,)
    skipped = {i for i, name in enumerate(truth_names) if i and name in skip}
    first_pick = {}
    for pick_index, particle in enumerate(hit_ids):
        if particle and particle not in skipped:
            first_pick.setdefault(int(particle), pick_index)
    n_picks = len(picks)
    fp = int((hit_ids == 0).sum())  # what the script reports as FP: picks on background
    counted = [i for i in range(1, len(truth_names)) if i not in skipped]
    tp = len(first_pick)
    denominator = len(truth_names) - 1 - sum(1 for i in skipped if truth_names[i] == "4V94")
    if not recall_counts_skipped_vesicles:
        denominator = len(counted)
    precision = tp / n_picks if n_picks else 0.0
    recall = tp / denominator if denominator else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    per_class, confusion = {}, {}
    for i in counted:
        name = truth_names[i]
        found = i in first_pick
        predicted = str(picks.names[first_pick[i]]) if found else "background"
        confusion[(name, predicted)] = confusion.get((name, predicted), 0) + 1
        c = per_class.get(name, Counts(0, 0, 0))
        per_class[name] = c + Counts(int(found), int(found and predicted.lower() != name.lower()), int(not found))
    hits_per_particle = np.bincount(hit_ids, minlength=len(truth_names))  # (particles + 1,)
    extra = {"precision": precision, "recall": recall, "f1": f1, "picks": n_picks, "particles": denominator,
             "picks_on_background": fp, "particles_hit_more_than_once": int(sum(hits_per_particle[i] > 1 for i in counted)),
             "confusion": {f"{t} -> {p}": n for (t, p), n in sorted(confusion.items())}}
    total = Counts(tp, n_picks - tp, denominator - tp)  # so that total.precision / .recall are the script's
    return PickingScores("shrec", dict(sorted(per_class.items())), total, f1, extra)


def _same_unit(picks: Picks, truth: Picks) -> None:
    if picks.unit != truth.unit:
        raise DataError(f"picks are in {picks.unit}s but the truth in {truth.unit}s; convert one of them "
                        f"(to_voxels / to_angstrom) so the radius means the same for both")
    if picks.unit == "voxel" and picks.voxel_size_angstrom and truth.voxel_size_angstrom and not math.isclose(
            picks.voxel_size_angstrom, truth.voxel_size_angstrom, rel_tol=1e-3):
        raise DataError(f"picks use {picks.voxel_size_angstrom} A voxels, the truth {truth.voxel_size_angstrom} A; "
                        f"convert both to one voxel size or to Angstrom")
