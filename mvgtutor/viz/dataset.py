"""Figures of chapter 2: class balance, the patch grid, augmented copies, and the missing wedge in Fourier space.

Volumes are ``(Z, Y, X)`` arrays or tensors, patches ``(D, H, W)``; every function returns a
``matplotlib.figure.Figure``, in the course's class colours (``mvgtutor.data.classes.CLASSES``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from mvgtutor.data.classes import CLASSES
from mvgtutor.errors import DataError
from mvgtutor.viz.slices import as_array, draw_slice


def class_balance_figure(fraction, title: str = "class balance") -> Figure:
    """A log-scale bar per class of ``fraction (num_classes,)``, the share of voxels each class owns."""
    fraction = as_array(fraction).astype(float)
    if fraction.shape != (len(CLASSES),):
        raise DataError(f"fraction must hold one value per class ({len(CLASSES)}), got shape {fraction.shape}")
    fig, ax = plt.subplots(figsize=(9, 3.2), constrained_layout=True)
    ax.bar([f"{c.label} {c.name}" for c in CLASSES], fraction, color=[c.color for c in CLASSES], edgecolor="black")
    ax.set_yscale("log")
    ax.set_ylabel("fraction of voxels")
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=60, labelsize="small")
    return fig


def patch_grid_figure(image, patch_size: int, z: int | None = None, size: float = 4.2) -> Figure:
    """The x-y plane of a ``(Z, Y, X)`` volume at ``z`` (default: the middle) with the patch borders drawn on it."""
    image = as_array(image)
    if image.ndim != 3:
        raise DataError(f"image must be a 3D (Z, Y, X) volume, got shape {image.shape}")
    z = image.shape[0] // 2 if z is None else z
    fig, ax = plt.subplots(figsize=(size, size), constrained_layout=True)
    ax.imshow(image[z], cmap="gray", origin="lower")
    for edge in range(0, image.shape[2] + 1, patch_size):
        ax.axvline(edge - 0.5, color="tab:orange", linewidth=1)
    for edge in range(0, image.shape[1] + 1, patch_size):
        ax.axhline(edge - 0.5, color="tab:orange", linewidth=1)
    ax.set_title(f"the patch grid on the x-y plane at z = {z}", fontsize="small")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    return fig


def augmentation_figure(images, labels, names: Sequence[str] | None = None, size: float = 2.2) -> Figure:
    """Copies of one patch side by side: ``images (N, 1, D, H, W)`` or ``(N, D, H, W)`` with ``labels
    (N, D, H, W)``, each shown as its x-y plane at the middle z with the labels laid over it."""
    images = torch.as_tensor(as_array(images))
    labels = torch.as_tensor(as_array(labels))
    images = images[:, 0] if images.ndim == 5 else images
    if images.shape != labels.shape:
        raise DataError(f"images {tuple(images.shape)} and labels {tuple(labels.shape)} must have the same shape")
    names = list(names) if names is not None else [f"copy {k}" for k in range(len(images))]
    middle = images.shape[1] // 2
    fig, axes = plt.subplots(1, len(images), figsize=(size * len(images), size * 1.2), constrained_layout=True,
                             squeeze=False)
    for ax, image, label, name in zip(axes[0], images, labels, names):
        draw_slice(ax, image[middle].numpy(), label[middle].numpy(), opacity=0.45, xlabel="x", ylabel="y")
        ax.set_title(f"{name} (z = {middle})", fontsize="small")
    return fig


def log_amplitude(volume) -> torch.Tensor:
    """``log(1 + |FFT|)`` of a ``(Z, Y, X)`` volume, zero frequency at the centre (for display), ``(Z, Y, X)``."""
    volume = torch.as_tensor(as_array(volume), dtype=torch.float32)
    return torch.fft.fftshift(torch.fft.fftn(volume)).abs().log1p()


def wedge_spectra_figure(volumes: Mapping[str, object], size: float = 3.6) -> Figure:
    """The k_x-k_z plane (k_y = 0) of each named ``(Z, Y, X)`` volume's amplitude spectrum, side by side.

    With the tilt axis along y, the missing wedge is the dark bow-tie in this plane.
    """
    fig, axes = plt.subplots(1, len(volumes), figsize=(size * len(volumes) + 0.3, size), constrained_layout=True,
                             squeeze=False)
    for ax, (name, volume) in zip(axes[0], volumes.items()):
        spectrum = log_amplitude(volume)
        ax.imshow(spectrum[:, spectrum.shape[1] // 2, :].numpy(), cmap="gray", origin="lower")
        ax.set_xlabel("$k_x$")
        ax.set_ylabel("$k_z$")
        ax.set_title(f"{name}: $k_x$-$k_z$ plane", fontsize="small")
    return fig


def class_fractions(counts) -> np.ndarray:
    """Voxel counts per class ``(num_classes,)`` -> the fraction of all voxels each class owns."""
    counts = as_array(counts).astype(np.float64)
    return counts / max(counts.sum(), 1.0)
