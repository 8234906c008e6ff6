"""Activation heatmaps as in the paper's Figs. 10-11.

Sec. 5.3.3 ("Effectiveness of the graph design"): "we extract the feature map output from the encoder of our
model, compute the voxel-wise activation strength by taking the channel-wise L2 norm, and normalize the resulting
3D heatmap to [0,1]"; for Fig. 11 "the normalized heatmap" is overlaid "onto the corresponding grayscale input
slices" and "mapped back to the input space".

The paper does not say how the three views' feature maps become one heatmap, nor how the token grid (one feature
per 4^3 voxels) is mapped back to voxels, nor whether [0, 1] is per patch. **Our reading**: each view's
last-layer tokens are re-arranged to the canonical token grid, their L2 norms averaged over the views
(``view="mean"``; or one view by its key, e.g. ``view="yz"``), up-sampled trilinearly to the input's voxels, and
min-max normalised per patch. ``normalize=False`` keeps the raw norms (to compare the scale of two models).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mvgtutor.errors import ConfigError
from mvgtutor.model.diversity import canonical_view_features


def normalize_unit(volume: torch.Tensor) -> torch.Tensor:
    """Min-max normalise each sample of ``volume (B, ...)`` to [0, 1] (a constant sample becomes zeros)."""
    flat = volume.flatten(1).float()
    low, high = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values
    return ((flat - low) / (high - low).clamp(min=1e-12)).view(volume.shape)


def token_norms(model: nn.Module, x: torch.Tensor, layer: int = -1) -> dict[str, torch.Tensor]:
    """The channel-wise L2 norm of every view's layer-``layer`` tokens on the canonical token grid:
    ``x (B, 1, S, S, S)`` -> ``{view key: (B, g, g, g)}`` (g = S / token_patch)."""
    grid = model.grid
    return {key: features.norm(dim=-1).view(-1, grid, grid, grid)  # (B, g^3, C) -> (B, g, g, g)
            for key, features in canonical_view_features(model, x, layer).items()}


def activation_heatmap(model: nn.Module, x: torch.Tensor, layer: int = -1, view: str = "mean",
                       normalize: bool = True) -> torch.Tensor:
    """Figs. 10-11: the encoder's activation strength per voxel, ``x (B, 1, S, S, S)`` -> ``(B, S, S, S)``.

    ``view``: ``"mean"`` (the views' norms averaged, our reading) or one view key of the model. With
    ``normalize`` each patch's heatmap is scaled to [0, 1] as in the paper.
    """
    norms = token_norms(model, x, layer)
    if view == "mean":
        coarse = torch.stack(list(norms.values())).mean(0)  # (B, g, g, g)
    elif view in norms:
        coarse = norms[view]
    else:
        raise ConfigError(f"view={view!r}: use 'mean' or one of the model's views {', '.join(norms)}")
    fine = F.interpolate(coarse.unsqueeze(1), size=tuple(x.shape[2:]), mode="trilinear",
                         align_corners=False)[:, 0]  # (B, S, S, S): back to the input's voxels
    return normalize_unit(fine) if normalize else fine


def boundary_mask(labels: torch.Tensor) -> torch.Tensor:
    """Voxels whose label differs from one of their 6 neighbours (both sides of every label change):
    ``labels (..., D, H, W)`` -> bool of the same shape."""
    boundary = torch.zeros(labels.shape, dtype=torch.bool, device=labels.device)
    for dim in (-3, -2, -1):
        change = labels.narrow(dim, 1, labels.shape[dim] - 1) != labels.narrow(dim, 0, labels.shape[dim] - 1)
        boundary.narrow(dim, 1, labels.shape[dim] - 1).logical_or_(change)
        boundary.narrow(dim, 0, labels.shape[dim] - 1).logical_or_(change)
    return boundary


def activation_by_region(heatmap: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """The mean heatmap value on label boundaries, inside objects and in the background away from them:
    ``heatmap (B, S, S, S)``, ``labels (B, S, S, S)`` -> ``{"boundary", "interior", "background"}`` (NaN for a
    region with no voxel). Figs. 10-11 describe the full model's activations as "concentrated on the structural
    boundary": then the boundary value is the highest."""
    if heatmap.shape != labels.shape:
        raise ConfigError(f"heatmap {tuple(heatmap.shape)} and labels {tuple(labels.shape)} must have one shape")
    edge = boundary_mask(labels)
    regions = {"boundary": edge, "interior": (labels > 0) & ~edge, "background": (labels == 0) & ~edge}
    return {name: float(heatmap[mask].float().mean()) if mask.any() else float("nan")
            for name, mask in regions.items()}
