"""Multi-view tokens (Sec. 4.2, eq. 6): 3D patch embedding and the positional encodings of Fig. 9b.

A view of the patch (``to_view``) is cut into ``L = (S/p)^3`` cubes of ``p^3`` voxels, each flattened and projected
to C channels (a Conv3d with kernel = stride = p does exactly that). Tokens are ordered row-major over the view's
own token grid, so token ``i`` of the YZ view is not at the same place in the patch as token ``i`` of XY.

Positions (``ModelConfig.position``):

* ``"learned"`` (the paper): one learned table per view, ``p_i^obv`` of eq. 6;
* ``"shared"``: one learned table for every view, indexed by sequence position (the single embedding of
  earlier 3D transformers that the paper argues against);
* ``"sinusoidal"``: fixed 3D sine/cosine features of each token's place in the patch (canonical z, y, x), so the
  same place gets the same code in every view while the sequence order of the codes differs per view;
* ``"rotary"``: nothing is added; the same 3D coordinates rotate queries and keys inside attention (RoPE).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from mvgtutor.config import ModelConfig
from mvgtutor.errors import ConfigError, check_choice
from mvgtutor.model.views import to_view

POSITIONS: tuple[str, ...] = ("learned", "shared", "sinusoidal", "rotary")


def token_grid(config: ModelConfig) -> int:
    """Tokens per side: ``input_size / token_patch`` (8 for the paper's 32 / 4)."""
    if config.input_size % config.token_patch:
        raise ConfigError(f"input_size={config.input_size} is not a multiple of token_patch={config.token_patch}: "
                          f"choose a token patch that divides the input")
    return config.input_size // config.token_patch


class PatchEmbed(nn.Module):
    """Cut a patch into ``p^3`` cubes and project each to C channels: ``(B, 1, S, S, S) -> (B, L, C)``."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        p = config.token_patch
        self.proj = nn.Conv3d(config.in_channels, config.embed_dim, kernel_size=p, stride=p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 1, S, S, S) -> (B, L, C)``, tokens row-major over the input's own axis order."""
        return self.proj(x).flatten(2).transpose(1, 2)  # (B, C, g, g, g) -> (B, L, C)


def patchify(x: torch.Tensor, patch: int) -> torch.Tensor:
    """The voxels under each token, in the same order as ``PatchEmbed``: ``(B, c, S, S, S) -> (B, L, c*p^3)``."""
    b, c, s1, s2, s3 = x.shape
    g1, g2, g3 = s1 // patch, s2 // patch, s3 // patch
    x = x.reshape(b, c, g1, patch, g2, patch, g3, patch)
    x = x.permute(0, 2, 4, 6, 1, 3, 5, 7)  # (B, g1, g2, g3, c, p, p, p)
    return x.reshape(b, g1 * g2 * g3, c * patch**3)


def unpatchify(tokens: torch.Tensor, patch: int, grid: int) -> torch.Tensor:
    """Inverse of ``patchify``: ``(B, L, c*p^3) -> (B, c, g*p, g*p, g*p)`` for a cubic ``grid`` of tokens."""
    b, _, width = tokens.shape
    c = width // patch**3
    x = tokens.reshape(b, grid, grid, grid, c, patch, patch, patch)
    x = x.permute(0, 4, 1, 5, 2, 6, 3, 7)  # (B, c, g, p, g, p, g, p)
    return x.reshape(b, c, grid * patch, grid * patch, grid * patch)


def view_coordinates(grid: int, views: tuple[str, ...]) -> torch.Tensor:
    """Canonical (z, y, x) token coordinates in each view's sequence order: ``(V, L, 3)``."""
    axes = torch.meshgrid(*[torch.arange(grid, dtype=torch.float32)] * 3, indexing="ij")
    canonical = torch.stack(axes)  # (3, g, g, g): z, y, x of every token-grid cell
    return torch.stack([to_view(canonical, v).reshape(3, -1).T for v in views])  # (V, L, 3)


def sinusoidal_3d(coordinates: torch.Tensor, dim: int, base: float = 100.0) -> torch.Tensor:
    """Fixed 3D sine/cosine codes: ``(..., 3) -> (..., dim)``; a third of the channels per axis, zero padding.

    Frequencies ``base^(-j/F)``: ``base`` 100 (not the 10000 of text transformers) suits grids of ~8 tokens.
    """
    per_axis = 2 * (dim // 6)  # sin + cos pairs per axis
    freqs = base ** (-torch.arange(per_axis // 2, dtype=torch.float32) / max(per_axis // 2, 1))  # (F,)
    angles = coordinates.unsqueeze(-1) * freqs  # (..., 3, F)
    codes = torch.cat([angles.sin(), angles.cos()], dim=-1).flatten(-2)  # (..., 3 * 2F)
    return nn.functional.pad(codes, (0, dim - codes.shape[-1]))


def rotary_angles(coordinates: torch.Tensor, head_dim: int, base: float = 100.0) -> torch.Tensor:
    """3D RoPE angles: ``(..., 3) -> (..., head_dim // 2)``; a third of the rotation pairs per axis, rest zero."""
    pairs = head_dim // 2
    per_axis = pairs // 3
    if per_axis == 0:
        raise ConfigError(f"rotary positions need head_dim >= 6, got {head_dim}: use fewer heads or position='learned'")
    freqs = base ** (-torch.arange(per_axis, dtype=torch.float32) / per_axis)  # (P,)
    angles = (coordinates.unsqueeze(-1) * freqs).flatten(-2)  # (..., 3P)
    return nn.functional.pad(angles, (0, pairs - angles.shape[-1]))


def apply_rotary(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs ``(i, i + d/2)`` of ``x (..., L, d)`` by ``angles (..., L, d/2)`` (broadcast)."""
    first, second = x.chunk(2, dim=-1)
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    return torch.cat([first * cos - second * sin, first * sin + second * cos], dim=-1)


class PositionEncoding(nn.Module):
    """Eq. 6: ``I^obv = x^obv + p^obv``. Adds positions to ``tokens (V, B, L, C)``; see ``POSITIONS``."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        check_choice("position", config.position, POSITIONS)
        self.kind = config.position
        grid, views, dim = token_grid(config), tuple(config.views), config.embed_dim
        length = grid**3
        self.table = None
        if self.kind == "learned":
            self.table = nn.Parameter(torch.zeros(len(views), length, dim))  # (V, L, C)
        elif self.kind == "shared":
            self.table = nn.Parameter(torch.zeros(1, length, dim))  # (1, L, C)
        coordinates = view_coordinates(grid, views)  # (V, L, 3)
        fixed = sinusoidal_3d(coordinates, dim) if self.kind == "sinusoidal" else torch.zeros(0)
        self.register_buffer("fixed", fixed, persistent=False)  # (V, L, C) for sinusoidal
        rotary = rotary_angles(coordinates, dim // config.num_heads) if self.kind == "rotary" else torch.zeros(0)
        self.register_buffer("rotary", rotary, persistent=False)  # (V, L, head_dim / 2) for rotary

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens (V, B, L, C) -> (V, B, L, C)`` with the positions of each view added (rotary: unchanged)."""
        if self.table is not None:
            return tokens + self.table.unsqueeze(1)  # (V, 1, L, C) broadcast over the batch
        if self.kind == "sinusoidal":
            return tokens + self.fixed.unsqueeze(1).to(tokens.dtype)
        return tokens

    def rotary_angles(self) -> torch.Tensor | None:
        """RoPE angles per view ``(V, L, head_dim / 2)``, or ``None`` unless ``position="rotary"``."""
        return self.rotary if self.kind == "rotary" else None


def init_position_table(table: nn.Parameter, std: float = 0.02) -> None:
    """Truncated-normal init of a learned position table (as ViT)."""
    nn.init.trunc_normal_(table, std=std, a=-2 * std, b=2 * std)

