"""One matching routine for picks and true particle centres, with the rule as a parameter.

``match_points(picks_xyz, truth_xyz, radius, rule=...)`` finds every (truth, pick) pair closer than the radius
with a KD-tree ball query (``scipy.spatial.cKDTree``), then applies a rule:

* ``"one_to_one"``: each truth is hit by at most one pick and each pick hits at most one truth; pairs are taken
  closest first (greedy). A second pick on an already found particle is a false positive. This is our reading
  of the paper's rule (Sec. 5.2.2: "a particle is considered correctly detected (true positive) if the Euclidean
  distance between the predicted and known centers is less than the particle radius"), which does not say what
  happens to a second pick on the same particle.
* ``"czii"``: the CZII challenge's arithmetic: TP = the number of distinct true particles that have a pick
  within the radius, FP = picks - TP, FN = truths - TP (extra picks on a found particle are FPs as well; a
  pick between two close particles may find both).
* ``"any"``: a pick is right if it lies near any truth, a truth is found if any pick lies near it (precision and
  recall then count different things; shown for comparison, not a challenge's rule).

Coordinates are ``(N, 3)`` in any unit, the same for picks, truths and radius (voxels or Angstrom: the caller
says which). ``strict=True`` counts a distance equal to the radius as a miss ("less than the radius").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mvgtutor.errors import DataError, check_choice

RULES = ("one_to_one", "czii", "any")


@dataclass(frozen=True)
class Match:
    """The outcome of one matching. ``pick_truth (P,)``: the truth each pick was assigned to (-1: none);
    ``truth_found (T,)``: whether each truth counts as found; ``tp``, ``fp``, ``fn``: the rule's counts."""

    pick_truth: np.ndarray
    truth_found: np.ndarray
    tp: int
    fp: int
    fn: int


def candidate_pairs(picks_xyz, truth_xyz, radius, strict: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (truth, pick) pair within ``radius`` (a number or one per truth, same unit as the points).

    Returns ``truth_index (K,)``, ``pick_index (K,)`` and ``distance (K,)``, sorted by distance, then truth,
    then pick (a deterministic order).
    """
    from scipy.spatial import cKDTree

    picks_xyz, truth_xyz = _points(picks_xyz, "picks_xyz"), _points(truth_xyz, "truth_xyz")
    radii = np.broadcast_to(np.asarray(radius, dtype=np.float64), (len(truth_xyz),))
    if np.any(~np.isfinite(radii)) or np.any(radii < 0):
        raise DataError(f"radius must be a non-negative number (or one per truth), got {radius!r}")
    if len(picks_xyz) == 0 or len(truth_xyz) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0)
    neighbours = cKDTree(picks_xyz).query_ball_point(truth_xyz, r=radii)  # list per truth
    truth_index = np.repeat(np.arange(len(truth_xyz)), [len(n) for n in neighbours]).astype(np.int64)
    pick_index = np.fromiter((j for n in neighbours for j in n), dtype=np.int64, count=len(truth_index))
    distance = np.linalg.norm(picks_xyz[pick_index] - truth_xyz[truth_index], axis=1) if len(truth_index) else np.zeros(0)
    keep = distance < radii[truth_index] if strict else distance <= radii[truth_index]
    truth_index, pick_index, distance = truth_index[keep], pick_index[keep], distance[keep]
    order = np.lexsort((pick_index, truth_index, distance))
    return truth_index[order], pick_index[order], distance[order]


def match_points(picks_xyz, truth_xyz, radius, rule: str = "one_to_one", strict: bool = False) -> Match:
    """Match picks ``(P, 3)`` to true centres ``(T, 3)`` within ``radius`` under ``rule`` (see the module doc).

    Points and radius share one unit (voxels or Angstrom). Returns a ``Match``.
    """
    check_choice("matching rule", rule, RULES)
    picks_xyz, truth_xyz = _points(picks_xyz, "picks_xyz"), _points(truth_xyz, "truth_xyz")
    n_picks, n_truth = len(picks_xyz), len(truth_xyz)
    truth_index, pick_index, _ = candidate_pairs(picks_xyz, truth_xyz, radius, strict)
    pick_truth = np.full(n_picks, -1, dtype=np.int64)
    truth_found = np.zeros(n_truth, dtype=bool)
    if rule == "one_to_one":
        for t, p in zip(truth_index, pick_index):  # closest pairs first
            if not truth_found[t] and pick_truth[p] < 0:
                truth_found[t] = True
                pick_truth[p] = t
        tp = int(truth_found.sum())
        return Match(pick_truth, truth_found, tp, n_picks - tp, n_truth - tp)
    truth_found[truth_index] = True
    for t, p in zip(truth_index[::-1], pick_index[::-1]):  # each pick: its closest truth (last write wins)
        pick_truth[p] = t
    if rule == "czii":
        tp = int(truth_found.sum())
        return Match(pick_truth, truth_found, tp, n_picks - tp, n_truth - tp)
    # "any": precision counts picks near a truth, recall counts truths near a pick
    return Match(pick_truth, truth_found, int((pick_truth >= 0).sum()), int((pick_truth < 0).sum()),
                 int((~truth_found).sum()))


def _points(xyz, name: str) -> np.ndarray:
    points = np.asarray(xyz, dtype=np.float64)
    if points.size == 0:
        return np.zeros((0, 3))
    if points.ndim != 2 or points.shape[1] != 3:
        raise DataError(f"{name} must have shape (N, 3) as x, y, z; got {points.shape}")
    if not np.all(np.isfinite(points)):
        raise DataError(f"{name} holds NaN or inf coordinates")
    return points
