"""``python -m mvgtutor evaluate``: segment one whole tomogram with a trained run (overlap-tile inference)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``evaluate``."""
    parser.add_argument("--run", required=True, help="run folder written by `python -m mvgtutor train --out`")
    parser.add_argument("--data", required=True, help="dataset folder holding the tomogram")
    parser.add_argument("--tomogram", required=True, help="tomogram folder name inside --data, e.g. model_9 "
                        "(the held-out one)")
    parser.add_argument("--out", required=True, help="predicted label volume to write (.mrc, labels 0-15); an "
                        "existing file is refused unless --overwrite")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file (never one of "
                        "the command's inputs)")
    parser.add_argument("--overlap", type=float, default=0.5, help="fraction by which neighbouring 32^3 tiles "
                        "overlap (default 0.5, as in the paper)")
    parser.add_argument("--window", choices=("gaussian", "hann", "constant"), default="gaussian",
                        help="weighting of each tile's probabilities when blending overlaps (default gaussian)")
    parser.add_argument("--batch-size", type=int, default=32, help="tiles per forward pass (default 32)")
    parser.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--json", action="store_true", help="when the tomogram has a class_mask.mrc, print its "
                        "scores as JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    """Predict the tomogram, write the labels, and score them when the truth is present."""
    import sys

    from mvgtutor.cli import checks
    from mvgtutor.data.formats import read_shrec_tomogram, write_mrc
    from mvgtutor.evaluate import format_table, predict_tomogram, segmentation_scores
    from mvgtutor.train.runs import load_run

    checks.positive_int("--batch-size", args.batch_size)
    checks.fraction("--overlap", args.overlap)
    device = checks.torch_device("--device", args.device)
    folder = Path(args.data) / args.tomogram
    inputs = [*(p for p in (folder.iterdir() if folder.is_dir() else ()) if p.is_file()),
              *(p for p in (Path(args.run).iterdir() if Path(args.run).is_dir() else ()) if p.is_file())]
    checks.output_file("--out", Path(args.out), overwrite=args.overwrite, inputs=inputs)
    trained = load_run(args.run, device)
    if not trained.finished:
        print(f"warning: run {args.run} is unfinished ({len(trained.history)}/{trained.train_config.epochs} "
              f"epochs): using its latest checkpoint; train again with the same command to finish it",
              file=sys.stderr)
    tomogram = read_shrec_tomogram(Path(args.data) / args.tomogram,
                                   expected_voxel_size_nm=trained.data_config.voxel_size_nm, with_extras=False)
    labels = predict_tomogram(trained.model, tomogram.reconstruction, tile=trained.model_config.input_size,
                              overlap=args.overlap, window=args.window, batch_size=args.batch_size,
                              device=device)  # (Z, Y, X) uint8
    write_mrc(args.out, labels.numpy().astype("int8"), tomogram.voxel_size_nm)
    scores = segmentation_scores(labels, tomogram.class_mask)
    if args.json:
        print(json.dumps(scores.to_json(), indent=1))
    else:
        print(f"wrote {args.out}")
        print(format_table(scores))
    return 0
