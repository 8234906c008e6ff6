"""``python -m mvgtutor pick``: particle centres from a predicted label volume (connected components)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``pick``."""
    parser.add_argument("--seg", required=True, help="predicted labels (.mrc, integers 0-15), e.g. from "
                        "`python -m mvgtutor evaluate --out`")
    parser.add_argument("--out", required=True, help="picks to write: .csv (tomogram, particle_type, x, y, z, "
                        "score in voxels), .txt (a SHREC particle list, voxels) or .star (one class per file)")
    parser.add_argument("--czii", action="store_true", help="write the CZII submission layout (id, experiment, "
                        "particle_type, x, y, z in Angstrom) instead; needs a .csv --out")
    parser.add_argument("--min-size-fraction", type=float, default=0.1, help="smallest component kept, as a "
                        "fraction of the class's equivalent-sphere volume (default 0.1)")
    parser.add_argument("--min-size", type=int, help="one smallest component size in voxels for every class "
                        "(overrides --min-size-fraction)")
    parser.add_argument("--tomogram", help="tomogram (experiment) name written with each pick (default: the "
                        "file name of --seg)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file (never --seg)")


def run(args: argparse.Namespace) -> int:
    """Read the labels (their voxel size from the header), pick, write, and say how many per class."""
    from pathlib import Path

    from mvgtutor.cli import checks
    from mvgtutor.data.formats import mrc_voxel_size_nm, read_mrc
    from mvgtutor.errors import ConfigError
    from mvgtutor.picking import min_sizes_from_diameters, picks_from_labels, write_picks

    checks.positive_float("--min-size-fraction", args.min_size_fraction)
    checks.positive_int("--min-size", args.min_size)
    checks.output_file("--out", Path(args.out), overwrite=args.overwrite, inputs=(args.seg,))
    voxel_size_nm = mrc_voxel_size_nm(args.seg)
    labels = read_mrc(args.seg, expected_voxel_size_nm=voxel_size_nm, mmap=False)
    if args.czii and Path(args.out).suffix.lower() != ".csv":
        raise ConfigError(f"--czii writes a CSV: give --out a .csv name, not {args.out}")
    min_size = args.min_size if args.min_size is not None else min_sizes_from_diameters(
        voxel_size_nm, fraction=args.min_size_fraction)
    picks = picks_from_labels(labels, min_size=min_size, voxel_size_nm=voxel_size_nm,
                              tomogram=args.tomogram or Path(args.seg).stem)
    write_picks(args.out, picks, czii=args.czii)
    counts = {name: int((picks.names == name).sum()) for name in picks.class_names()}
    print(f"wrote {len(picks)} picks to {args.out} (voxel size {voxel_size_nm:g} nm): "
          + ", ".join(f"{n} {c}" for n, c in counts.items()))
    return 0
