"""Table 14's view-diversity metrics, eqs. 10-11: how different are the features the views produce?

The paper gives (Sec. 5.3.2, eqs. 10-11)

    CosSim(v1, v2) = f(v1) . f(v2) / (||f(v1)|| ||f(v2)||),        FDS(v1, v2) = 1/N sum_i ||f_i(v1) - f_i(v2)||_2^2

and calls FDS the "normalized feature diversity score". Which features ``f`` are compared, and what is normalised,
it does not say; **our reading**: ``f(v)`` is view ``v``'s last-layer encoder tokens re-arranged to the canonical
token grid (so that ``f_i(v1)`` and ``f_i(v2)`` describe the same place in the patch), CosSim takes the whole
feature map of a patch as one vector, and FDS L2-normalises each token's feature before the difference
(``normalize=False`` gives the raw squared distance). With normalised tokens FDS lies in [0, 4] and is
``2 - 2 x`` the mean per-token cosine. Both are averaged over the patches of a batch.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from mvgtutor.errors import ConfigError
from mvgtutor.model.decoders import tokens_to_grid
from mvgtutor.model.views import from_view


def _check_pair(first: torch.Tensor, second: torch.Tensor) -> None:
    if first.shape != second.shape or first.ndim != 3:
        raise ConfigError(f"view features must both be (B, N, C), got {tuple(first.shape)} and "
                          f"{tuple(second.shape)}: pass tokens of the same patches on the same grid")


def cosine_similarity(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Eq. 10, per patch then averaged: ``first, second (B, N, C)`` (the same N places) -> scalar in [-1, 1]."""
    _check_pair(first, second)
    return F.cosine_similarity(first.flatten(1).float(), second.flatten(1).float(), dim=1).mean()


def feature_diversity(first: torch.Tensor, second: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """Eq. 11: ``1/N sum_i ||f_i(v1) - f_i(v2)||^2`` over the N places, averaged over patches: ``(B, N, C)`` pair
    -> scalar; ``normalize`` L2-normalises each token first (our reading of "normalized")."""
    _check_pair(first, second)
    first, second = first.float(), second.float()
    if normalize:
        first, second = F.normalize(first, dim=-1), F.normalize(second, dim=-1)
    return (first - second).square().sum(-1).mean()


@torch.no_grad()
def canonical_view_features(model: nn.Module, x: torch.Tensor, layer: int = -1) -> dict[str, torch.Tensor]:
    """Layer ``layer``'s tokens of every view of an MVGFormer, on the canonical token grid (the same place at the
    same index in every view): ``x (B, 1, S, S, S)`` -> ``{view key: (B, g^3, C)}``. The model runs in eval mode
    and is left in the mode it was in."""
    was_training = model.training
    model.eval()
    per_view = model.forward_features(x).per_view(layer)  # (V, B, L, C), each in its view's order
    model.train(was_training)
    return {key: from_view(tokens_to_grid(per_view[i], model.grid), view).flatten(2).transpose(1, 2)
            for i, (key, view) in enumerate(zip(model.view_keys, model.views))}


def view_diversity(model: nn.Module, x: torch.Tensor, layer: int = -1) -> dict[tuple[str, str], dict[str, float]]:
    """Table 14 for one batch: ``{(v1, v2): {"cos_sim": eq. 10, "fds": eq. 11}}`` for every pair of views."""
    features = canonical_view_features(model, x, layer)
    return {(a, b): {"cos_sim": float(cosine_similarity(features[a], features[b])),
                     "fds": float(feature_diversity(features[a], features[b]))}
            for a, b in itertools.combinations(features, 2)}
