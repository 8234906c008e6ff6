"""Matplotlib views of volumes: orthoslices with label overlays, the three views of a patch, projections.

Every function takes ``(Z, Y, X)`` arrays (numpy, memory maps or torch tensors), returns a
``matplotlib.figure.Figure`` (so a notebook shows it and a script can save it), and colours labels with the
course's shared map (``mvgtutor.viz.colors``). Images are drawn with ``origin="lower"``: y (or z) grows upward.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from mvgtutor.errors import DataError
from mvgtutor.model.views import VIEWS, view_permutation
from mvgtutor.viz.colors import add_class_legend, class_rgb, label_rgba

AXIS_NAMES = ("z", "y", "x")  # the physical axis of array dims 0, 1, 2


def as_array(volume) -> np.ndarray:
    """A numpy array of a numpy array, memory map or (CPU/CUDA) torch tensor."""
    if torch.is_tensor(volume):
        return volume.detach().cpu().numpy()
    return np.asarray(volume)


def display_range(volume, low: float = 1.0, high: float = 99.0) -> tuple[float, float]:
    """Grey-level limits: the ``low`` and ``high`` percentiles (robust to gold fiducials and outliers)."""
    values = as_array(volume).astype(np.float32, copy=False).ravel()
    if values.size > 2_000_000:  # a strided sample is enough for percentiles
        values = values[:: values.size // 1_000_000]
    vmin, vmax = (float(v) for v in np.percentile(values, [low, high]))
    if vmax <= vmin:  # a constant image
        vmax = vmin + 1.0
    return vmin, vmax


def check_volume(volume: np.ndarray, labels: np.ndarray | None, name: str = "volume") -> None:
    """Raise ``DataError`` unless ``volume`` is 3D and ``labels`` (if given) has its shape."""
    if volume.ndim != 3:
        raise DataError(f"{name} must be a 3D (Z, Y, X) array, got shape {volume.shape}")
    if labels is not None and labels.shape != volume.shape:
        raise DataError(f"labels of shape {labels.shape} do not match the {name}'s {volume.shape}")


def draw_slice(ax, image: np.ndarray, labels: np.ndarray | None = None, opacity: float = 0.4,
               vrange: tuple[float, float] | None = None, xlabel: str = "", ylabel: str = "") -> None:
    """Draw one 2D ``image (rows, cols)`` in grey with an optional ``labels (rows, cols)`` overlay on ``ax``."""
    vmin, vmax = vrange or display_range(image)
    ax.imshow(image, cmap="gray", vmin=vmin, vmax=vmax, origin="lower", interpolation="nearest")
    if labels is not None and opacity > 0:
        ax.imshow(label_rgba(labels, opacity), origin="lower", interpolation="nearest")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.tick_params(labelsize="x-small")


def orthoslices(volume, labels=None, center: Sequence[int] | None = None, opacity: float = 0.4,
                title: str | None = None, legend: bool = True, size: float = 3.2) -> Figure:
    """Three orthogonal slices through ``center`` ``(z, y, x)`` (default: the middle) of a ``(Z, Y, X)`` volume.

    Panels: the x-y plane at z, the x-z plane at y, the y-z plane at x, each with the ``labels (Z, Y, X)``
    overlay (``opacity`` 0 hides it) and a legend of the classes visible in them.
    """
    volume = as_array(volume)
    labels = None if labels is None else as_array(labels)
    check_volume(volume, labels)
    z, y, x = center if center is not None else tuple(s // 2 for s in volume.shape)
    vrange = display_range(volume)
    planes = [  # (image, labels, title, xlabel, ylabel)
        (volume[z], None if labels is None else labels[z], f"x-y plane at z = {z}", "x", "y"),
        (volume[:, y], None if labels is None else labels[:, y], f"x-z plane at y = {y}", "x", "z"),
        (volume[:, :, x], None if labels is None else labels[:, :, x], f"y-z plane at x = {x}", "y", "z"),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(3 * size + (1.6 if legend and labels is not None else 0), size),
                             constrained_layout=True)
    for ax, (image, overlay, name, xlabel, ylabel) in zip(axes, planes):
        draw_slice(ax, np.asarray(image), overlay, opacity, vrange, xlabel, ylabel)
        ax.set_title(name, fontsize="small")
    if legend and labels is not None:  # the classes visible in the three planes
        present = sorted(set().union(*(np.unique(plane[1]).tolist() for plane in planes)) - {0})
        if present:
            add_class_legend(axes[-1], present)
    if title:
        fig.suptitle(title)
    return fig


def view_axis_names(view: str) -> tuple[str, str, str]:
    """The physical axes (``"z"``, ``"y"``, ``"x"``) of a volume's three dims after ``to_view(volume, view)``."""
    order = view_permutation(view, ndim=3)
    return tuple(AXIS_NAMES[i] for i in order)


def view_slices(patch, labels=None, views: Sequence[str] = VIEWS, opacity: float = 0.4,
                size: float = 3.0) -> Figure:
    """The paper's views of one ``(D, H, W)`` patch side by side: each view's tensor, sliced in the middle of
    its *last* axis, with the physical axis of each image axis written on it.

    Each view re-orders the same voxels (``mvgtutor.model.views.to_view``); slicing each along its own last
    axis shows which physical plane that view lays out as rows and columns.
    """
    patch = torch.as_tensor(as_array(patch))
    label_patch = None if labels is None else torch.as_tensor(as_array(labels))
    check_volume(patch.numpy(), None if label_patch is None else label_patch.numpy(), "patch")
    vrange = display_range(patch.numpy())
    fig, axes = plt.subplots(1, len(views), figsize=(size * len(views) + 1.6, size + 0.4),
                             constrained_layout=True, squeeze=False)
    for ax, view in zip(axes[0], views):
        order = view_permutation(view, ndim=3)
        viewed = patch.permute(order)  # (A0, A1, A2) in the view's axis order
        middle = viewed.shape[-1] // 2
        overlay = None if label_patch is None else label_patch.permute(order)[..., middle].numpy()
        rows, cols, depth = view_axis_names(view)
        # rows = dim 0, cols = dim 1 of the slice; origin="lower" puts row 0 at the bottom
        draw_slice(ax, viewed[..., middle].numpy(), overlay, opacity, vrange, xlabel=cols, ylabel=rows)
        ax.set_title(f"{view.upper()} view: dims ({rows}, {cols}, {depth})\nslice {depth} = {middle}",
                     fontsize="small")
    if label_patch is not None:
        present = [int(i) for i in torch.unique(label_patch) if i > 0]
        if present:
            add_class_legend(axes[0, -1], present)
    return fig


def first_hit_labels(labels: np.ndarray, axis: int) -> np.ndarray:
    """Project a label volume along ``axis``: per ray, the first non-background label (0 where none)."""
    foreground = labels > 0
    first = np.argmax(foreground, axis=axis)  # index of the first foreground voxel on each ray
    hit = np.take_along_axis(labels, np.expand_dims(first, axis), axis=axis).squeeze(axis)
    return np.where(foreground.any(axis=axis), hit, 0)


def projections(volume, labels=None, particles=None, opacity: float = 0.6, title: str | None = None,
                size: float = 3.2) -> Figure:
    """A static stand-in for the 3D scene: mean projections of a ``(Z, Y, X)`` volume along z, y and x, with
    the first label each ray meets, and the particle centres (``Particle``s) as dots.
    """
    volume = as_array(volume).astype(np.float32, copy=False)
    labels = None if labels is None else as_array(labels)
    check_volume(volume, labels)
    fig, axes = plt.subplots(1, 3, figsize=(3 * size + (1.6 if labels is not None else 0), size),
                             constrained_layout=True)
    layout = [(0, "x", "y", "along z"), (1, "x", "z", "along y"), (2, "y", "z", "along x")]
    for ax, (axis, xlabel, ylabel, name) in zip(axes, layout):
        image = volume.mean(axis=axis)
        overlay = None if labels is None else first_hit_labels(labels, axis)
        draw_slice(ax, image, overlay, opacity, None, xlabel, ylabel)
        if particles:
            coords = {"x": [p.x for p in particles], "y": [p.y for p in particles], "z": [p.z for p in particles]}
            colors = [class_rgb(p.label) for p in particles]
            ax.scatter(coords[xlabel], coords[ylabel], s=6, c=colors, edgecolors="black", linewidths=0.3)
        ax.set_title(f"projection {name}", fontsize="small")
    if labels is not None:
        present = [int(i) for i in np.unique(labels) if i > 0]
        if present:
            add_class_legend(axes[-1], present)
    if title:
        fig.suptitle(title)
    return fig
