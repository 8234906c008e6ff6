"""Segmentation metrics from one integer confusion matrix (Sec. 5.1.3: mIoU and Dice).

Everything is derived from a single ``(num_classes, num_classes)`` int64 matrix ``M`` where ``M[t, p]`` counts
the voxels of true class ``t`` predicted as ``p``. Counts are exact for any volume (int64, accumulated in chunks),
and IoU and Dice per class follow from the row sums, column sums and diagonal:

    IoU_c  = TP / (TP + FP + FN)        Dice_c = 2 TP / (2 TP + FP + FN)

Means (mIoU, mean Dice) run over the foreground classes 1..15: background fills ~90% of a tomogram, so including
it would inflate both means without saying anything about particles. A class absent from both the truth and the
prediction has no defined score (NaN) and is left out of the means.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mvgtutor.data.classes import CLASS_NAMES, FOREGROUND_LABELS
from mvgtutor.errors import DataError

_CHUNK_VOXELS = 1 << 24  # voxels per bincount call: bounds the int64 index buffer to 128 MiB


# unsigned integer dtypes that torch cannot reduce (min/max): widened to the next signed dtype that holds them
_WIDER = {np.dtype(np.uint16): np.int32, np.dtype(np.uint32): np.int64, np.dtype(np.uint64): np.int64}


def _as_labels(volume, name: str) -> torch.Tensor:
    if not isinstance(volume, torch.Tensor):
        volume = np.asarray(volume)
        if volume.dtype in _WIDER:  # mrcfile stores uint8 as uint16 (mode 6): ordinary label files
            if volume.dtype == np.uint64 and volume.size and volume.max() > np.iinfo(np.int64).max:
                raise DataError(f"{name} holds labels beyond int64: pass class labels 0..C-1")
            volume = volume.astype(_WIDER[volume.dtype])
    tensor = torch.as_tensor(volume)
    if tensor.is_floating_point() or tensor.is_complex() or tensor.dtype == torch.bool:
        raise DataError(f"{name} has dtype {tensor.dtype}: pass integer class labels (argmax the logits first)")
    return tensor.reshape(-1)


def confusion_matrix(prediction, truth, num_classes: int = 16) -> torch.Tensor:
    """Exact confusion counts: ``M[t, p]`` = number of voxels with truth ``t`` predicted ``p``.

    ``prediction`` and ``truth`` are integer label volumes of the same shape (any shape, numpy or torch).
    Returns a ``(num_classes, num_classes)`` int64 tensor on the CPU.
    """
    pred = _as_labels(prediction, "prediction")
    true = _as_labels(truth, "truth")
    if pred.numel() != true.numel():
        raise DataError(f"prediction has {pred.numel()} voxels but truth has {true.numel()}: pass volumes "
                        f"of the same shape")
    for name, labels in (("prediction", pred), ("truth", true)):
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
            raise DataError(f"{name} holds labels outside 0..{num_classes - 1} "
                            f"(found {int(labels.min())}..{int(labels.max())}): check the files or num_classes")
    matrix = torch.zeros(num_classes * num_classes, dtype=torch.int64)
    for start in range(0, pred.numel(), _CHUNK_VOXELS):
        t = true[start:start + _CHUNK_VOXELS].to("cpu", torch.int64)
        p = pred[start:start + _CHUNK_VOXELS].to("cpu", torch.int64)
        matrix += torch.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return matrix.view(num_classes, num_classes)  # (true, predicted)


@dataclass(frozen=True)
class SegmentationScores:
    """Per-class IoU and Dice (NaN where a class is in neither volume) and their foreground means."""

    matrix: np.ndarray  # (C, C) int64 confusion counts, rows = truth, columns = prediction
    iou: np.ndarray  # (C,) float64
    dice: np.ndarray  # (C,) float64
    miou: float  # mean IoU over the foreground classes that occur
    mean_dice: float  # mean Dice over the foreground classes that occur

    def table(self, names: tuple[str, ...] = CLASS_NAMES) -> list[dict]:
        """One row per class: label, name, voxels in the truth, voxels predicted, IoU, Dice."""
        truth_voxels = self.matrix.sum(axis=1)
        predicted_voxels = self.matrix.sum(axis=0)
        return [dict(label=c, name=names[c], truth_voxels=int(truth_voxels[c]),
                     predicted_voxels=int(predicted_voxels[c]), iou=float(self.iou[c]), dice=float(self.dice[c]))
                for c in range(len(self.iou))]

    def to_json(self, names: tuple[str, ...] = CLASS_NAMES) -> dict:
        """A JSON-ready dict (NaN written as None): per-class rows, mIoU, mean Dice, the confusion matrix."""
        def clean(value: float):
            return None if np.isnan(value) else value
        rows = [{**row, "iou": clean(row["iou"]), "dice": clean(row["dice"])} for row in self.table(names)]
        return {"classes": rows, "miou": clean(self.miou), "mean_dice": clean(self.mean_dice),
                "foreground_labels": list(FOREGROUND_LABELS), "confusion_matrix": self.matrix.tolist()}


def scores_from_matrix(matrix, foreground: tuple[int, ...] = FOREGROUND_LABELS) -> SegmentationScores:
    """IoU, Dice per class and their means over ``foreground`` from a ``(C, C)`` confusion matrix."""
    counts = np.asarray(matrix, dtype=np.int64)
    true_positive = np.diag(counts).astype(np.float64)
    false_positive = counts.sum(axis=0) - true_positive  # predicted c, truth another class
    false_negative = counts.sum(axis=1) - true_positive  # truth c, predicted another class
    union = true_positive + false_positive + false_negative
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, true_positive / union, np.nan)
        dice = np.where(union > 0, 2 * true_positive / (union + true_positive), np.nan)
    present = [c for c in foreground if c < len(iou) and not np.isnan(iou[c])]
    miou = float(np.mean(iou[present])) if present else float("nan")
    mean_dice = float(np.mean(dice[present])) if present else float("nan")
    return SegmentationScores(matrix=counts, iou=iou, dice=dice, miou=miou, mean_dice=mean_dice)


def segmentation_scores(prediction, truth, num_classes: int = 16) -> SegmentationScores:
    """Scores of an integer label ``prediction`` against ``truth`` (same shape): see ``scores_from_matrix``."""
    return scores_from_matrix(confusion_matrix(prediction, truth, num_classes).numpy())


def format_table(scores: SegmentationScores, names: tuple[str, ...] = CLASS_NAMES) -> str:
    """A plain-text table of per-class IoU and Dice followed by the foreground means."""
    lines = [f"{'label':>5}  {'class':<10} {'truth voxels':>13} {'IoU':>7} {'Dice':>7}"]
    for row in scores.table(names):
        lines.append(f"{row['label']:>5}  {row['name']:<10} {row['truth_voxels']:>13,} "
                     f"{row['iou']:>7.3f} {row['dice']:>7.3f}")
    lines.append(f"mIoU (foreground) {scores.miou:.3f} · mean Dice (foreground) {scores.mean_dice:.3f}")
    return "\n".join(lines)
