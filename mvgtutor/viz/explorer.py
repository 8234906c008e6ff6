"""An ipywidgets slice explorer: pick the axis, the slice and the label opacity; the image follows.

The view is an ``ipywidgets.Image`` holding a PNG drawn by matplotlib, so the explorer works in Jupyter,
JupyterLab and Colab (live: every control redraws) and in the built book (the stored widget state shows the
first image and the controls; moving them needs a kernel).
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.figure import Figure

from mvgtutor.viz.colors import label_rgba
from mvgtutor.viz.slices import AXIS_NAMES, check_volume, as_array, display_range

PLANE_AXES = {"z": ("x", "y"), "y": ("x", "z"), "x": ("y", "z")}  # slice axis -> (image columns, rows)


def render_slice_png(volume: np.ndarray, labels: np.ndarray | None, axis: str, index: int, opacity: float,
                     vrange: tuple[float, float], size_px: int = 420) -> bytes:
    """A PNG of slice ``index`` across ``axis`` (``"z"``, ``"y"`` or ``"x"``) of a ``(Z, Y, X)`` volume."""
    dim = AXIS_NAMES.index(axis)
    image = np.take(volume, index, axis=dim)  # 2D: rows/cols are the two remaining axes in (z, y, x) order
    overlay = None if labels is None else np.take(labels, index, axis=dim)
    figure = Figure(figsize=(size_px / 100, size_px / 100), dpi=100)  # no pyplot: nothing leaks into the cell
    ax = figure.add_axes([0.1, 0.1, 0.85, 0.85])
    ax.imshow(image, cmap="gray", vmin=vrange[0], vmax=vrange[1], origin="lower", interpolation="nearest")
    if overlay is not None and opacity > 0:
        ax.imshow(label_rgba(overlay, opacity), origin="lower", interpolation="nearest")
    columns, rows = PLANE_AXES[axis]
    ax.set_xlabel(columns)
    ax.set_ylabel(rows)
    ax.set_title(f"{columns}-{rows} plane at {axis} = {index}", fontsize="small")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def slice_explorer(volume, labels=None, axis: str = "z", index: int | None = None, opacity: float = 0.4):
    """An ``ipywidgets.VBox``: axis buttons, a slice slider, an opacity slider and the slice image.

    ``volume (Z, Y, X)`` in grey, ``labels (Z, Y, X)`` (optional) in the class colours.
    """
    import ipywidgets as widgets

    volume = as_array(volume)
    labels = None if labels is None else as_array(labels)
    check_volume(volume, labels)
    vrange = display_range(volume)
    dim = AXIS_NAMES.index(axis)
    axis_picker = widgets.ToggleButtons(options=list(AXIS_NAMES), value=axis, description="axis")
    slice_slider = widgets.IntSlider(value=volume.shape[dim] // 2 if index is None else index, min=0,
                                     max=volume.shape[dim] - 1, description="slice", continuous_update=False)
    opacity_slider = widgets.FloatSlider(value=opacity, min=0.0, max=1.0, step=0.05, description="labels",
                                         disabled=labels is None, continuous_update=False)
    image = widgets.Image(format="png")

    def redraw(_change=None):
        image.value = render_slice_png(volume, labels, axis_picker.value, slice_slider.value,
                                       opacity_slider.value, vrange)

    def change_axis(change):
        new_dim = AXIS_NAMES.index(change["new"])
        with slice_slider.hold_trait_notifications():
            slice_slider.max = volume.shape[new_dim] - 1
            slice_slider.value = volume.shape[new_dim] // 2
        redraw()

    axis_picker.observe(change_axis, names="value")
    slice_slider.observe(redraw, names="value")
    opacity_slider.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([axis_picker]), widgets.HBox([slice_slider, opacity_slider]), image])
