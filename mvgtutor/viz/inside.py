"""Figures, 3D scenes and the explorer of chapter 12 ("Looking inside"), drawn from ``mvgtutor.interpret``.

* ``heatmap_overlay_figure``: the paper's Figs. 10-11, the input slice and each model's heatmap over it;
* ``heatmap_scene``, ``graph_scene``, ``attention_scene``: k3d scenes (with a matplotlib stand-in, see
  ``mvgtutor.viz.scene3d``) of a heatmap, of the graph's clusters and of one token's attention;
* ``patch_insight_figure``: a patch, its three views, each view's prediction, the fused one and the heatmap;
* ``inside_explorer``: the same, live, for a position picked with sliders (needs a kernel).

Volumes are ``(Z, Y, X)`` (a patch ``(S, S, S)``), tensors or arrays; slices are drawn with ``origin="lower"``.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from mvgtutor.errors import DataError
from mvgtutor.model.views import view_plane
from mvgtutor.viz.colors import label_rgba
from mvgtutor.viz.scene3d import SCENE_HEIGHT_PX, Scene, offline_widgets
from mvgtutor.viz.slices import as_array, display_range, draw_slice

HEATMAP_CMAP = "jet"  # the paper's Figs. 10-11 use a blue-to-red map
CLUSTER_CMAP = "tab20"


def _middle(volume: np.ndarray, z: int | None) -> int:
    return volume.shape[0] // 2 if z is None else int(z)


def heatmap_overlay_figure(image, heatmaps: Mapping[str, object], z: int | None = None, labels=None,
                           alpha: float = 0.5, size: float = 2.6, title: str | None = None) -> Figure:
    """Figs. 10-11: the x-y slice ``z`` of ``image (S, S, S)`` in grey, the true ``labels (S, S, S)`` over it (when
    given), then each named heatmap ``(S, S, S)`` (in [0, 1]) over it with opacity ``alpha``."""
    image = as_array(image)
    shapes = [as_array(h).shape for h in heatmaps.values()] + ([] if labels is None else [as_array(labels).shape])
    if image.ndim != 3 or any(shape != image.shape for shape in shapes):
        raise DataError(f"the image {image.shape}, the labels and every heatmap must be (S, S, S) of the same shape")
    z = _middle(image, z)
    vrange = display_range(image)
    first = 1 if labels is None else 2
    fig, axes = plt.subplots(1, first + len(heatmaps), figsize=(size * (first + len(heatmaps)), size + 0.4),
                             constrained_layout=True, squeeze=False)
    draw_slice(axes[0, 0], image[z], vrange=vrange, xlabel="x", ylabel="y")
    axes[0, 0].set_title("input", fontsize="small")
    if labels is not None:
        draw_slice(axes[0, 1], image[z], as_array(labels)[z], opacity=0.6, vrange=vrange, xlabel="x")
        axes[0, 1].set_title("true labels", fontsize="small")
    for ax, (name, heatmap) in zip(axes[0, first:], heatmaps.items()):
        draw_slice(ax, image[z], vrange=vrange, xlabel="x")
        shown = ax.imshow(as_array(heatmap)[z], cmap=HEATMAP_CMAP, vmin=0, vmax=1, alpha=alpha, origin="lower")
        ax.set_title(name, fontsize="small")
    fig.colorbar(shown, ax=axes[0, -1], shrink=0.8, label="activation (normalised)")
    fig.suptitle(title or f"x-y slice z = {z}", fontsize="small")
    return fig


def _projection_figure(volume: np.ndarray, name: str, cmap: str, reduce=np.max, **imshow) -> Figure:
    """Projections of ``volume (Z, Y, X)`` along z, y and x (the static stand-in of a scene)."""
    fig, axes = plt.subplots(1, 3, figsize=(8, 2.8), constrained_layout=True)
    for ax, axis, (rows, cols) in zip(axes, (0, 1, 2), (("y", "x"), ("z", "x"), ("z", "y"))):
        ax.imshow(reduce(volume, axis=axis), cmap=cmap, origin="lower", interpolation="nearest", **imshow)
        ax.set_xlabel(cols)
        ax.set_ylabel(rows)
        ax.set_title(f"{name}, along {'zyx'[axis]}", fontsize="small")
    return fig


def _empty_plot(shape, height: int, title: str | None):
    import k3d

    z, y, x = shape
    centre = np.array([x, y, z], dtype=float) / 2
    eye = centre + 1.9 * max(shape) * np.array([0.55, -0.65, 0.5])
    plot = k3d.plot(height=height - 32, grid_visible=False, camera_auto_fit=False, axes=["x", "y", "z"],
                    background_color=0xFFFFFF, menu_visibility=True, name=title)
    plot.camera = [*eye.tolist(), *centre.tolist(), 0.0, 0.0, 1.0]
    return plot


def _bounds(shape) -> list[float]:
    z, y, x = shape
    return [-0.5, x - 0.5, -0.5, y - 0.5, -0.5, z - 0.5]


def heatmap_scene(heatmap, title: str | None = None, height: int = SCENE_HEIGHT_PX) -> Scene:
    """A k3d volume rendering of a heatmap ``(S, S, S)`` in [0, 1] (strong activations opaque and red)."""
    import k3d

    heatmap = as_array(heatmap).astype(np.float32)
    if heatmap.ndim != 3:
        raise DataError(f"a heatmap must be (S, S, S), got shape {heatmap.shape}")
    with offline_widgets():
        plot = _empty_plot(heatmap.shape, height, title)
        plot += k3d.volume(heatmap.astype(np.float16), color_range=[0.0, 1.0], bounds=_bounds(heatmap.shape),
                           color_map=k3d.colormaps.matplotlib_color_maps.Jet, alpha_coef=8.0, samples=128,
                           opacity_function=[0.0, 0.0, 0.5, 0.05, 1.0, 1.0], compression_level=9, name="heatmap")
    figure = _projection_figure(heatmap, "max. activation", HEATMAP_CMAP, vmin=0, vmax=1)
    return Scene(plot=plot, figure=figure, height=height)


def _token_centres(shape, token_patch: int) -> np.ndarray:
    """``(x, y, z)`` centres of the ``token_patch^3`` cells of a ``(Z, Y, X)`` grid, z-major: ``(N, 3)``."""
    z, y, x = (np.arange(s // token_patch) * token_patch + (token_patch - 1) / 2 for s in shape)
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    return np.stack([xx.ravel(), yy.ravel(), zz.ravel()], axis=1).astype(np.float32)


def _cluster_colors(clusters: np.ndarray) -> np.ndarray:
    table = plt.get_cmap(CLUSTER_CMAP)(np.arange(20))[:, :3]
    rgb = (table[clusters % 20] * 255).astype(np.uint32)
    return (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]


def graph_scene(clusters, token_patch: int, query: Sequence[int] | None = None, title: str | None = None,
                height: int = SCENE_HEIGHT_PX) -> Scene:
    """The visual graph of a patch: one point per token at its centre, coloured by its node (cluster), from
    ``clusters (S, S, S)`` (``mvgtutor.interpret.cluster_volume``); with ``query = (z, y, x)``, that voxel's
    cluster is drawn large and the others small."""
    import k3d

    clusters = as_array(clusters).astype(np.int64)
    if clusters.ndim != 3:
        raise DataError(f"clusters must be (S, S, S), got shape {clusters.shape}")
    cells = clusters[::token_patch, ::token_patch, ::token_patch].ravel()  # one entry per token, z-major
    centres = _token_centres(clusters.shape, token_patch)
    sizes = np.full(len(cells), 0.45 * token_patch, dtype=np.float32)
    if query is not None:
        chosen = clusters[tuple(int(q) for q in query)]
        sizes = np.where(cells == chosen, 0.9 * token_patch, 0.3 * token_patch).astype(np.float32)
    with offline_widgets():
        plot = _empty_plot(clusters.shape, height, title)
        plot += k3d.points(centres, colors=_cluster_colors(cells), point_sizes=sizes, shader="3d",
                           name="tokens by graph node")
    figure = cluster_slices_figure(clusters, query)
    return Scene(plot=plot, figure=figure, height=height)


def cluster_slices_figure(clusters, point: Sequence[int] | None = None) -> Figure:
    """The node of every voxel of ``clusters (S, S, S)`` on the three slices through ``point = (z, y, x)``
    (default: the centre)."""
    clusters = as_array(clusters)
    z, y, x = [s // 2 for s in clusters.shape] if point is None else [int(p) for p in point]
    fig, axes = plt.subplots(1, 3, figsize=(8, 2.8), constrained_layout=True)
    for ax, (image, name, rows, cols) in zip(axes, ((clusters[z], f"z = {z}", "y", "x"),
                                                    (clusters[:, y], f"y = {y}", "z", "x"),
                                                    (clusters[:, :, x], f"x = {x}", "z", "y"))):
        ax.imshow(image % 20, cmap=CLUSTER_CMAP, vmin=0, vmax=19, origin="lower", interpolation="nearest")
        ax.set_title(f"graph node per voxel, {name}", fontsize="small")
        ax.set_xlabel(cols)
        ax.set_ylabel(rows)
    return fig


def attention_scene(attention, query: Sequence[int], title: str | None = None,
                    height: int = SCENE_HEIGHT_PX) -> Scene:
    """One token's attention ``(S, S, S)`` (``mvgtutor.interpret.attention_volume``) as a volume rendering
    scaled to its maximum, and the query voxel ``(z, y, x)`` as a black point."""
    import k3d

    attention = as_array(attention).astype(np.float32)
    if attention.ndim != 3:
        raise DataError(f"attention must be (S, S, S), got shape {attention.shape}")
    scaled = attention / max(float(attention.max()), 1e-12)
    with offline_widgets():
        plot = _empty_plot(attention.shape, height, title)
        plot += k3d.volume(scaled.astype(np.float16), color_range=[0.0, 1.0], bounds=_bounds(attention.shape),
                           color_map=k3d.colormaps.matplotlib_color_maps.Inferno, alpha_coef=8.0, samples=128,
                           compression_level=9, name="attention")
        z, y, x = (float(q) for q in query)
        plot += k3d.points(np.array([[x, y, z]], dtype=np.float32), colors=[0x000000], point_size=2.0,
                           shader="3d", name="query")
    figure = _projection_figure(scaled, "attention", "inferno", vmin=0, vmax=1)
    return Scene(plot=plot, figure=figure, height=height)


def patch_insight_figure(insight, z: int | None = None, size: float = 2.2) -> Figure:
    """A ``PatchInsight`` in two rows. Top: the middle slice of each view in its own image plane, then the
    heatmap over the x-y slice ``z``. Bottom, on the x-y slice ``z``: each view's prediction, the fused one and
    the true labels (when known)."""
    return _draw_insight(Figure(figsize=(size * 5, size * 2 + 0.6), layout="constrained"), insight, z)


def _draw_insight(fig: Figure, insight, z: int | None) -> Figure:
    image = as_array(insight.image)
    z = _middle(image, z)
    vrange = display_range(image)
    columns = max(len(insight.views) + 1, len(insight.view_predictions) + 2)
    axes = fig.subplots(2, columns, squeeze=False)
    for ax, (key, view) in zip(axes[0], insight.views.items()):
        rows, cols = view_plane(key.split("_")[0])
        view = as_array(view)
        draw_slice(ax, view[view.shape[0] // 2], vrange=vrange, xlabel=cols, ylabel=rows)
        ax.set_title(f"view {key.upper()}: {rows}-{cols} plane", fontsize="small")
    heat_ax = axes[0, len(insight.views)]
    draw_slice(heat_ax, image[z], vrange=vrange, xlabel="x", ylabel="y")
    heat_ax.imshow(as_array(insight.heatmap)[z], cmap=HEATMAP_CMAP, vmin=0, vmax=1, alpha=0.5, origin="lower")
    heat_ax.set_title(f"heatmap, z = {z}", fontsize="small")
    panels = [(f"{key.upper()} prediction", p) for key, p in insight.view_predictions.items()]
    panels += [("fused prediction", insight.prediction)]
    if insight.labels is not None:
        panels.append(("true labels", insight.labels))
    for ax, (name, labels) in zip(axes[1], panels):
        draw_slice(ax, image[z], vrange=vrange, xlabel="x", ylabel="y")
        ax.imshow(label_rgba(as_array(labels)[z], 0.7), origin="lower", interpolation="nearest")
        ax.set_title(name, fontsize="small")
    for ax in [*axes[0, len(insight.views) + 1:], *axes[1, len(panels):]]:
        ax.axis("off")
    z0, y0, x0 = insight.corner
    fig.suptitle(f"patch at corner (z, y, x) = ({z0}, {y0}, {x0}); slices at z = {z} of the patch", fontsize="small")
    return fig


def render_insight_png(insight, z: int | None = None, size: float = 2.0) -> bytes:
    """``patch_insight_figure`` as PNG bytes, drawn without pyplot (nothing leaks into a notebook cell)."""
    figure = _draw_insight(Figure(figsize=(size * 5, size * 2 + 0.6), dpi=80, layout="constrained"), insight, z)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def inside_explorer(model, volume, labels=None, centre: Sequence[int] | None = None):
    """An ``ipywidgets.VBox``: three sliders pick the patch centre ``(z, y, x)`` in ``volume (Z, Y, X)`` (normalised
    as in training), the image shows ``patch_insight_figure`` for it. Every change runs the model (live kernel);
    the built book shows the first image only."""
    import ipywidgets as widgets

    from mvgtutor.interpret.patch import inspect_patch

    volume = as_array(volume)
    if volume.ndim != 3:
        raise DataError(f"volume must be (Z, Y, X), got shape {volume.shape}")
    centre = [s // 2 for s in volume.shape] if centre is None else list(centre)
    sliders = [widgets.IntSlider(value=int(c), min=0, max=s - 1, description=name, continuous_update=False)
               for c, s, name in zip(centre, volume.shape, ("z", "y", "x"))]
    image = widgets.Image(format="png")

    def redraw(_change=None):
        insight = inspect_patch(model, volume, [s.value for s in sliders], labels)
        image.value = render_insight_png(insight)

    for slider in sliders:
        slider.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox(sliders), image])
