"""Attention, the graph-guided first layer and the pre-norm transformer of eq. 7 (Sec. 4.2, Fig. 2b).

Eq. 7 says the first layer is ``F_L1 = MSA(Q = V, K = LN(I), V = LN(I)) + I``: the queries come from the K graph
nodes, keys and values from the L normalised tokens. K queries give K outputs, but the residual ``+ I`` needs L.
``graph_query`` picks a reading:

* ``"token_cluster"`` (default): token ``j``'s query is the node of its cluster, ``g_{a(j)}``. Tokens of one
  cluster share a query, hence share an output; we compute the K distinct outputs and gather them by assignment,
  which is exactly the L-query attention with ``Q = nodes[assignment]`` at K/L of the cost.
* ``"token_plus_node"``: token ``j``'s query is ``LN(I)_j + W g_{a(j)}``, the token's own query nudged by its
  cluster's context (outputs differ within a cluster).

Layers 2..Ln are standard pre-norm blocks; all layers are shared by the three views (the views are stacked on
the batch axis). ``attention`` uses ``F.scaled_dot_product_attention`` unless the maps are asked for.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from mvgtutor.config import ModelConfig
from mvgtutor.errors import ConfigError, check_choice
from mvgtutor.model.embed import apply_rotary

GRAPH_QUERIES: tuple[str, ...] = ("token_cluster", "token_plus_node")


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
              return_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``softmax(q k^T / sqrt(d)) v``: q ``(N, h, Lq, d)``, k, v ``(N, h, Lk, d)`` -> ``(N, h, Lq, d)``.

    The fused kernel (``F.scaled_dot_product_attention``) runs unless ``return_weights``; then the manual path
    also returns the attention maps ``(N, h, Lq, Lk)`` (for teaching and heatmaps).
    """
    if not return_weights:
        return F.scaled_dot_product_attention(q, k, v), None
    scores = q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5  # (N, h, Lq, Lk)
    weights = scores.softmax(dim=-1)
    return weights @ v, weights


def gather_tokens(values: torch.Tensor, assignment: torch.Tensor) -> torch.Tensor:
    """Row ``assignment[n, j]`` of ``values[n]`` for every token: ``(N, K, C), (N, L) -> (N, L, C)``."""
    return torch.gather(values, 1, assignment.unsqueeze(-1).expand(-1, -1, values.shape[-1]))


class MultiHeadAttention(nn.Module):
    """Multi-head attention with separate query and key/value inputs (self-attention when they are equal)."""

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        if dim % num_heads:
            raise ConfigError(f"embed_dim={dim} is not divisible by num_heads={num_heads}: pick a divisor")
        self.num_heads = num_heads
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        n, length, dim = x.shape
        return x.view(n, length, self.num_heads, dim // self.num_heads).transpose(1, 2)  # (N, h, L, d)

    def forward(self, queries: torch.Tensor, context: torch.Tensor, query_angles: torch.Tensor | None = None,
                key_angles: torch.Tensor | None = None,
                return_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``queries (N, Lq, C)``, ``context (N, Lk, C)`` -> ``(N, Lq, C)`` and maps ``(N, h, Lq, Lk)`` or None.

        ``query_angles`` / ``key_angles`` ``(N, 1, L, d/2)``: rotary positions (RoPE) for queries / keys.
        """
        q, k, v = self._heads(self.query(queries)), self._heads(self.key(context)), self._heads(self.value(context))
        if query_angles is not None:
            q = apply_rotary(q, query_angles)
        if key_angles is not None:
            k = apply_rotary(k, key_angles)
        out, weights = attention(q, k, v, return_weights)  # (N, h, Lq, d)
        out = out.transpose(1, 2).flatten(2)  # (N, Lq, C)
        return self.dropout(self.out(out)), weights


class MLP(nn.Module):
    """The transformer's feed-forward part: ``Linear(C, rC) -> GELU -> Linear(rC, C)``."""

    def __init__(self, dim: int, ratio: float, dropout: float = 0.0):
        super().__init__()
        hidden = int(dim * ratio)
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, L, C) -> (N, L, C)``."""
        return self.net(x)


class Block(nn.Module):
    """Eq. 7, layers n >= 2: ``F = MSA(LN(F)) + F; F = MLP(LN(F)) + F``."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(config.embed_dim)
        self.attn = MultiHeadAttention(config.embed_dim, config.num_heads, config.dropout)
        self.norm2 = nn.LayerNorm(config.embed_dim)
        self.mlp = MLP(config.embed_dim, config.mlp_ratio, config.dropout)

    def forward(self, x: torch.Tensor, angles: torch.Tensor | None = None,
                return_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``x (N, L, C) -> (N, L, C)`` and the maps ``(N, h, L, L)`` if asked."""
        normed = self.norm1(x)
        attended, weights = self.attn(normed, normed, angles, angles, return_weights)
        x = x + attended
        x = x + self.mlp(self.norm2(x))
        return x, weights


class GraphGuidedAttention(nn.Module):
    """Eq. 7's first term ``MSA(Q = V, K = LN(I), V = LN(I))`` under the reading ``graph_query``."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        check_choice("graph_query", config.graph_query, GRAPH_QUERIES)
        self.mode = config.graph_query
        self.attn = MultiHeadAttention(config.embed_dim, config.num_heads, config.dropout)
        self.node_proj = nn.Linear(config.embed_dim, config.embed_dim) if self.mode == "token_plus_node" else None

    def forward(self, normed: torch.Tensor, nodes: torch.Tensor, assignment: torch.Tensor,
                angles: torch.Tensor | None = None,
                return_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``normed = LN(I) (N, L, C)``, ``nodes (N, K, C)``, ``assignment (N, L)`` -> ``(N, L, C)``, maps.

        The maps are per token, ``(N, h, L, L)``, in both readings.
        """
        if self.mode == "token_cluster":
            per_node, weights = self.attn(nodes, normed, None, angles, return_weights)  # (N, K, C)
            if weights is not None:
                index = assignment.view(assignment.shape[0], 1, -1, 1).expand(-1, weights.shape[1], -1,
                                                                              weights.shape[-1])
                weights = torch.gather(weights, 2, index)  # (N, h, K, L) -> (N, h, L, L)
            return gather_tokens(per_node, assignment), weights  # (N, L, C): each token reads its cluster's output
        queries = normed + self.node_proj(gather_tokens(nodes, assignment))  # (N, L, C)
        return self.attn(queries, normed, angles, angles, return_weights)


class GraphGuidedBlock(nn.Module):
    """Eq. 7, layer 1: ``F = MSA(Q = nodes, K = V = LN(I)) + I; F = MLP(LN(F)) + F``."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(config.embed_dim)
        self.attn = GraphGuidedAttention(config)
        self.norm2 = nn.LayerNorm(config.embed_dim)
        self.mlp = MLP(config.embed_dim, config.mlp_ratio, config.dropout)

    def forward(self, x: torch.Tensor, nodes: torch.Tensor, assignment: torch.Tensor,
                angles: torch.Tensor | None = None,
                return_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``x (N, L, C)``, ``nodes (N, K, C)``, ``assignment (N, L)`` -> ``(N, L, C)``, maps."""
        attended, weights = self.attn(self.norm1(x), nodes, assignment, angles, return_weights)
        x = x + attended  # eq. 7: ... + I
        x = x + self.mlp(self.norm2(x))
        return x, weights


class TransformerEncoder(nn.Module):
    """Ln layers of eq. 7: a graph-guided first layer (unless ``graph_guided=False``), then pre-norm blocks."""

    def __init__(self, config: ModelConfig, graph_guided: bool = True):
        super().__init__()
        self.graph_guided = graph_guided
        first = GraphGuidedBlock(config) if graph_guided else Block(config)
        self.blocks = nn.ModuleList([first] + [Block(config) for _ in range(config.depth - 1)])

    def forward(self, tokens: torch.Tensor, nodes: torch.Tensor | None = None,
                assignment: torch.Tensor | None = None, angles: torch.Tensor | None = None,
                return_weights: bool = False) -> tuple[list[torch.Tensor], list[torch.Tensor | None]]:
        """``tokens (N, L, C)`` (+ ``nodes (N, K, C)``, ``assignment (N, L)``) -> every layer's output ``(N, L, C)``.

        Also returns each layer's attention maps ``(N, h, L, L)`` when ``return_weights`` (else Nones).
        """
        hidden, maps = [], []
        x = tokens
        for index, block in enumerate(self.blocks):
            if index == 0 and self.graph_guided:
                x, weights = block(x, nodes, assignment, angles, return_weights)  # eq. 7, first line
            else:
                x, weights = block(x, angles, return_weights)  # eq. 7, second and third lines
            hidden.append(x)
            maps.append(weights)
        return hidden, maps
