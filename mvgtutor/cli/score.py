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
    import math
    import sys

    from mvgtutor.data.classes import NUM_CLASSES
    from mvgtutor.data.formats import VOXEL_SIZE_RTOL, mrc_voxel_size_nm_or_none, read_mrc
    from mvgtutor.errors import ConfigError, DataError
    from mvgtutor.evaluate import format_table, segmentation_scores

    if not 2 <= args.num_classes <= NUM_CLASSES:
        raise ConfigError(f"--num-classes {args.num_classes}: must lie in 2..{NUM_CLASSES} (the course names "
                          f"{NUM_CLASSES} classes)")
    truth_size, pred_size = mrc_voxel_size_nm_or_none(args.truth), mrc_voxel_size_nm_or_none(args.pred)
    if truth_size is not None and pred_size is not None:
        if not math.isclose(truth_size, pred_size, rel_tol=VOXEL_SIZE_RTOL):
            raise DataError(f"{args.pred}: voxel size {pred_size:g} nm, but {args.truth} has {truth_size:g} nm; "
                            f"score a prediction made on the same grid")
    else:
        missing = " and ".join(p for p, size in ((args.pred, pred_size), (args.truth, truth_size)) if size is None)
        print(f"warning: {missing}: no voxel size in the header; the voxel sizes were not compared",
              file=sys.stderr)
    truth = read_mrc(args.truth)
    prediction = read_mrc(args.pred)
    for path, volume in ((args.pred, prediction), (args.truth, truth)):
        if volume.dtype.kind not in "iu":
            raise DataError(f"{path}: dtype {volume.dtype}; a label volume holds integers (MRC mode 0, 1 or 6)")
    if prediction.shape != truth.shape:
        raise DataError(f"{args.pred} has shape {prediction.shape} but {args.truth} has {truth.shape}: "
                        f"score a prediction of the same tomogram")
    scores = segmentation_scores(prediction, truth, args.num_classes)
    print(json.dumps(scores.to_json(), indent=1) if args.json else format_table(scores))
    return 0
