"""What view-masked self-supervised learning (Sec. 4.4) sees and reconstructs, for one patch."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from mvgtutor.model.embed import unpatchify
from mvgtutor.model.views import from_view


@dataclass(frozen=True)
class MaskedReconstruction:
    """One patch, the view that was masked, which voxels were hidden and what VSL's decoder predicted for them.

    Volumes are ``(D, H, W)`` in the canonical grid.
    """

    view: str
    image: torch.Tensor
    mask: torch.Tensor  # bool: voxels under masked tokens
    reconstruction: torch.Tensor


@torch.no_grad()
def reconstruct_masked_view(model: nn.Module, patch: torch.Tensor, seed: int = 0) -> MaskedReconstruction:
    """Mask one view of ``patch`` ``(1, 1, S, S, S)`` as in training and reconstruct it from the other two views.

    Runs a copy of ``model`` in training mode (masking only happens there) so the model's batch-norm statistics
    are left untouched.
    """
    trainer = copy.deepcopy(model).train()
    generator = torch.Generator(device=patch.device).manual_seed(seed)
    features = trainer.forward_features(patch, generator)
    masked = features.masked
    prediction = trainer.vsl.reconstruct(features.per_view(), masked)  # (1, L, p^3), the masked view's order
    view = trainer.vsl.views[masked.view]
    patch_size, grid = trainer.vsl.patch, trainer.vsl.grid
    voxels = from_view(unpatchify(prediction, patch_size, grid), view)  # (1, 1, S, S, S) canonical grid
    mask_tokens = masked.mask.float()[..., None].expand(-1, -1, patch_size**3)  # (1, L, p^3)
    mask = from_view(unpatchify(mask_tokens, patch_size, grid), view) > 0.5  # (1, 1, S, S, S)
    return MaskedReconstruction(view=view, image=patch[0, 0].cpu(), mask=mask[0, 0].cpu(),
                                reconstruction=voxels[0, 0].float().cpu())
