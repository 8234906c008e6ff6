"""Figures of the simulator (chapter 1): templates, the real structures, the tilt series, the CTF, the missing
wedge, effects, per-class contrast.

Each function returns a ``matplotlib.figure.Figure``. Images are ``(rows, cols)`` arrays or tensors,
volumes ``(Z, Y, X)``; grey levels use robust percentiles (gold beads would flatten a min-max scale).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from mvgtutor.viz.colors import class_rgb
from mvgtutor.viz.slices import as_array, draw_slice


def template_gallery(templates: Mapping[int, object], size: float = 1.6) -> Figure:
    """One panel per template: the projection of its density along z, titled with class and diameter.

    ``templates`` maps labels to ``simulate.templates.Template`` objects.
    """
    count = len(templates)
    columns = min(count, 7)
    rows = -(-count // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(columns * size, rows * size * 1.15), constrained_layout=True)
    axes = np.atleast_1d(axes).ravel()
    largest = max(t.density.shape[0] for t in templates.values())
    for ax, (label, template) in zip(axes, templates.items()):
        image = as_array(template.density).sum(axis=0)  # (Y, X) projection along z
        pad = (largest - image.shape[0]) // 2
        ax.imshow(np.pad(image, pad), cmap="gray_r", origin="lower")
        ax.set_title(f"{label} {template.name}\n{template.equivalent_diameter_nm:.1f} nm", fontsize="x-small",
                     color=class_rgb(label) if label < 16 else "black")
        ax.axis("off")
    for ax in axes[count:]:
        ax.axis("off")
    return fig


def tilt_series_montage(images, angles_deg, count: int = 8, size: float = 1.9, title: str | None = None) -> Figure:
    """``count`` tilts of a series ``(T, N, N)`` evenly spread over its angles ``(T,)``, one grey scale."""
    images = as_array(images)
    angles = as_array(angles_deg)
    picks = np.linspace(0, len(angles) - 1, count).round().astype(int)
    vmin, vmax = np.percentile(images[picks], [1, 99])
    fig, axes = plt.subplots(1, count, figsize=(count * size, size * 1.15), constrained_layout=True)
    for ax, index in zip(np.atleast_1d(axes), picks):
        draw_slice(ax, images[index], vrange=(vmin, vmax))
        ax.set_title(f"{angles[index]:+.0f} deg", fontsize="small")
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    return fig


def dose_order_plot(angles_deg, rank, dose_per_tilt: float) -> Figure:
    """The dose-symmetric scheme: acquisition order and dose received before each tilt, against its angle."""
    angles, rank = as_array(angles_deg), as_array(rank)
    fig, ax = plt.subplots(figsize=(6.5, 2.8), constrained_layout=True)
    points = ax.scatter(angles, rank * dose_per_tilt, c=rank, cmap="viridis", s=14)
    ax.set_xlabel("tilt angle (degrees)")
    ax.set_ylabel("dose before this tilt (e/A$^2$)")
    fig.colorbar(points, ax=ax, label="acquisition order")
    return fig


def transfer_curves(frequency_per_nm, curves: Mapping[str, object], title: str | None = None) -> Figure:
    """Radial transfer functions (CTF, exposure filter, MTF ...) against spatial frequency in 1/nm."""
    frequency = as_array(frequency_per_nm)
    fig, ax = plt.subplots(figsize=(7, 3), constrained_layout=True)
    for name, values in curves.items():
        ax.plot(frequency, as_array(values), label=name, linewidth=1.2)
    ax.axhline(0.0, color="black", linewidth=0.5)
    ax.set_xlabel("spatial frequency (1/nm)")
    ax.set_ylabel("transfer")
    ax.legend(fontsize="small", loc="lower left")
    if title:
        ax.set_title(title, fontsize="small")
    return fig


def fourier_slices(volumes: Mapping[str, object], size: float = 3.0) -> Figure:
    """The log power spectrum of each ``(Z, Y, X)`` volume in the kx-kz plane (ky = 0): the missing wedge
    shows as two empty sectors around the kz axis."""
    fig, axes = plt.subplots(1, len(volumes), figsize=(len(volumes) * size, size * 1.1), constrained_layout=True)
    for ax, (name, volume) in zip(np.atleast_1d(axes), volumes.items()):
        spectrum = torch.fft.fftshift(torch.fft.fftn(torch.as_tensor(as_array(volume)).float()))
        plane = spectrum[:, spectrum.shape[1] // 2, :].abs().clamp(min=1e-12).log10().numpy()  # (kz, kx)
        ax.imshow(plane, cmap="magma", origin="lower", vmin=np.percentile(plane, 5), vmax=np.percentile(plane, 99.5))
        ax.set_xlabel("kx")
        ax.set_ylabel("kz")
        ax.set_title(name, fontsize="small")
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def image_grid(images: Mapping[str, object], columns: int = 4, size: float = 2.6,
               shared_range: bool = False) -> Figure:
    """Named 2D images side by side (e.g. one projection with each effect switched off)."""
    count = len(images)
    columns = min(columns, count)
    rows = -(-count // columns)
    arrays = {name: as_array(image) for name, image in images.items()}
    vrange = tuple(np.percentile(np.concatenate([a.ravel() for a in arrays.values()]), [1, 99])) \
        if shared_range else None
    fig, axes = plt.subplots(rows, columns, figsize=(columns * size, rows * size * 1.1), constrained_layout=True)
    axes = np.atleast_1d(axes).ravel()
    for ax, (name, image) in zip(axes, arrays.items()):
        draw_slice(ax, image, vrange=vrange)
        ax.set_title(name, fontsize="small")
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[count:]:
        ax.axis("off")
    return fig


def radial_profile(image_spectrum, pixel_nm: float) -> tuple[np.ndarray, np.ndarray]:
    """The ky = 0 row of an ``rfft2``-layout spectrum ``(N, N//2+1)``: ``(frequency 1/nm, values)``."""
    values = as_array(image_spectrum)[0]
    size = (values.shape[-1] - 1) * 2
    return np.fft.rfftfreq(size, d=pixel_nm), values


def label_counts_bar(requested: Mapping[str, int], placed: Mapping[str, int],
                     names: Sequence[str] | None = None) -> Figure:
    """Requested against placed particles per class (packing is bounded, so it may place fewer)."""
    names = list(names or requested)
    positions = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(8, 2.6), constrained_layout=True)
    ax.bar(positions - 0.2, [requested.get(n, 0) for n in names], 0.4, label="asked for", color="#bbbbbb")
    ax.bar(positions + 0.2, [placed.get(n, 0) for n in names], 0.4, label="placed", color="#4363d8")
    ax.set_xticks(positions, names, rotation=45, fontsize="small")
    ax.set_ylabel("particles")
    ax.legend(fontsize="small")
    return fig


def structure_gallery(names: Sequence[str] | None = None, columns: int = 7, size: float = 1.5) -> Figure:
    """The SHREC 2021 proteins the simulator uses: for each, PolNet's 10 A map (top, projected along z) and our
    density from its atomic model (below; "no model" where PolNet's snapshot has none), titled with the
    molecular weight and the label's equivalent diameter. Grey levels are shared per pair."""
    from mvgtutor.data.classes import PROTEIN_CLASSES, class_by_name
    from mvgtutor.simulate.templates import atomic_model_density, molecular_weight_kda, structure_template

    names = list(names or [c.name for c in PROTEIN_CLASSES])
    columns = min(columns, len(names))
    blocks = -(-len(names) // columns)
    fig, axes = plt.subplots(2 * blocks, columns, figsize=(columns * size, 2 * blocks * size * 1.05),
                             constrained_layout=True, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for index, name in enumerate(names):
        template = structure_template(name)
        atoms = atomic_model_density(name)
        top, bottom = axes[2 * (index // columns), index % columns], axes[2 * (index // columns) + 1, index % columns]
        image = as_array(template.density).sum(axis=0)  # (Y, X) projection along z
        top.imshow(image, cmap="gray_r", origin="lower")
        label = class_by_name(name).label
        top.set_title(f"{name} {molecular_weight_kda(name):.0f} kDa\nlabel {template.equivalent_diameter_nm:.1f} nm",
                      fontsize="x-small", color=class_rgb(label))
        if atoms is None:
            bottom.text(0.5, 0.5, "no model", ha="center", va="center", fontsize="x-small", transform=bottom.transAxes)
        else:
            bottom.imshow(as_array(atoms).sum(axis=0), cmap="gray_r", origin="lower")
            bottom.set_title("atomic model", fontsize="xx-small")
    return fig


def contrast_bars(contrasts: Mapping[str, Mapping[str, float]], names: Sequence[str] | None = None) -> Figure:
    """Per-class contrast (``simulate.measure.class_contrast``: mean inside the label in background standard
    deviations, negative = dark) for one or more settings side by side: ``{setting: {class name: value}}``."""
    settings = list(contrasts)
    names = list(names or dict.fromkeys(n for c in contrasts.values() for n in c))
    positions = np.arange(len(names))
    width = 0.8 / max(len(settings), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(names)), 2.8), constrained_layout=True)
    for index, setting in enumerate(settings):
        values = [contrasts[setting].get(n, np.nan) for n in names]
        ax.bar(positions + (index - (len(settings) - 1) / 2) * width, values, width, label=setting)
    ax.axhline(0.0, color="black", linewidth=0.5)
    ax.set_xticks(positions, names, rotation=45, fontsize="small")
    ax.set_ylabel("contrast (background std)")
    ax.legend(fontsize="small")
    return fig
