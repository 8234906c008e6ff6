"""Figures of the paper's three views for chapters 4 and 9: each view's image plane, and the missing wedge in it.

A view's tensor ``to_view(patch, view)`` is read as ``(depth, rows, cols)``: the image the view shows is a slice
of its last two dims, the plane ``view_plane(view)`` (XY: (y, x); YZ: (y, z); XZ: (z, x)). ``view_planes`` draws
that plane for every view through one point of the patch (e.g. the centre of a gold fiducial), so that the
missing wedge's elongation along z shows in YZ and XZ and not in XY; ``axis_widths`` puts a number on it.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from mvgtutor.errors import DataError
from mvgtutor.model.views import SPATIAL_AXES, VIEW_AXES, VIEWS, to_view, view_plane
from mvgtutor.viz.colors import add_class_legend
from mvgtutor.viz.slices import as_array, check_volume, display_range, draw_slice


def object_centre(labels, label: int) -> tuple[int, int, int]:
    """The voxel ``(z, y, x)`` nearest the centroid of the largest connected object labelled ``label`` in
    ``labels (D, H, W)`` (one fiducial, not the mean of several)."""
    from scipy import ndimage

    components, count = ndimage.label(as_array(labels) == label)
    if count == 0:
        raise DataError(f"no voxel is labelled {label}: choose a label present in the patch")
    largest = 1 + int(np.argmax(np.bincount(components.ravel())[1:]))
    return tuple(int(round(c)) for c in ndimage.center_of_mass(components == largest))


def axis_widths(patch, labels, label: int, level: float = 0.5) -> dict[str, int]:
    """How far the image of the object labelled ``label`` extends along z, y and x, in voxels.

    Through the centre of the largest such object, along each axis, the width of the run of voxels whose contrast
    (distance of the 3^3-smoothed image from its median grey level) stays above ``level`` times the contrast at
    the centre. A round object
    elongated by the missing wedge is wider along z than along y and x. ``patch``, ``labels``: ``(D, H, W)``.
    """
    volume = torch.as_tensor(as_array(patch)).float()
    check_volume(volume.numpy(), as_array(labels), "patch")
    centre = object_centre(labels, label)
    smooth = torch.nn.functional.avg_pool3d(volume[None, None], 3, stride=1, padding=1,
                                            count_include_pad=False)[0, 0]  # 3^3 mean: less noise
    contrast = (smooth - smooth.median()).abs()
    threshold = level * float(contrast[centre])
    widths = {}
    for dim, axis in enumerate(SPATIAL_AXES):
        line = contrast[tuple(slice(None) if d == dim else centre[d] for d in range(3))]  # (n,)
        above = (line >= threshold).tolist()
        low = high = centre[dim]
        while low > 0 and above[low - 1]:
            low -= 1
        while high < len(above) - 1 and above[high + 1]:
            high += 1
        widths[axis] = high - low + 1
    return widths


def view_planes(patch, labels=None, centre: Sequence[int] | None = None, views: Sequence[str] = VIEWS,
                opacity: float = 0.35, outline: int | None = None, size: float = 3.0) -> Figure:
    """Each view's image plane through ``centre`` ``(z, y, x)`` (default: the middle of the patch), side by side.

    ``patch`` and ``labels`` are ``(D, H, W)`` in the canonical grid. Every panel is a slice of the view's tensor
    along its first (depth) dim, drawn with its rows and columns named by the physical axes of ``view_plane``.
    With ``outline`` (a label), the labels are drawn as the outline of that class only, so the image shows through.
    """
    volume = torch.as_tensor(as_array(patch))
    label_volume = None if labels is None else torch.as_tensor(as_array(labels))
    check_volume(volume.numpy(), None if label_volume is None else label_volume.numpy(), "patch")
    centre = tuple(centre) if centre is not None else tuple(s // 2 for s in volume.shape)
    vrange = display_range(volume.numpy())
    fig, axes = plt.subplots(1, len(views), figsize=(size * len(views) + 1.6, size + 0.5), constrained_layout=True,
                             squeeze=False)
    for ax, view in zip(axes[0], views):
        depth_axis = VIEW_AXES[view][0]  # the canonical dim the view slices along
        index = centre[depth_axis]
        image = to_view(volume, view)[index].numpy()  # (rows, cols) = the view's image plane
        overlay = None if label_volume is None else to_view(label_volume, view)[index].numpy()
        rows, cols = view_plane(view)
        draw_slice(ax, image, None if outline is not None else overlay, opacity, vrange, xlabel=cols, ylabel=rows)
        if outline is not None and overlay is not None and (overlay == outline).any():
            ax.contour(overlay == outline, levels=[0.5], colors="cyan", linewidths=1.2)
        ax.set_title(f"{view.upper()} view: plane ({rows}, {cols})\n{SPATIAL_AXES[depth_axis]} = {index}",
                     fontsize="small")
    if label_volume is not None and outline is None:
        present = [int(i) for i in torch.unique(label_volume) if i > 0]
        if present:
            add_class_legend(axes[0, -1], present)
    return fig


def busiest_patch(labels: torch.Tensor, label: int) -> int:
    """Index of the patch with the most voxels of ``label`` in ``labels (N, D, H, W)`` (for a figure)."""
    counts = (labels == label).flatten(1).sum(1)
    if int(counts.max()) == 0:
        raise DataError(f"no patch holds label {label}: choose another class or a larger dataset")
    return int(counts.argmax())


def widths_table(widths: dict[str, int]) -> str:
    """One line per view: the two axes of its plane and the object's width along each, e.g. for chapter 4."""
    lines = []
    for view in VIEWS:
        rows, cols = view_plane(view)
        lines.append(f"{view.upper()}: plane ({rows}, {cols}), object {widths[rows]} x {widths[cols]} voxels"
                     + ("  <- z in the plane" if "z" in (rows, cols) else ""))
    return "\n".join(lines)




def cluster_sorted_attention(features, view: int = 0, head: int = 0, size: float = 4.2) -> Figure:
    """Chapter 5: the first (graph-guided) and second layers' attention maps of one head, ``L x L``, for sequence
    ``view`` of an ``EncoderOutput`` made with ``return_attention=True``, rows and columns sorted by cluster.
    Weights are shown times L (1 = uniform)."""
    order = features.assignments[view].argsort(stable=True)  # tokens sorted by cluster
    layers = [0, 1] if len(features.attention) > 1 else [0]
    fig, axes = plt.subplots(1, len(layers), figsize=(2.15 * size, size), constrained_layout=True, squeeze=False)
    for ax, layer in zip(axes[0], layers):
        matrix = features.attention[layer][view, head][order][:, order]  # (L, L)
        image = ax.imshow((matrix * matrix.shape[-1]).cpu().numpy(), cmap="viridis", interpolation="nearest")
        name = "layer 1 (graph-guided)" if layer == 0 else f"layer {layer + 1}"
        ax.set_title(f"{name}, head {head}, sequence {view}\nrows/columns sorted by cluster; L x weight",
                     fontsize="small")
        ax.set_xlabel("key token")
        ax.set_ylabel("query token")
        fig.colorbar(image, ax=ax, shrink=0.8)
    return fig


def query_attention_overlay(image, labels, features, token: int, patch: int, view: int = 0, head: int = 0,
                            size: float = 3.0) -> Figure:
    """Chapter 5: where token ``token`` of the XY sequence ``view`` looks, in the first and the last layer: its
    attention over the token grid, each token painted over its ``patch^3`` cube, on the middle z slice of
    ``image (D, H, W)``, beside the image and ``labels (D, H, W)`` (canonical grid)."""
    from mvgtutor.viz.colors import label_colormap, label_norm

    image, labels = as_array(image), as_array(labels)
    middle, grid = image.shape[0] // 2, image.shape[0] // patch
    fig, axes = plt.subplots(1, 4, figsize=(4 * size, size + 0.2), constrained_layout=True)
    axes[0].imshow(image[middle], cmap="gray", origin="lower")
    axes[0].set_title(f"image, z = {middle}", fontsize="small")
    axes[1].imshow(labels[middle], cmap=label_colormap(transparent_background=False), norm=label_norm(),
                   origin="lower", interpolation="nearest")
    axes[1].set_title("labels", fontsize="small")
    row, col = divmod(token % grid**2, grid)
    for ax, layer in zip(axes[2:], [0, len(features.attention) - 1]):
        weights = features.attention[layer][view, head, token].cpu()  # (L,) over keys, XY order = canonical
        cells = weights.view(grid, grid, grid) * weights.numel()
        voxels = cells.repeat_interleave(patch, 0).repeat_interleave(patch, 1).repeat_interleave(patch, 2)
        ax.imshow(image[middle], cmap="gray", origin="lower")
        shown = ax.imshow(voxels[middle].numpy(), cmap="magma", origin="lower", alpha=0.6)
        ax.plot([(col + 0.5) * patch], [(row + 0.5) * patch], "c+", markersize=12)
        ax.set_title(f"layer {layer + 1}: where token {token} looks", fontsize="small")
        fig.colorbar(shown, ax=ax, shrink=0.8)
    return fig
