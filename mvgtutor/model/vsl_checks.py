"""Checks of what VSL (Sec. 4.4) learns, for chapter 9: does the reconstruction depend on the mask, does it use
the other views, and what part of the image does it recover?

Every check runs a copy of the model in training mode (masking happens only there), without gradients, so the
caller's model and its batch-norm statistics are left untouched; every random draw comes from ``seed``.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from mvgtutor.errors import DataError
from mvgtutor.model.embed import unpatchify
from mvgtutor.model.views import from_view


def _recon_loss(trainer: nn.Module, x: torch.Tensor, seed: int) -> float:
    torch.manual_seed(seed)  # dropout, if any
    return float(trainer(x, generator=torch.Generator(device=x.device).manual_seed(seed))["recon_loss"])


@torch.no_grad()
def mask_dependence(model: nn.Module, x: torch.Tensor, seed: int = 0, scale: float = 50.0) -> dict[str, float]:
    """The reconstruction loss on patches ``x (B, 1, S, S, S)`` with the same mask three ways: as trained, with the
    encoder's mask token times ``scale``, and with the encoder's input not masked at all (the loss still scores the
    same hidden tokens). Equal values mean the loss cannot see the mask (issue 10's check of the literal reading)."""
    trainer = copy.deepcopy(model).train()
    results = {"as trained": _recon_loss(trainer, x, seed)}
    trainer.vsl.mask_token.mul_(scale)
    results[f"mask token x{scale:g}"] = _recon_loss(trainer, x, seed)
    trainer.vsl.mask_token.div_(scale)
    trainer.vsl.mask_tokens = lambda tokens, masked: tokens  # this copy's encoder sees every token
    results["input not masked"] = _recon_loss(trainer, x, seed)
    return results


@torch.no_grad()
def other_views_ablation(model: nn.Module, x: torch.Tensor, seed: int = 0) -> dict[str, float]:
    """How much the reconstruction relies on the other views: the loss on ``x (B, 1, S, S, S)`` (B >= 2) with the
    other views' encoded tokens of the same patch, and with those of the next patch in the batch (same mask)."""
    if x.shape[0] < 2:
        raise DataError(f"other_views_ablation needs at least 2 patches, got {x.shape[0]}: pass a batch of them")
    trainer = copy.deepcopy(model).train()
    torch.manual_seed(seed)
    features = trainer.forward_features(x, torch.Generator(device=x.device).manual_seed(seed))
    last, masked = features.per_view(), features.masked  # (V, B, L, C)
    swapped = last.roll(1, dims=1)  # every view of the next patch...
    swapped[masked.view] = last[masked.view]  # ...except the masked view itself
    return {"own other views": float(trainer.vsl.loss(last, x, masked)),
            "another patch's other views": float(trainer.vsl.loss(swapped, x, masked))}


def _correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()).clamp(min=1e-12))


@torch.no_grad()
def reconstruction_quality(model: nn.Module, x: torch.Tensor, seed: int = 0) -> dict[str, float]:
    """What the reconstruction recovers on the hidden voxels of ``x (B, 1, S, S, S)``.

    The image is split into a *coarse* part, each token's 4^3 cube replaced by its mean (the density at token
    resolution), and the *fine* rest (within-cube detail, mostly noise at this SNR). Returns the MSE of the
    reconstruction, of predicting the mean grey level (the input's variance) and of predicting the coarse part
    itself, and the correlation of the reconstruction with the coarse and with the fine part, all on the hidden
    voxels only.
    """
    trainer = copy.deepcopy(model).train()
    torch.manual_seed(seed)
    features = trainer.forward_features(x, torch.Generator(device=x.device).manual_seed(seed))
    masked, vsl = features.masked, trainer.vsl
    view = vsl.views[masked.view]
    prediction = from_view(unpatchify(vsl.reconstruct(features.per_view(), masked), vsl.patch, vsl.grid), view)
    hidden = vsl.voxel_mask(masked)  # (B, 1, S, S, S)
    coarse = F.interpolate(F.avg_pool3d(x, vsl.patch), scale_factor=vsl.patch, mode="nearest")
    image, recon, coarse_part = x[hidden], prediction.float()[hidden], coarse[hidden]
    return {"mse": float((recon - image).square().mean()),
            "mse_mean_grey": float(image.var(unbiased=False)),
            "mse_coarse_oracle": float((coarse_part - image).square().mean()),
            "corr_coarse": _correlation(recon, coarse_part),
            "corr_fine": _correlation(recon, image - coarse_part)}
