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


def central_particle(particles, shape: Sequence[int], label: int):
    """Of the ``particles`` with ``label``, the one farthest from the faces of a volume of ``shape`` ``(Z, Y, X)``
    (None when there is none): the best one to show whole in a cube cut around it."""
    def margin(particle):
        return min(min(i, n - 1 - i) for i, n in zip(particle.zyx_index, shape))

    candidates = [p for p in particles if p.label == label]
    return max(candidates, key=margin) if candidates else None


def crop_around(volume, center: Sequence[int], size: int):
    """A ``(size, size, size)`` cube of a ``(Z, Y, X)`` volume around ``center`` ``(z, y, x)``, shifted to stay
    inside the volume. Returns the cube (a torch tensor) and ``center``'s ``(z, y, x)`` inside it."""
    volume = torch.as_tensor(as_array(volume))
    if volume.ndim != 3 or min(volume.shape) < size:
        raise DataError(f"cannot cut a {size}^3 cube out of a volume of shape {tuple(volume.shape)}")
    starts = [min(max(int(c) - size // 2, 0), n - size) for c, n in zip(center, volume.shape)]
    cube = volume[tuple(slice(a, a + size) for a in starts)]
    return cube, tuple(int(c) - a for c, a in zip(center, starts))


def view_slices(patch, labels=None, views: Sequence[str] = VIEWS, opacity: float = 0.4, size: float = 3.0,
                center: Sequence[int] | None = None) -> Figure:
    """The paper's views of one ``(D, H, W)`` patch side by side: each view's tensor sliced along its *first*
    (slicing) axis through ``center`` ``(z, y, x)`` (default: the middle), so each panel is that view's image
    plane through that point, with the physical axes written on it.

    ``xy`` shows the plane (y, x), ``yz`` the plane (y, z) and ``xz`` the plane (z, x)
    (``mvgtutor.model.views``): the two views whose plane holds z show the missing wedge's elongation along z.
    """
    patch = torch.as_tensor(as_array(patch))
    label_patch = None if labels is None else torch.as_tensor(as_array(labels))
    check_volume(patch.numpy(), None if label_patch is None else label_patch.numpy(), "patch")
    vrange = display_range(patch.numpy())
    fig, axes = plt.subplots(1, len(views), figsize=(size * len(views) + 1.6, size + 0.4),
                             constrained_layout=True, squeeze=False)
    for ax, view in zip(axes[0], views):
        order = view_permutation(view, ndim=3)
        viewed = patch.permute(order)  # (A0, A1, A2) in the view's axis order: A0 slices, (A1, A2) the plane
        middle = viewed.shape[0] // 2 if center is None else int(center[order[0]])  # the slicing axis' coordinate
        overlay = None if label_patch is None else label_patch.permute(order)[middle].numpy()
        depth, rows, cols = view_axis_names(view)
        # rows = dim 0, cols = dim 1 of the slice; origin="lower" puts row 0 at the bottom
        draw_slice(ax, viewed[middle].numpy(), overlay, opacity, vrange, xlabel=cols, ylabel=rows)
        ax.set_title(f"{view.upper()} view: plane ({rows}, {cols})\nslice {depth} = {middle}", fontsize="small")
    if label_patch is not None:
        present = [int(i) for i in torch.unique(label_patch) if i > 0]
        if present:
            add_class_legend(axes[0, -1], present)
    return fig


def correlation_lengths(volume, max_side: int = 128) -> dict[str, float]:
    """How far, in voxels, a ``(Z, Y, X)`` volume stays correlated along z, y and x.

    The autocorrelation of the (mean-free) volume, computed by FFT on a central crop of at most ``max_side``
    per axis, falls from 1 at lag 0; the length is the lag where it reaches 1/2 (linear interpolation). Blobs
    stretched along z (the missing wedge) give a longer length along z than along y and x.
    """
    volume = torch.as_tensor(as_array(volume), dtype=torch.float32)
    if volume.ndim != 3:
        raise DataError(f"volume must be a 3D (Z, Y, X) array, got shape {tuple(volume.shape)}")
    starts = [max(0, (s - max_side) // 2) for s in volume.shape]
    crop = volume[tuple(slice(a, a + max_side) for a in starts)]
    crop = crop - crop.mean()
    spectrum = torch.fft.rfftn(crop, s=[2 * s for s in crop.shape])  # zero-padded: no wrap-around
    auto = torch.fft.irfftn(spectrum.abs().square(), s=[2 * s for s in crop.shape])
    auto = auto / auto[0, 0, 0].clamp_min(1e-12)
    lengths = {}
    for dim, name in enumerate(AXIS_NAMES):
        index = [0, 0, 0]
        index[dim] = slice(0, crop.shape[dim])
        profile = auto[tuple(index)]  # (n,) autocorrelation along one axis, lag 0 first
        below = torch.nonzero(profile < 0.5)
        if len(below) == 0:
            lengths[name] = float(len(profile))
            continue
        lag = int(below[0])
        high, low = float(profile[lag - 1]), float(profile[lag])
        lengths[name] = lag - 1 + (high - 0.5) / max(high - low, 1e-12)
    return lengths


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
