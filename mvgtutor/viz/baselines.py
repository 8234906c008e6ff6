"""Figures of chapter 10: the same slice of the held-out tomogram segmented by each model."""

from __future__ import annotations

import math
from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from mvgtutor.errors import DataError
from mvgtutor.viz.colors import add_class_legend
from mvgtutor.viz.slices import as_array, display_range, draw_slice


def busiest_slice(class_mask) -> int:
    """The z index of the plane of ``class_mask (D, H, W)`` that holds the most distinct particle classes (ties:
    the most particle voxels): the slice where models have the most to get right."""
    labels = as_array(class_mask)
    if labels.ndim != 3:
        raise DataError(f"class_mask must be a 3D (Z, Y, X) array, got shape {labels.shape}")
    counts = [(len(np.unique(plane[plane > 0])), int((plane > 0).sum())) for plane in labels]
    return max(range(len(counts)), key=lambda z: counts[z])


def segmentation_panels(image, truth, predictions: Mapping[str, object], *, columns: int = 4,
                        opacity: float = 0.6, title: str | None = None) -> Figure:
    """The tomogram ``image (H, W)``, the ``truth (H, W)`` labels and each of ``predictions`` (name -> labels
    ``(H, W)``) as panels in the course's colours, with the class legend."""
    image, truth = as_array(image), as_array(truth)
    if image.ndim != 2 or truth.shape != image.shape:
        raise DataError(f"image and truth must be one (H, W) plane each, got {image.shape} and {truth.shape}")
    panels = [("tomogram", None), ("truth", truth)] + [(name, as_array(p)) for name, p in predictions.items()]
    for name, labels in panels[2:]:
        if labels.shape != image.shape:
            raise DataError(f"the prediction of {name} has shape {labels.shape}, not the image's {image.shape}")
    rows = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3 * columns, 3 * rows), constrained_layout=True,
                             squeeze=False)
    vrange = display_range(image)
    for ax, (name, labels) in zip(axes.flat, panels):
        draw_slice(ax, image, labels, opacity=opacity, vrange=vrange)
        ax.set_title(name, fontsize="small")
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    present = sorted({int(v) for _, labels in panels[1:] for v in np.unique(labels) if v > 0})
    add_class_legend(fig, present)
    if title:
        fig.suptitle(title)
    return fig
