"""The visual graph of Sec. 4.1: cluster the context features, the cluster means are the graph nodes.

Every builder has the same interface: features ``(B, N, C)`` (one row per token-grid cell) in, a ``Graph`` out,
with ``nodes (B, K, C)`` and ``assignment (B, N)`` (the cluster of each cell). All of them run on the whole batch
at once, as tensor operations (no Python loop over samples), on whatever device the features live on.

* ``kmeans``: the paper's choice (eqs. 3-5), k-means++ initialisation and a fixed number of Lloyd iterations.
* ``spectral_clustering``: k-means on the leading eigenvectors of the normalised feature-affinity matrix.
* ``MinCutPool``: a learned soft assignment trained with the min-cut and orthogonality losses.

The discrete clustering runs without gradients; the nodes are then recomputed as cluster means of the
features *with* gradients (eq. 5), so the context encoder learns through them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from mvgtutor.errors import ConfigError, check_choice

GRAPH_METHODS: tuple[str, ...] = ("kmeans", "spectral", "mincut", "none")


@dataclass
class Graph:
    """A visual graph: ``nodes (B, K, C)``, ``assignment (B, N)`` in ``[0, K)``, optional ``aux_loss`` (scalar)."""

    nodes: torch.Tensor
    assignment: torch.Tensor
    aux_loss: torch.Tensor | None = None


def _check_clusters(num_points: int, num_clusters: int) -> None:
    if not 1 <= num_clusters <= num_points:
        raise ConfigError(
            f"num_clusters={num_clusters} does not fit {num_points} token-grid cells: choose 1 <= K <= {num_points}"
        )


def _squared_distances(points: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """``||p - c||^2`` for every pair: points ``(B, N, C)``, centers ``(B, K, C)`` -> ``(B, N, K)``."""
    return torch.cdist(points, centers).square()


def nearest_center(points: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """Eq. 4: the index of the closest center for each point. ``(B, N, C), (B, K, C) -> (B, N)``."""
    return _squared_distances(points, centers).argmin(dim=-1)


def cluster_means(
    features: torch.Tensor, assignment: torch.Tensor, num_clusters: int, fallback: torch.Tensor | None = None
) -> torch.Tensor:
    """Eq. 5: the mean feature of each cluster. ``(B, N, C), (B, N) -> (B, K, C)``.

    An empty cluster keeps ``fallback`` (its previous center, ``(B, K, C)``) or zeros when none is given.
    """
    one_hot = F.one_hot(assignment, num_clusters).to(features.dtype)  # (B, N, K)
    sums = one_hot.transpose(1, 2) @ features  # (B, K, C)
    counts = one_hot.sum(dim=1).unsqueeze(-1)  # (B, K, 1)
    means = sums / counts.clamp(min=1)
    if fallback is not None:
        means = torch.where(counts > 0, means, fallback.to(means.dtype))
    return means


def inertia(points: torch.Tensor, centers: torch.Tensor, assignment: torch.Tensor) -> torch.Tensor:
    """Eq. 3's objective: the summed squared distance of each point to its center. -> ``(B,)``."""
    chosen = torch.gather(centers, 1, assignment.unsqueeze(-1).expand(-1, -1, centers.shape[-1]))  # (B, N, C)
    return (points - chosen).square().sum(dim=(1, 2))


def kmeans_plus_plus(points: torch.Tensor, num_clusters: int, generator: torch.Generator | None = None,
                     local_trials: int | None = None) -> torch.Tensor:
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007, as in scikit-learn). ``(B, N, C) -> (B, K, C)``.

    Each new center is the best of ``local_trials`` candidates drawn with probability proportional to the squared
    distance to the closest center so far. The loop runs over the K centers, never over samples.

    **Batch-independent**: the ``1 + (K - 1) * trials`` uniform numbers are drawn once from ``generator`` and
    shared by every sample, and each sample turns them into its own candidates by inverse-CDF sampling of its own
    weights. A sample's centers therefore depend only on the sample and the generator's state, never on the other
    samples of the batch or on its position in it (a patch alone or inside any batch gets the same graph).
    """
    batch, num_points, _ = points.shape
    _check_clusters(num_points, num_clusters)
    trials = local_trials or 2 + int(math.log(num_clusters))
    uniforms = torch.rand(1 + (num_clusters - 1) * trials, generator=generator, device=points.device)  # shared
    rows = torch.arange(batch, device=points.device)
    first = (uniforms[0] * num_points).long().clamp(max=num_points - 1).expand(batch)  # (B,) the same cell index
    centers = [points[rows, first]]  # K x (B, C)
    closest = (points - centers[0].unsqueeze(1)).square().sum(-1)  # (B, N) squared distance to nearest center
    for k in range(1, num_clusters):
        weights = closest + 1e-12 * (closest.sum(-1, keepdim=True) == 0)  # uniform when every point is a center
        cdf = weights.double().cumsum(-1)  # (B, N), per sample
        draws = uniforms[1 + (k - 1) * trials:1 + k * trials].double()  # (T,) the same for every sample
        candidates = torch.searchsorted(cdf, draws.unsqueeze(0) * cdf[:, -1:], right=True)  # (B, T)
        candidates = candidates.clamp(max=num_points - 1)
        candidate_points = torch.gather(points, 1, candidates.unsqueeze(-1).expand(-1, -1, points.shape[-1]))
        to_candidates = _squared_distances(points, candidate_points)  # (B, N, T)
        potentials = torch.minimum(closest.unsqueeze(-1), to_candidates).sum(1)  # (B, T)
        best = potentials.argmin(-1)  # (B,)
        centers.append(candidate_points[rows, best])
        closest = torch.minimum(closest, to_candidates[rows, :, best])
    return torch.stack(centers, dim=1)  # (B, K, C)


@torch.no_grad()
def lloyd(points: torch.Tensor, centers: torch.Tensor, iters: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``iters`` Lloyd steps (eqs. 4-5) from ``centers (B, K, C)`` on ``points (B, N, C)``; returns the final
    ``(centers (B, K, C), assignment (B, N))``. Pair it with your own seeding to compare initialisations."""
    num_clusters = centers.shape[1]
    for _ in range(iters):
        assignment = nearest_center(points, centers)  # eq. 4
        centers = cluster_means(points, assignment, num_clusters, fallback=centers)  # eq. 5
    return centers, nearest_center(points, centers)




def kmeans(features: torch.Tensor, num_clusters: int, iters: int = 10,
           generator: torch.Generator | None = None) -> Graph:
    """Eqs. 3-5: batched k-means with k-means++ seeding and a fixed iteration budget. ``(B, N, C) -> Graph``.

    Deterministic for a given ``generator`` (on the features' device). Nodes carry gradients to ``features``.
    """
    points = features.detach().float()
    with torch.no_grad():
        centers = kmeans_plus_plus(points, num_clusters, generator)
    centers, assignment = lloyd(points, centers, iters)
    nodes = cluster_means(features, assignment, num_clusters, fallback=centers.to(features.dtype))  # eq. 5
    return Graph(nodes=nodes, assignment=assignment)


@torch.no_grad()
def spectral_embedding(features: torch.Tensor, num_clusters: int, neighbours: int = 7) -> torch.Tensor:
    """Rows of the K leading eigenvectors of the normalised affinity (Ng, Jordan & Weiss 2002). -> ``(B, N, K)``.

    Self-tuning affinity ``exp(-||f_i - f_j||^2 / (s_i s_j))``, ``s_i`` the distance from ``f_i`` to its
    ``neighbours``-th nearest neighbour (Zelnik-Manor & Perona 2004): local, so elongated clusters stay whole.
    """
    points = features.float()
    distances = torch.cdist(points, points).square()  # (B, N, N)
    k = min(neighbours, points.shape[1] - 1)
    scale = distances.kthvalue(k + 1, dim=-1).values.clamp(min=1e-12).sqrt()  # (B, N); +1 skips the point itself
    affinity = torch.exp(-distances / (scale.unsqueeze(-1) * scale.unsqueeze(-2)))
    affinity = affinity - torch.diag_embed(torch.diagonal(affinity, dim1=1, dim2=2))  # no self-loops
    inv_sqrt_degree = affinity.sum(-1).clamp(min=1e-12).rsqrt()  # (B, N)
    normalised = inv_sqrt_degree.unsqueeze(-1) * affinity * inv_sqrt_degree.unsqueeze(-2)  # D^-1/2 W D^-1/2
    _, vectors = torch.linalg.eigh(normalised)  # ascending eigenvalues
    leading = vectors[..., -num_clusters:]  # (B, N, K)
    return F.normalize(leading, dim=-1)


def spectral_clustering(features: torch.Tensor, num_clusters: int, iters: int = 10,
                        generator: torch.Generator | None = None) -> Graph:
    """Spectral clustering of the token grid (Table 9's "spectral"). ``(B, N, C) -> Graph``."""
    _check_clusters(features.shape[1], num_clusters)
    embedding = spectral_embedding(features.detach(), num_clusters)  # (B, N, K)
    assignment = kmeans(embedding, num_clusters, iters, generator).assignment
    nodes = cluster_means(features, assignment, num_clusters)  # eq. 5 on the context features
    return Graph(nodes=nodes, assignment=assignment)


def grid_adjacency(grid: int) -> torch.Tensor:
    """The 6-neighbourhood adjacency of a ``grid^3`` token grid, row-major cells. -> ``(grid^3, grid^3)``."""
    index = torch.arange(grid**3).view(grid, grid, grid)
    adjacency = torch.zeros(grid**3, grid**3)
    for dim in range(3):
        here = index.narrow(dim, 0, grid - 1).flatten()
        there = index.narrow(dim, 1, grid - 1).flatten()
        adjacency[here, there] = 1.0
        adjacency[there, here] = 1.0
    return adjacency


class MinCutPool(nn.Module):
    """MinCutPool (Bianchi et al. 2020) on the token grid: a learned soft assignment ``S = softmax(MLP(f))``.

    Nodes are soft cluster means ``S^T f / sum(S)`` (means rather than the original's sums, so that they live on
    the same scale as the k-means nodes); ``aux_loss`` is the min-cut loss plus the orthogonality loss.
    """

    def __init__(self, channels: int, num_clusters: int, grid: int):
        super().__init__()
        self.num_clusters = num_clusters
        self.assign = nn.Sequential(nn.Linear(channels, channels), nn.ReLU(), nn.Linear(channels, num_clusters))
        self.register_buffer("adjacency", grid_adjacency(grid), persistent=False)  # (N, N)

    def forward(self, features: torch.Tensor) -> Graph:
        """``features (B, N, C) -> Graph`` with soft-mean nodes and the MinCutPool losses."""
        _check_clusters(features.shape[1], self.num_clusters)
        if features.shape[1] != self.adjacency.shape[0]:
            raise ConfigError(f"MinCutPool was built for {self.adjacency.shape[0]} cells, got {features.shape[1]}: "
                              f"build it with the token grid of this input size")
        soft = self.assign(features).softmax(-1)  # (B, N, K)
        mass = soft.sum(1).unsqueeze(-1)  # (B, K, 1)
        nodes = (soft.transpose(1, 2) @ features) / mass.clamp(min=1e-6)  # (B, K, C)
        adjacency = self.adjacency.to(soft.dtype)
        degree = adjacency.sum(-1)  # (N,)
        cut = torch.einsum("bnk,nm,bmk->b", soft, adjacency, soft)  # Tr(S^T A S)
        volume = torch.einsum("bnk,n,bnk->b", soft, degree, soft)  # Tr(S^T D S)
        mincut_loss = -(cut / volume).mean()
        gram = soft.transpose(1, 2) @ soft  # (B, K, K)
        identity = torch.eye(self.num_clusters, device=soft.device, dtype=soft.dtype) / math.sqrt(self.num_clusters)
        ortho_loss = (gram / gram.norm(dim=(1, 2), keepdim=True) - identity).norm(dim=(1, 2)).mean()
        return Graph(nodes=nodes, assignment=soft.argmax(-1), aux_loss=mincut_loss + ortho_loss)


class VisualGraph(nn.Module):
    """The graph builder of the model: ``method`` in ``GRAPH_METHODS`` (``"none"`` builds no graph)."""

    def __init__(self, method: str, channels: int, num_clusters: int, iters: int, grid: int):
        super().__init__()
        check_choice("graph_method", method, GRAPH_METHODS)
        self.method, self.num_clusters, self.iters = method, num_clusters, iters
        self.mincut = MinCutPool(channels, num_clusters, grid) if method == "mincut" else None

    def forward(self, features: torch.Tensor, generator: torch.Generator | None = None) -> Graph | None:
        """``features (B, N, C) -> Graph`` (``None`` for ``method="none"``)."""
        if self.method == "kmeans":
            return kmeans(features, self.num_clusters, self.iters, generator)
        if self.method == "spectral":
            return spectral_clustering(features, self.num_clusters, self.iters, generator)
        if self.method == "mincut":
            return self.mincut(features)
        return None


def build_graph(features: torch.Tensor, method: str = "kmeans", num_clusters: int = 16, iters: int = 10,
                generator: torch.Generator | None = None) -> Graph:
    """Functional entry point for the parameter-free builders: ``features (B, N, C) -> Graph``.

    ``method`` is ``"kmeans"`` or ``"spectral"`` (MinCutPool has weights: use ``MinCutPool`` or ``VisualGraph``).
    """
    if method == "kmeans":
        return kmeans(features, num_clusters, iters, generator)
    if method == "spectral":
        return spectral_clustering(features, num_clusters, iters, generator)
    raise ConfigError(f"build_graph takes method 'kmeans' or 'spectral', got {method!r}: "
                      f"use MinCutPool(channels, K, grid) for 'mincut'")
