"""Where tiled inference goes wrong: agreement with the truth as a function of the distance to a tile border.

Without overlap, a voxel near a tile's face is predicted from a patch that sees little of its surroundings, so
errors pile up along the tile grid ("seams"). ``agreement_by_border_distance`` measures that: for every voxel, its
distance to the nearest face of the ``tile^3`` grid, and the fraction of foreground voxels labelled correctly at
each distance.
"""

from __future__ import annotations

import numpy as np
import torch


def border_distance(shape: tuple[int, int, int], tile: int) -> torch.Tensor:
    """``(D, H, W)`` int64: voxels to the nearest face of the non-overlapping ``tile^3`` grid (0 = on a face)."""
    per_axis = []
    for size in shape:
        offset = torch.arange(size) % tile
        per_axis.append(torch.minimum(offset, tile - 1 - offset))  # (size,)
    dz, dy, dx = per_axis
    return torch.minimum(torch.minimum(dz[:, None, None], dy[None, :, None]), dx[None, None, :])


def agreement_by_border_distance(prediction, truth, tile: int = 32) -> np.ndarray:
    """Fraction of correct labels among voxels where the truth or the prediction is foreground, per distance to
    the nearest tile face: ``(tile // 2,)`` float64 (NaN where no such voxel exists)."""
    prediction = torch.as_tensor(np.asarray(prediction)).long()
    truth = torch.as_tensor(np.asarray(truth)).long()
    distance = border_distance(tuple(truth.shape), tile)
    relevant = (truth > 0) | (prediction > 0)
    correct = (prediction == truth) & relevant
    bins = tile // 2
    total = torch.bincount(distance[relevant], minlength=bins).double()
    hits = torch.bincount(distance[correct], minlength=bins).double()
    with np.errstate(invalid="ignore"):
        return (hits / total).numpy()
