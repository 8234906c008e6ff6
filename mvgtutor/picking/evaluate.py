"""Picking on the course's simulated tomograms: true picks, radii per class, and the three scores at once."""

from __future__ import annotations

import numpy as np

from mvgtutor.data.classes import PROTEIN_CLASSES
from mvgtutor.picking.picks import ANGSTROM_PER_NM, Picks
from mvgtutor.picking.scores import czii_score, paper_scores, shrec_scores

PROTEIN_NAMES = tuple(c.name for c in PROTEIN_CLASSES)


def protein_radii_nm() -> dict[str, float]:
    """``{protein name: radius in nm}``, half the equivalent-sphere diameter of ``CLASSES``."""
    return {c.name: c.diameter_nm / 2 for c in PROTEIN_CLASSES}


def protein_radii_voxels(voxel_size_nm: float = 1.0) -> dict[str, float]:
    """``{protein name: radius in voxels of voxel_size_nm}``."""
    return {name: r / voxel_size_nm for name, r in protein_radii_nm().items()}


def protein_radii_angstrom() -> dict[str, float]:
    """``{protein name: radius in Angstrom}``."""
    return {name: r * ANGSTROM_PER_NM for name, r in protein_radii_nm().items()}


def only_proteins(picks: Picks) -> Picks:
    """The picks of the 13 protein classes (vesicles, fiducials and other names dropped)."""
    return picks.select(np.isin(picks.names, PROTEIN_NAMES))


def score_three_ways(picks: Picks, tomogram) -> dict:
    """Score voxel ``picks`` of one SHREC-layout ``tomogram`` (``read_shrec_tomogram(..., with_extras=True)``)
    with the paper's rule, the CZII rule and SHREC 2021's. The paper and CZII scores cover the 13 proteins,
    with the radius of each class's equivalent sphere (CZII: weight 1 for every protein, our choice: the
    challenge's weights are for its own six particle types); SHREC's covers every class but its skipped ones.
    Returns ``{"paper": PickingScores, "czii": ..., "shrec": ...}``.
    """
    size_a = tomogram.voxel_size_nm * ANGSTROM_PER_NM
    truth = Picks.from_particles(tomogram.particles, tomogram=tomogram.name, voxel_size_nm=tomogram.voxel_size_nm)
    picks = Picks(picks.xyz, picks.names, np.array([tomogram.name] * len(picks), dtype=object), picks.scores,
                  picks.unit, picks.voxel_size_angstrom or size_a)
    proteins, true_proteins = only_proteins(picks), only_proteins(truth)
    return {
        "paper": paper_scores(proteins, true_proteins, protein_radii_voxels(tomogram.voxel_size_nm)),
        "czii": czii_score(proteins.to_angstrom(), true_proteins.to_angstrom(), radii_angstrom=protein_radii_angstrom(),
                           weights={name: 1.0 for name in PROTEIN_NAMES}),
        "shrec": shrec_scores(picks, tomogram.particles, tomogram.occupancy_mask),
    }


def summary_rows(results: dict[str, dict]) -> list[dict]:
    """One row per model: ``{model: {"paper": ..., "czii": ..., "shrec": ...}}`` -> precision / recall / F1
    (paper, summed over classes), CZII F-beta (beta 4) and SHREC's localisation P / R / F1."""
    rows = []
    for model, scores in results.items():
        paper, czii, shrec = scores["paper"].total, scores["czii"], scores["shrec"].extra
        rows.append({"model": model, "paper P": f"{paper.precision:.3f}", "paper R": f"{paper.recall:.3f}",
                     "paper F1": f"{paper.f1:.3f}", "CZII F4": f"{czii.headline:.3f}",
                     "SHREC P": f"{shrec['precision']:.3f}", "SHREC R": f"{shrec['recall']:.3f}",
                     "SHREC F1": f"{shrec['f1']:.3f}"})
    return rows


def pick_hits(picks: Picks, truth: Picks, radius_by_class: dict[str, float], rule: str = "one_to_one") -> np.ndarray:
    """``(P,)`` bool: whether each pick is a true positive under the paper's rule (per tomogram and class;
    picks of classes without a radius are misses). ``picks``, ``truth`` and the radii share one unit."""
    from mvgtutor.picking.matching import match_points

    hits = np.zeros(len(picks), dtype=bool)
    for tomogram in set(picks.tomograms):
        for name in set(picks.names) & set(radius_by_class):
            mine = np.flatnonzero((picks.tomograms == tomogram) & (picks.names == name))
            true = truth.of_tomogram(tomogram).of_class(name)
            m = match_points(picks.xyz[mine], true.xyz, radius_by_class[name], rule=rule, strict=True)
            hits[mine[m.pick_truth >= 0]] = True
    return hits
