"""One patch of a tomogram and everything the model makes of it: the explorer's data (chapter 12)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from mvgtutor.errors import DataError
from mvgtutor.interpret.heatmaps import activation_heatmap
from mvgtutor.model.views import to_view


@dataclass
class PatchInsight:
    """A patch at ``corner = (z, y, x)`` of a tomogram: the image ``(S, S, S)``, each view of it in the view's
    axis order ``{key: (S, S, S)}`` (depth first, image plane last), each view's and the fused prediction on the
    canonical grid ``(S, S, S)`` (labels), the activation heatmap ``(S, S, S)`` in [0, 1] and the true labels
    ``(S, S, S)`` (or None)."""

    corner: tuple[int, int, int]
    image: torch.Tensor
    views: dict[str, torch.Tensor]
    view_predictions: dict[str, torch.Tensor]
    prediction: torch.Tensor
    heatmap: torch.Tensor
    labels: torch.Tensor | None


def patch_corner(centre: Sequence[int], shape: Sequence[int], size: int) -> tuple[int, int, int]:
    """The ``(z, y, x)`` corner of the ``size^3`` patch centred on ``centre``, moved inside a volume of ``shape``."""
    if len(centre) != 3 or len(shape) != 3 or any(s < size for s in shape):
        raise DataError(f"a {size}^3 patch around {tuple(centre)} does not fit a volume of shape {tuple(shape)}: "
                        f"pass a (z, y, x) centre in a (Z, Y, X) volume of at least {size} voxels per side")
    return tuple(int(min(max(int(c) - size // 2, 0), s - size)) for c, s in zip(centre, shape))


def _as_tensor(volume) -> torch.Tensor:
    return volume if torch.is_tensor(volume) else torch.from_numpy(np.asarray(volume))


@torch.no_grad()
def inspect_patch(model: nn.Module, volume, centre: Sequence[int], labels=None) -> PatchInsight:
    """Cut the patch of ``model.config.input_size`` around ``centre = (z, y, x)`` from ``volume (Z, Y, X)`` (already
    normalised as in training, ``mvgtutor.data.patches.normalize_tomogram``) and run ``model`` on it."""
    volume = _as_tensor(volume)
    if volume.ndim != 3:
        raise DataError(f"volume must be (Z, Y, X), got shape {tuple(volume.shape)}")
    size = model.config.input_size
    z, y, x = patch_corner(centre, volume.shape, size)
    image = volume[z:z + size, y:y + size, x:x + size].float()  # (S, S, S)
    device = next(model.parameters()).device
    batch = image[None, None].to(device)  # (1, 1, S, S, S)
    was_training = model.training
    model.eval()
    outputs = model(batch)
    model.train(was_training)
    truth = None if labels is None else _as_tensor(labels)[z:z + size, y:y + size, x:x + size].long()
    return PatchInsight(
        corner=(z, y, x), image=image,
        views={key: to_view(image, view) for key, view in zip(model.view_keys, model.views)},
        view_predictions={key: logits[0].argmax(0).cpu() for key, logits in outputs["view_logits"].items()},
        prediction=outputs["logits"][0].argmax(0).cpu(),
        heatmap=activation_heatmap(model, batch)[0].cpu(), labels=truth)


def nearest_foreground(labels, point: Sequence[int] | None = None) -> tuple[int, int, int]:
    """The labelled (non-background) voxel of ``labels (Z, Y, X)`` closest to ``point = (z, y, x)`` (default: the
    centre), by city-block distance; ``DataError`` when every voxel is background."""
    labels = _as_tensor(labels)
    foreground = (labels > 0).nonzero()  # (n, 3) as (z, y, x)
    if len(foreground) == 0:
        raise DataError("no labelled voxel in these labels: choose a patch or tomogram that holds an object")
    target = torch.tensor([s // 2 for s in labels.shape] if point is None else list(point))
    return tuple(int(v) for v in foreground[(foreground - target).abs().sum(1).argmin()])
