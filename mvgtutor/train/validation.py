"""Held-out Dice after every epoch: what a run has learnt so far, class by class.

``train_model(..., validation_set=...)`` calls ``held_out_dice`` at the end of each epoch and stores the result in
the history as ``val_dice`` (one entry per class, ``None`` for a class absent from both truth and prediction). The
model is scored in eval mode on whole held-out patches (no tile blending, so slightly below chapter 8's
overlap-tile figures); nothing here touches the random-number generators, so training is unchanged by it.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mvgtutor.evaluate.metrics import SegmentationScores, confusion_matrix, scores_from_matrix
from mvgtutor.train.precision import autocast


@torch.no_grad()
def patch_scores(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, precision: str = "fp32",
                 batch_size: int = 32) -> SegmentationScores:
    """Scores of ``model`` on whole patches ``images (N, 1, p, p, p)`` with ``labels (N, p, p, p)`` (no blending).

    Batches go to the model's device; the model is scored in eval mode and left in the mode it was in.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    matrix = None
    for start in range(0, images.shape[0], batch_size):
        with autocast(precision, device):
            logits = model(images[start:start + batch_size].to(device))["logits"]  # (b, K, p, p, p)
        counts = confusion_matrix(logits.argmax(1), labels[start:start + batch_size], logits.shape[1])
        matrix = counts if matrix is None else matrix + counts
    model.train(was_training)
    return scores_from_matrix(matrix)


def held_out_dice(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, precision: str = "fp32",
                  batch_size: int = 32) -> list[float | None]:
    """Per-class Dice of ``patch_scores``: ``num_classes`` floats, ``None`` where a class is in neither truth nor
    prediction (JSON-ready, for the training history)."""
    dice = patch_scores(model, images, labels, precision=precision, batch_size=batch_size).dice
    return [None if math.isnan(d) else float(d) for d in dice]
