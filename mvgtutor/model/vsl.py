"""View-masked self-supervised learning, VSL (Sec. 4.4).

The paper: "we randomly select one input view as the masked view, and reconstruct the masked view from the
remaining two views. Taken I_XY as an example, we randomly mask I_XY with a rate eta and then train the remaining
part with the rest two views following the standard procedure described above. Then, following [59] (MAE), we
introduce an additional lightweight transformer as the decoder to reconstruct the masked regions, and use the mean
squared error (MSE) loss as the reconstruction loss."

In training, one view (chosen at random for the whole batch) has a fraction ``eta`` (``mask_ratio``, 50%) of its
tokens replaced by a learned mask token before the positions are added (as in SimMIM, so every view keeps its L
tokens and the segmentation path runs unchanged). The loss is the MSE on the masked tokens' voxels only, as in MAE.
What the light decoder reads is not specified; ``ModelConfig.vsl_reading`` chooses:

* ``"cross_view"`` (default, **our reading**): the decoder's queries are the masked view's own encoded tokens,
  with a decoder mask token in place of every masked one (MAE's decoder input); each decoder block self-attends
  over them and cross-attends to the *other* views' encoded tokens, given in their own sequence order with their
  own learned positions, **not** re-aligned to the masked view: the decoder has to learn which token of another
  view covers the place it must fill. The masked view's stream is also blind to the hidden voxels: its visual
  graph is built from the patch with those voxels set to zero (``MVGFormer.forward_features``). The loss depends
  on the mask (tested).
* ``"realigned"`` (the literal reading built first): the decoder reads only the other views' last-layer tokens,
  re-arranged to the masked view's token order and summed. Every view holds every voxel, so each target token
  is present, unmasked, in the decoder's input at the same index: the task is per-token auto-encoding, and the
  loss does not depend on the mask at all (chapter 9 shows the check; ``tests/test_model_vsl.py`` keeps it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn as nn

from mvgtutor.config import ModelConfig
from mvgtutor.errors import ConfigError, check_choice
from mvgtutor.model.attention import MLP, Block, MultiHeadAttention
from mvgtutor.model.decoders import tokens_to_grid
from mvgtutor.model.embed import patchify, token_grid, unpatchify
from mvgtutor.model.views import from_view, to_view

VSL_READINGS: tuple[str, ...] = ("cross_view", "realigned")


@dataclass
class MaskedView:
    """Which view is masked (``view``, an index into ``config.views``) and where: ``mask (B, L)``, True = masked.

    ``view`` is a 0-d int64 tensor on the batch's device (it indexes lists like an int). The model only selects
    with it through tensor operations, never as a Python number, so ``torch.compile`` traces one graph for every
    masked view instead of recompiling for each (a Python int is a constant baked into the graph).
    """

    view: torch.Tensor | int
    mask: torch.Tensor

    def is_view(self, count: int) -> torch.Tensor:
        """``(count,)`` bool, True at the masked view's index."""
        index = torch.as_tensor(self.view, device=self.mask.device)
        return torch.arange(count, device=self.mask.device) == index


def realign_tokens(tokens: torch.Tensor, source: str, target: str, grid: int) -> torch.Tensor:
    """Re-order tokens of view ``source`` into view ``target``'s sequence order: ``(B, L, C) -> (B, L, C)``."""
    cells = from_view(tokens_to_grid(tokens, grid), source)  # (B, C, g, g, g) in the canonical grid
    return to_view(cells, target).flatten(2).transpose(1, 2)  # (B, L, C) in target's order


class CrossViewBlock(nn.Module):
    """A pre-norm decoder block: self-attention over the masked view's tokens, cross-attention to the other
    views' tokens, MLP. ``x (B, L, d)``, ``memory (B, M, d)`` -> ``(B, L, d)``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1, self.norm2, self.norm_memory, self.norm3 = (nn.LayerNorm(dim) for _ in range(4))
        self.self_attn = MultiHeadAttention(dim, num_heads)
        self.cross_attn = MultiHeadAttention(dim, num_heads)
        self.mlp = MLP(dim, mlp_ratio)

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """``x (B, L, d)``, ``memory (B, M, d)`` -> ``(B, L, d)``."""
        normed = self.norm1(x)
        x = x + self.self_attn(normed, normed)[0]
        x = x + self.cross_attn(self.norm2(x), self.norm_memory(memory))[0]
        return x + self.mlp(self.norm3(x))


class ViewMaskedSSL(nn.Module):
    """Masks one view's tokens and reconstructs its voxels with a light decoder (the ``recon_loss``)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        if len(config.views) < 2:
            raise ConfigError(f"vsl=True needs at least two views to reconstruct one from the others, "
                              f"got views={config.views}: add views or set vsl=False")
        if not 0.0 < config.mask_ratio < 1.0:
            raise ConfigError(f"mask_ratio={config.mask_ratio} must lie strictly between 0 and 1 (the paper: 0.5)")
        check_choice("vsl_reading", config.vsl_reading, VSL_READINGS)
        self.reading = config.vsl_reading
        self.views, self.mask_ratio = tuple(config.views), config.mask_ratio
        self.patch, self.grid = config.token_patch, token_grid(config)
        dim = config.vsl_decoder_dim
        heads = config.num_heads if dim % config.num_heads == 0 else 1
        self.mask_token = nn.Parameter(torch.zeros(config.embed_dim))  # (C,) the encoder's mask token
        self.embed = nn.Linear(config.embed_dim, dim)
        if self.reading == "cross_view":
            self.decoder_mask_token = nn.Parameter(torch.zeros(dim))  # (dim,) MAE's decoder mask token
            self.position = nn.Parameter(torch.zeros(len(self.views), self.grid**3, dim))  # (V, L, dim) per view
            self.blocks = nn.ModuleList([CrossViewBlock(dim, heads, config.mlp_ratio)
                                         for _ in range(config.vsl_decoder_depth)])
        else:
            block_config = dataclasses.replace(config, embed_dim=dim, num_heads=heads)
            self.position = nn.Parameter(torch.zeros(1, self.grid**3, dim))  # (1, L, dim)
            self.blocks = nn.ModuleList([Block(block_config) for _ in range(config.vsl_decoder_depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, config.in_channels * self.patch**3)  # the voxels under each token

    @torch.compiler.disable  # eager: dynamo cannot trace torch.rand with a batch size it made symbolic
    def choose_mask(self, batch: int, device: torch.device,
                    generator: torch.Generator | None = None) -> MaskedView:
        """A random view and, per sample, exactly ``round(eta * L)`` random masked tokens.

        Run eagerly under ``torch.compile``: once a second batch size has made dynamo treat the batch as symbolic
        (the cpu profile after the test one, or a last, smaller batch), tracing ``torch.rand(batch, L)`` fails
        ("SymIntArrayRef expected to contain only concrete integers"). Drawing a mask is not worth compiling.
        """
        length = self.grid**3
        view = torch.randint(len(self.views), (1,), generator=generator, device=device)[0]  # 0-d: graph-stable
        scores = torch.rand(batch, length, generator=generator, device=device)  # (B, L)
        ranks = scores.argsort(dim=1).argsort(dim=1)  # rank of each token's score
        return MaskedView(view=view, mask=ranks < round(self.mask_ratio * length))

    def mask_tokens(self, tokens: torch.Tensor, masked: MaskedView) -> torch.Tensor:
        """Replace the masked tokens of the masked view by the mask token: ``(V, B, L, C) -> (V, B, L, C)``."""
        chosen = masked.is_view(tokens.shape[0])[:, None, None, None] & masked.mask[None, :, :, None]  # (V, B, L, 1)
        return torch.where(chosen, self.mask_token.to(tokens.dtype), tokens)

    def voxel_mask(self, masked: MaskedView) -> torch.Tensor:
        """The hidden voxels in the canonical grid: ``(B, 1, S, S, S)`` bool, True under a masked token."""
        per_token = masked.mask.float().unsqueeze(-1).expand(-1, -1, self.patch**3)  # (B, L, p^3)
        grid = unpatchify(per_token, self.patch, self.grid)  # (B, 1, S, S, S) in the masked view's axis order
        return self.select_view(torch.stack([from_view(grid, view) for view in self.views]), masked) > 0.5

    @staticmethod
    def select_view(stacked: torch.Tensor, masked: MaskedView) -> torch.Tensor:
        """The masked view's entry of ``stacked (V, ...)``: ``(...)``, selected by a tensor index (graph-stable)."""
        index = torch.as_tensor(masked.view, device=stacked.device).reshape(1)
        return stacked.index_select(0, index)[0]

    def other_views(self, masked: MaskedView) -> torch.Tensor:
        """The indices ``(V - 1,)`` of the views that are not masked, in cyclic order after the masked one."""
        count = len(self.views)
        index = torch.as_tensor(masked.view, device=masked.mask.device)
        return (index + 1 + torch.arange(count - 1, device=masked.mask.device)) % count

    def reconstruct(self, last_hidden: torch.Tensor, masked: MaskedView) -> torch.Tensor:
        """Predict the masked view's voxels: ``last_hidden (V, B, L, C) -> (B, L, in_channels * p^3)``, in the
        masked view's token order."""
        if self.reading == "realigned":
            return self._reconstruct_realigned(last_hidden, masked)
        x = self.embed(self.select_view(last_hidden, masked))  # (B, L, dim) the masked view's encoded tokens
        x = torch.where(masked.mask.unsqueeze(-1), self.decoder_mask_token.to(x.dtype), x)
        x = x + self.select_view(self.position, masked)
        others = self.other_views(masked)  # (V-1,)
        memory = self.embed(last_hidden.index_select(0, others)) + self.position.index_select(0, others)[:, None]
        memory = memory.transpose(0, 1).flatten(1, 2)  # (B, (V-1) L, dim): each other view in its own order
        for block in self.blocks:
            x = block(x, memory)
        return self.head(self.norm(x))

    def _reconstruct_realigned(self, last_hidden: torch.Tensor, masked: MaskedView) -> torch.Tensor:
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
        target = patchify(self.select_view(torch.stack([to_view(x, view) for view in self.views]), masked),
                          self.patch)  # (B, L, p^3), the masked view's token order
        per_token = (prediction - target.to(prediction.dtype)).square().mean(-1)  # (B, L)
        weight = masked.mask.to(per_token.dtype)
        return (per_token * weight).sum() / weight.sum()
