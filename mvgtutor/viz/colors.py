"""The one colour map of the course: label ``i`` is drawn in ``CLASSES[i].color`` in every figure and scene."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from matplotlib.colors import BoundaryNorm, ListedColormap, to_rgb
from matplotlib.patches import Patch

from mvgtutor.data.classes import CLASSES, NUM_CLASSES


def class_rgb(label: int) -> tuple[float, float, float]:
    """The RGB colour (0-1 floats) of label ``label``."""
    return to_rgb(CLASSES[label].color)


def class_color_int(label: int) -> int:
    """The colour of label ``label`` as a ``0xRRGGBB`` integer (what k3d expects)."""
    return int(CLASSES[label].color.lstrip("#"), 16)


def label_colormap(transparent_background: bool = True) -> ListedColormap:
    """A 16-entry colour map; with ``transparent_background`` label 0 is fully transparent (for overlays)."""
    colors = np.array([(*class_rgb(c.label), 1.0) for c in CLASSES])  # (16, 4) RGBA
    if transparent_background:
        colors[0, 3] = 0.0
    return ListedColormap(colors, name="mvgtutor_classes")


def label_norm() -> BoundaryNorm:
    """Maps integer label ``i`` onto colour ``i`` of ``label_colormap`` (use with ``imshow(..., norm=...)``)."""
    return BoundaryNorm(np.arange(NUM_CLASSES + 1) - 0.5, NUM_CLASSES)


def label_rgba(labels: np.ndarray, opacity: float = 1.0) -> np.ndarray:
    """An RGBA image ``(..., 4)`` of an integer label array ``(...)``: class colours, background transparent."""
    table = np.array([(*class_rgb(c.label), opacity) for c in CLASSES], dtype=np.float32)  # (16, 4)
    table[0, 3] = 0.0
    return table[np.asarray(labels, dtype=np.int64)]


def legend_handles(labels: Iterable[int] | None = None) -> list[Patch]:
    """Legend entries (``matplotlib.patches.Patch``) for ``labels`` (default: the 15 foreground classes)."""
    chosen = range(1, NUM_CLASSES) if labels is None else sorted(set(int(i) for i in labels))
    return [Patch(facecolor=CLASSES[i].color, edgecolor="black", linewidth=0.5,
                  label=f"{i} {CLASSES[i].name}") for i in chosen]


def add_class_legend(target, labels: Iterable[int] | None = None, **kwargs):
    """Add the class legend (for ``labels``, default all foreground classes) to an Axes or Figure."""
    options = dict(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize="small", frameon=False)
    options.update(kwargs)
    return target.legend(handles=legend_handles(labels), **options)
