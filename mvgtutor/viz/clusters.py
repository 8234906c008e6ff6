"""Figures of chapter 3: the inertia of k-means, and the clusters of the token cells painted onto a patch.

A cluster map is ``(g, g, g)`` (one cluster index per token cell, canonical (z, y, x) order) or, painted onto
voxels, ``(D, H, W)``; patches are ``(D, H, W)``. Clusters use matplotlib's ``tab20`` colours, never the class
colours (a cluster is not a class).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from mvgtutor.errors import DataError
from mvgtutor.viz.colors import label_colormap, label_norm
from mvgtutor.viz.slices import as_array


def cluster_colormap(num_clusters: int):
    """A qualitative colour map with one colour per cluster."""
    return plt.get_cmap("tab20", num_clusters)


def cluster_palette(num_clusters: int) -> list[int]:
    """The cluster colours as 0xRRGGBB integers (k3d's ``color_map`` for voxels 1..K)."""
    rgba = cluster_colormap(num_clusters)(range(num_clusters))
    return [int(255 * r) << 16 | int(255 * g) << 8 | int(255 * b) for r, g, b, _ in rgba]


def cells_to_voxels(assignment, grid: int, token_patch: int) -> torch.Tensor:
    """``assignment (N,)`` of the ``grid**3`` token cells -> ``(grid*p,)*3`` voxels, each cell on its p^3 cube."""
    cells = torch.as_tensor(as_array(assignment))
    if cells.numel() != grid**3:
        raise DataError(f"assignment has {cells.numel()} cells, expected grid**3 = {grid**3}")
    cells = cells.reshape(grid, grid, grid)
    for dim in range(3):
        cells = cells.repeat_interleave(token_patch, dim)
    return cells


def inertia_curve_figure(steps: Sequence[int], inertias: Sequence[float], title: str = "") -> Figure:
    """The k-means objective (eq. 3) after each number of Lloyd iterations."""
    fig, ax = plt.subplots(figsize=(4.5, 2.8), constrained_layout=True)
    ax.plot(list(steps), list(inertias), "o-")
    ax.set_xlabel("Lloyd iterations after k-means++")
    ax.set_ylabel("inertia (eq. 3)")
    ax.set_title(title, fontsize="small")
    return fig


def cluster_planes_figure(patch, labels, clusters, num_clusters: int, title: str = "") -> Figure:
    """Image, labels and clusters of a ``(D, H, W)`` patch on its middle x-y and x-z planes (a 2 x 3 grid).

    ``clusters`` is ``(D, H, W)``: the cluster of each voxel (``cells_to_voxels``).
    """
    patch, labels, clusters = (torch.as_tensor(as_array(a)) for a in (patch, labels, clusters))
    if not patch.shape == labels.shape == clusters.shape or patch.ndim != 3:
        raise DataError(f"patch {tuple(patch.shape)}, labels {tuple(labels.shape)} and clusters "
                        f"{tuple(clusters.shape)} must be one (D, H, W) shape")
    patch, labels, clusters = patch.numpy(), labels.numpy(), clusters.numpy()
    z, y = patch.shape[0] // 2, patch.shape[1] // 2
    planes = [(patch[z], labels[z], clusters[z], f"x-y plane (z = {z})", "y"),
              (patch[:, y], labels[:, y], clusters[:, y], f"x-z plane (y = {y})", "z")]
    fig, axes = plt.subplots(2, 3, figsize=(9, 6), constrained_layout=True)
    for row, (image, label, cluster, name, vertical) in zip(axes, planes):
        row[0].imshow(image, cmap="gray", origin="lower")
        row[0].set_title(f"image, {name}", fontsize="small")
        row[1].imshow(label, cmap=label_colormap(transparent_background=False), norm=label_norm(), origin="lower",
                      interpolation="nearest")
        row[1].set_title("labels (the course's class colours)", fontsize="small")
        row[2].imshow(cluster, cmap=cluster_colormap(num_clusters), origin="lower", interpolation="nearest",
                      vmin=-0.5, vmax=num_clusters - 0.5)
        row[2].set_title("clusters of the token cells", fontsize="small")
        for ax in row:
            ax.set_xlabel("x")
            ax.set_ylabel(vertical)
    if title:
        fig.suptitle(title)
    return fig


def graph_methods_figure(assignments: Mapping[str, object], grid: int, num_clusters: int,
                         scores: Mapping[str, float] | None = None) -> Figure:
    """The middle z-plane of the token grid, coloured by cluster, for each graph method's ``assignment (N,)``."""
    fig, axes = plt.subplots(1, len(assignments), figsize=(3 * len(assignments), 3.2), constrained_layout=True,
                             squeeze=False)
    for ax, (method, assignment) in zip(axes[0], assignments.items()):
        plane = torch.as_tensor(as_array(assignment)).reshape(grid, grid, grid)[grid // 2].numpy()
        ax.imshow(plane, cmap=cluster_colormap(num_clusters), origin="lower", vmin=-0.5, vmax=num_clusters - 0.5)
        score = f": inertia {scores[method]:.3g}" if scores and method in scores else ""
        ax.set_title(f"{method}{score}", fontsize="small")
        ax.set_xlabel("x (token)")
        ax.set_ylabel("y (token)")
    fig.suptitle("cluster of each token cell, middle z-plane")
    return fig
