"""Measurements on a simulated tomogram: how visible each class is.

``class_contrast`` is the number the simulator's realism is tuned against: for each label, the mean of the
reconstruction inside that label minus the background's mean, in units of the background's standard
deviation. Proteins come out negative (dark, as in real data); the larger its magnitude, the easier the class.
"""

from __future__ import annotations

import torch

from mvgtutor.data.classes import CLASSES
from mvgtutor.errors import ConfigError


def class_contrast(reconstruction: torch.Tensor, class_mask: torch.Tensor,
                   slab: tuple[int, int] | None = None, margin: int = 2) -> dict[str, float]:
    """Per-class contrast ``(mean inside the label - mean of background) / std of background``.

    ``reconstruction`` and ``class_mask`` are ``(Z, Y, X)``; the background is the unlabelled voxels more than
    ``margin`` voxels from any label, within the ice ``slab`` z range ``[z0, z1)`` (the whole volume if None).
    Returns ``{class name: contrast}`` for the labels present.
    """
    from mvgtutor.simulate.scene import dilate

    if reconstruction.shape != class_mask.shape or reconstruction.ndim != 3:
        raise ConfigError(f"reconstruction {tuple(reconstruction.shape)} and class_mask {tuple(class_mask.shape)} "
                          f"must be the same (Z, Y, X) shape")
    volume = reconstruction.double().cpu()
    labels = class_mask.cpu()
    background = ~dilate(labels > 0, margin)
    if slab is not None:
        inside = torch.zeros_like(background)
        inside[slab[0]:slab[1]] = True
        background &= inside
    if not bool(background.any()):
        raise ConfigError("no background voxel left to measure against: lower margin or give a larger volume")
    mean, std = float(volume[background].mean()), float(volume[background].std())
    present = [int(v) for v in torch.unique(labels) if int(v) > 0]
    return {CLASSES[label].name: (float(volume[labels == label].mean()) - mean) / std for label in present}
