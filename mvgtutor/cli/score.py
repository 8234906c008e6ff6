"""``python -m mvgtutor score``: per-class IoU and Dice of a predicted label volume against the truth."""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``score``."""
    parser.add_argument("--pred", required=True, help="predicted labels (.mrc, integers 0-15), e.g. from "
                        "`python -m mvgtutor evaluate --out`")
    parser.add_argument("--truth", required=True, help="true labels (.mrc), e.g. a tomogram's class_mask.mrc")
    parser.add_argument("--json", action="store_true", help="print per-class IoU/Dice, mIoU, mean Dice and the "
                        "confusion matrix as JSON (default: a table)")
    parser.add_argument("--num-classes", type=int, default=16, help="number of labels (default 16: "
                        "background, 13 proteins, vesicle, fiducial)")


def run(args: argparse.Namespace) -> int:
    """Read both volumes (the voxel sizes must agree), score them and print the result."""
    from mvgtutor.data.formats import mrc_voxel_size_nm, read_mrc
    from mvgtutor.evaluate import format_table, segmentation_scores

    truth = read_mrc(args.truth)
    prediction = read_mrc(args.pred, expected_voxel_size_nm=mrc_voxel_size_nm(args.truth))
    if prediction.shape != truth.shape:
        from mvgtutor.errors import DataError

        raise DataError(f"{args.pred} has shape {prediction.shape} but {args.truth} has {truth.shape}: "
                        f"score a prediction of the same tomogram")
    scores = segmentation_scores(prediction, truth, args.num_classes)
    print(json.dumps(scores.to_json(), indent=1) if args.json else format_table(scores))
    return 0
