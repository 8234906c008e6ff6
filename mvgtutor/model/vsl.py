"""View-masked self-supervised learning, VSL (Sec. 4.4).

In training, one view (chosen at random for the whole batch) has a fraction ``eta`` (``mask_ratio``, 50%) of its
tokens replaced by a learned mask token before the positions are added (as in SimMIM, so every view keeps its L
tokens and the segmentation path runs unchanged). After the encoder, a light transformer decoder
reconstructs the voxels of the masked view from the *other two* views' last-layer tokens, re-arranged to the
masked view's token order (same place in the patch, same row). The loss is the MSE on the masked tokens only,
as in MAE (He et al. 2022).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn as nn

from mvgtutor.config import ModelConfig
from mvgtutor.errors import ConfigError
from mvgtutor.model.attention import Block
from mvgtutor.model.decoders import tokens_to_grid
from mvgtutor.model.embed import patchify, token_grid
from mvgtutor.model.views import from_view, to_view


@dataclass
class MaskedView:
    """Which view is masked (``view``, an index into ``config.views``) and where: ``mask (B, L)``, True = masked."""

    view: int
    mask: torch.Tensor


def realign_tokens(tokens: torch.Tensor, source: str, target: str, grid: int) -> torch.Tensor:
    """Re-order tokens of view ``source`` into view ``target``'s sequence order: ``(B, L, C) -> (B, L, C)``."""
    cells = from_view(tokens_to_grid(tokens, grid), source)  # (B, C, g, g, g) in the canonical grid
    return to_view(cells, target).flatten(2).transpose(1, 2)  # (B, L, C) in target's order


class ViewMaskedSSL(nn.Module):
    """Masks one view's tokens and reconstructs its voxels from the other views (the ``recon_loss``)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        if len(config.views) < 2:
            raise ConfigError(f"vsl=True needs at least two views to reconstruct one from the others, "
                              f"got views={config.views}: add views or set vsl=False")
        if not 0.0 < config.mask_ratio < 1.0:
            raise ConfigError(f"mask_ratio={config.mask_ratio} must lie strictly between 0 and 1 (the paper: 0.5)")
        self.views, self.mask_ratio = tuple(config.views), config.mask_ratio
        self.patch, self.grid = config.token_patch, token_grid(config)
        dim = config.vsl_decoder_dim
        heads = config.num_heads if dim % config.num_heads == 0 else 1
        block_config = dataclasses.replace(config, embed_dim=dim, num_heads=heads)
        self.mask_token = nn.Parameter(torch.zeros(config.embed_dim))  # (C,)
        self.embed = nn.Linear(config.embed_dim, dim)
        self.position = nn.Parameter(torch.zeros(1, self.grid**3, dim))  # (1, L, dim)
        self.blocks = nn.ModuleList([Block(block_config) for _ in range(config.vsl_decoder_depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, config.in_channels * self.patch**3)  # the voxels under each token

    def choose_mask(self, batch: int, device: torch.device,
                    generator: torch.Generator | None = None) -> MaskedView:
        """A random view and, per sample, exactly ``round(eta * L)`` random masked tokens."""
        length = self.grid**3
        view = int(torch.randint(len(self.views), (1,), generator=generator, device=device))
        scores = torch.rand(batch, length, generator=generator, device=device)  # (B, L)
        ranks = scores.argsort(dim=1).argsort(dim=1)  # rank of each token's score
        return MaskedView(view=view, mask=ranks < round(self.mask_ratio * length))

    def mask_tokens(self, tokens: torch.Tensor, masked: MaskedView) -> torch.Tensor:
        """Replace the masked tokens of the masked view by the mask token: ``(V, B, L, C) -> (V, B, L, C)``."""
        hidden = torch.where(masked.mask.unsqueeze(-1), self.mask_token.to(tokens.dtype), tokens[masked.view])
        return torch.cat([tokens[:masked.view], hidden.unsqueeze(0), tokens[masked.view + 1:]])

    def reconstruct(self, last_hidden: torch.Tensor, masked: MaskedView) -> torch.Tensor:
        """Predict the masked view's voxels from the others: ``(V, B, L, C) -> (B, L, in_channels * p^3)``."""
        target_view = self.views[masked.view]
        context = sum(realign_tokens(last_hidden[i], view, target_view, self.grid)  # (B, L, C)
                      for i, view in enumerate(self.views) if i != masked.view)
        x = self.embed(context) + self.position  # (B, L, dim)
        for block in self.blocks:
            x, _ = block(x)
        return self.head(self.norm(x))

    def loss(self, last_hidden: torch.Tensor, x: torch.Tensor, masked: MaskedView) -> torch.Tensor:
        """MSE over the masked tokens' voxels: ``last_hidden (V, B, L, C)``, ``x (B, 1, S, S, S)`` -> scalar."""
        prediction = self.reconstruct(last_hidden, masked)  # (B, L, p^3)
        target = patchify(to_view(x, self.views[masked.view]), self.patch)  # (B, L, p^3), same token order
        per_token = (prediction - target.to(prediction.dtype)).square().mean(-1)  # (B, L)
        weight = masked.mask.to(per_token.dtype)
        return (per_token * weight).sum() / weight.sum()
