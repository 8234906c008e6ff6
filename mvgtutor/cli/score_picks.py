"""``python -m mvgtutor score-picks``: score picks against the truth (the paper's P/R/F1, SHREC 2021, CZII F-beta)."""

from __future__ import annotations

import argparse
import json

METRICS = ("paper", "shrec", "czii")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``score-picks``."""
    parser.add_argument("--pred", required=True, help="picks: .csv (CZII submission or a CSV with x, y, z), .txt "
                        "(SHREC particle list), .star, a copick picks .json or a copick project folder")
    parser.add_argument("--truth", required=True, help="true particles, in any of the --pred formats (e.g. a "
                        "tomogram's particle_locations.txt)")
    parser.add_argument("--metric", choices=METRICS, default="paper", help="paper: P/R/F1 per class (hit within "
                        "the particle radius: SHREC classes' sphere radii, else the CZII scorer's); shrec: SHREC 2021's rule (needs --occupancy); czii: the CZII "
                        "challenge's F-beta, beta 4, Angstrom (default paper)")
    parser.add_argument("--occupancy", help="occupancy_mask.mrc of the tomogram (for --metric shrec; default: "
                        "beside --truth)")
    parser.add_argument("--unit", choices=("voxel", "angstrom"), help="unit of CSV / text files that do not "
                        "state one (SHREC lists are voxels, CZII CSVs and copick Angstrom)")
    parser.add_argument("--voxel-size", type=float, help="voxel size in Angstrom, to convert between voxels and "
                        "Angstrom (default: from --occupancy's header, else 10 A for SHREC-style data)")
    parser.add_argument("--json", action="store_true", help="print the scores as JSON (default: a table)")


def run(args: argparse.Namespace) -> int:
    """Read both sides in their own units, convert to the metric's, score and print."""
    from pathlib import Path

    import numpy as np

    from mvgtutor.data.formats import mrc_voxel_size_nm, read_mrc, read_particle_locations
    from mvgtutor.errors import DataError
    from mvgtutor.picking import CZII_RADII_ANGSTROM, czii_score, paper_scores, read_picks, shrec_scores
    from mvgtutor.picking.evaluate import only_proteins, protein_radii_angstrom, protein_radii_nm

    occupancy_path = Path(args.occupancy) if args.occupancy else Path(args.truth).parent / "occupancy_mask.mrc"
    voxel_size = args.voxel_size
    if voxel_size is None and occupancy_path.is_file():
        voxel_size = mrc_voxel_size_nm(occupancy_path) * 10.0
    pred = read_picks(args.pred, unit=args.unit, voxel_size_angstrom=voxel_size)
    truth = read_picks(args.truth, unit=args.unit, voxel_size_angstrom=voxel_size)
    size = voxel_size or pred.voxel_size_angstrom or truth.voxel_size_angstrom or 10.0
    if args.metric == "czii":
        pred, truth = pred.to_angstrom(size), truth.to_angstrom(size)
        if set(truth.names) <= set(protein_radii_nm()):  # SHREC-class data: our radii, weight 1 each
            scores = czii_score(only_proteins(pred), truth, radii_angstrom=protein_radii_angstrom(),
                                weights={n: 1.0 for n in protein_radii_nm()})
        else:
            scores = czii_score(pred, truth)
    elif args.metric == "paper":
        pred, truth = pred.to_angstrom(size), truth.to_angstrom(size)
        tomograms = sorted(set(truth.tomograms))
        if len(tomograms) == 1 and len(set(pred.tomograms)) == 1:  # one tomogram each: names need not agree
            pred = pred.with_tomogram(tomograms[0])
        shrec_like = set(truth.names) <= set(protein_radii_nm()) | {"vesicle", "fiducial"}
        scores = paper_scores(pred, truth, protein_radii_angstrom() if shrec_like else CZII_RADII_ANGSTROM)
    else:
        if not occupancy_path.is_file():
            raise DataError(f"{occupancy_path}: --metric shrec needs the tomogram's occupancy mask; pass --occupancy")
        occupancy = read_mrc(occupancy_path, expected_voxel_size_nm=size / 10.0, mmap=False)
        particles = read_particle_locations(args.truth)
        scores = shrec_scores(pred.to_voxels(size), particles, occupancy)
    if args.json:
        print(json.dumps(scores.to_json(), indent=1, default=lambda v: float(v) if np.isscalar(v) else str(v)))
    else:
        print(f"metric {args.metric}: headline {scores.headline:.4f}")
        for row in scores.table(beta=4.0 if args.metric == "czii" else None):
            print("  " + "  ".join(f"{k} {v}" for k, v in row.items()))
    return 0
