"""The learned visual graph and the attention maps of one patch, on its canonical voxel grid ``(z, y, x)``.

* ``cluster_volume``: the node (cluster, eqs. 3-5) each voxel's token belongs to: which voxels each of the K
  graph nodes gathers;
* ``attention_volume``: how much the token covering one voxel attends to every token of its view, in a chosen
  layer, mapped back to the canonical grid. In the graph-guided first layer (eq. 7, ``graph_query=
  "token_cluster"``) the query is the token's cluster node, so the map is that node's attention: every token of
  a cluster has the same map.

Both come at token resolution (one value per ``token_patch^3`` voxels), repeated to the input's voxels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mvgtutor.errors import ConfigError
from mvgtutor.model.views import from_view, to_view


def _to_voxels(cells: torch.Tensor, token_patch: int) -> torch.Tensor:
    """Repeat every cell of ``(B, g, g, g)`` to a ``token_patch^3`` block: ``-> (B, S, S, S)``."""
    for dim in (1, 2, 3):
        cells = cells.repeat_interleave(token_patch, dim=dim)
    return cells


def _check_position(position: Sequence[int], size: int) -> tuple[int, int, int]:
    if len(position) != 3 or not all(0 <= int(p) < size for p in position):
        raise ConfigError(f"position={tuple(position)} must be (z, y, x) voxels inside the patch, each in "
                          f"[0, {size}): choose a voxel of the {size}^3 patch")
    return tuple(int(p) for p in position)


def token_index(position: Sequence[int], view: str, grid: int, token_patch: int) -> int:
    """The index, in ``view``'s token order, of the token covering voxel ``position = (z, y, x)``."""
    z, y, x = _check_position(position, grid * token_patch)
    cell = (z // token_patch) * grid * grid + (y // token_patch) * grid + x // token_patch  # canonical, row-major
    order = to_view(torch.arange(grid**3).view(grid, grid, grid), view).flatten()  # view token j -> canonical cell
    return int((order == cell).nonzero()[0, 0])


@torch.no_grad()
def cluster_volume(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The graph node of every voxel's token: ``x (B, 1, S, S, S)`` -> ``(B, S, S, S)`` int64 in ``[0, K)``.

    Raises ``ConfigError`` for a model without a graph (``graph_method="none"``).
    """
    was_training = model.training
    model.eval()
    graph = model.forward_features(x).graph
    model.train(was_training)
    if graph is None:
        raise ConfigError("this model has no visual graph (graph_method='none'): pass a model built with "
                          "graph_method 'kmeans', 'spectral' or 'mincut'")
    grid = model.grid
    return _to_voxels(graph.assignment.view(-1, grid, grid, grid), model.config.token_patch)


@torch.no_grad()
def attention_volume(model: nn.Module, x: torch.Tensor, position: Sequence[int], layer: int = 0,
                     view: str = "xy", head: int | None = None) -> torch.Tensor:
    """Layer ``layer``'s attention of the token covering ``position = (z, y, x)`` in view ``view`` over that
    view's tokens, on the canonical grid: ``x (B, 1, S, S, S)`` -> ``(B, S, S, S)``, each sample summing to
    ``token_patch^3`` (the weights, a distribution over tokens, repeated per voxel). ``head=None`` averages the
    heads. Needs the per-view encoder (``encoder_sequence="per_view"``, the paper's)."""
    if model.config.encoder_sequence != "per_view":
        raise ConfigError("attention_volume reads per-view attention maps: use a model with "
                          "encoder_sequence='per_view'")
    if view not in model.view_keys:
        raise ConfigError(f"view={view!r}: use one of the model's views {', '.join(model.view_keys)}")
    grid, patch = model.grid, model.config.token_patch
    query = token_index(position, model.views[model.view_keys.index(view)], grid, patch)
    was_training = model.training
    model.eval()
    maps = model.forward_features(x, return_attention=True).attention
    model.train(was_training)
    if not -len(maps) <= layer < len(maps):
        raise ConfigError(f"layer={layer}: the encoder has {len(maps)} layers, choose 0 .. {len(maps) - 1}")
    batch, index = x.shape[0], model.view_keys.index(view)
    weights = maps[layer][index * batch:(index + 1) * batch, :, query]  # (B, h, L): the query's row
    if head is None:
        weights = weights.mean(1)  # (B, L)
    elif 0 <= head < weights.shape[1]:
        weights = weights[:, head]
    else:
        raise ConfigError(f"head={head}: the model has {weights.shape[1]} heads, choose 0 .. {weights.shape[1] - 1}")
    cells = from_view(weights.reshape(batch, grid, grid, grid), model.views[index])  # (B, g, g, g) canonical
    return _to_voxels(cells.float(), patch)
