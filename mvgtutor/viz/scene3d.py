"""3D scenes with k3d: the tomogram as a volume rendering, one isosurface per class, particle centres as points.

A k3d plot is a live widget in Jupyter and Colab, but a static page (the built book) has no kernel to draw
it. ``show_scene`` therefore always shows two things that need neither a kernel nor a network:

* the plot's self-contained k3d *snapshot* (an HTML page with k3d's JavaScript and the data inlined),
  embedded as ``<iframe srcdoc=...>`` in a fixed-height ``<div>``: rotatable and zoomable everywhere;
* a static matplotlib rendering below it (``mvgtutor.viz.slices.projections``), because k3d can show an
  empty scene on some Colab set-ups.

With ``live=True`` it shows the live widget as well. Volumes are down-sampled to at most ``max_side``
voxels per side and stored as float16, which keeps a snapshot near 1.5-2.5 MB (k3d's JavaScript is ~1.2 MB).
"""

from __future__ import annotations

import contextlib
import html
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from mvgtutor.data.classes import CLASSES, NUM_CLASSES
from mvgtutor.errors import DataError
from mvgtutor.viz.colors import class_color_int
from mvgtutor.viz.slices import as_array, display_range, projections

DEFAULT_MAX_SIDE = 64  # voxels per side of the down-sampled volumes in a scene
SCENE_HEIGHT_PX = 480
VOLUME_OPACITY = [0.0, 0.0, 0.55, 0.0, 0.8, 0.25, 1.0, 1.0]  # (value, alpha) pairs: only dense matter shows
VOLUME_SAMPLES = 128  # ray-marching samples: enough for <= 64^3 volumes, light on laptops without a GPU


@dataclass
class Scene:
    """A k3d plot and the matplotlib figure that stands in for it where k3d cannot draw."""

    plot: object  # k3d.plot.Plot
    figure: object  # matplotlib.figure.Figure
    height: int = SCENE_HEIGHT_PX


def downsample_factor(shape, max_side: int) -> int:
    """The smallest integer factor that brings every side of ``shape`` to at most ``max_side``."""
    return max(1, int(np.ceil(max(shape) / max_side)))


def _pool(volume: np.ndarray, factor: int, mode: str) -> np.ndarray:
    """Average (``"mean"``) or max (``"max"``) pooling of a ``(Z, Y, X)`` array by ``factor``."""
    if factor == 1:
        return volume.astype(np.float32)
    tensor = torch.from_numpy(np.array(volume, dtype=np.float32))[None, None]  # (1, 1, Z, Y, X), a copy
    pool = F.avg_pool3d if mode == "mean" else F.max_pool3d
    return pool(tensor, factor, ceil_mode=True)[0, 0].numpy()  # (Z/f, Y/f, X/f)


def tomogram_scene(volume=None, labels=None, particles=None, *, max_side: int = DEFAULT_MAX_SIDE,
                   classes=None, invert: bool = True, volume_opacity: float = 10.0,
                   point_size: float | None = None,
                   height: int = SCENE_HEIGHT_PX, title: str | None = None) -> Scene:
    """Build a 3D scene of a tomogram in voxel coordinates (x, y, z), everything optional but one input.

    ``volume (Z, Y, X)``: a volume rendering in grey in which only the densest voxels are opaque; with
    ``invert`` (cryo-ET shows dense matter dark) the darkest voxels count as the densest.
    ``labels (Z, Y, X)``: one isosurface per class in ``classes`` (default: every class present), in the
    class colour. ``particles``: ``Particle`` centres as points in the class colour. Returns a ``Scene``
    with the k3d plot and a matplotlib stand-in; show it with ``show_scene``.
    """
    if volume is None and labels is None and not particles:
        raise DataError("tomogram_scene needs a volume, labels or particles to show")
    volume = None if volume is None else as_array(volume)
    labels = None if labels is None else as_array(labels)
    reference = volume if volume is not None else labels
    if reference is not None and reference.ndim != 3:
        raise DataError(f"volumes must be 3D (Z, Y, X), got shape {reference.shape}")
    if volume is not None and labels is not None and volume.shape != labels.shape:
        raise DataError(f"labels of shape {labels.shape} do not match the volume's {volume.shape}")
    with offline_widgets():
        plot = _build_plot(volume, labels, particles, reference, max_side, classes, invert, volume_opacity,
                           point_size, height, title)
    figure = projections(volume if volume is not None else np.zeros_like(labels, np.float32), labels, particles,
                         title=title) if reference is not None else _points_only_figure(particles)
    return Scene(plot=plot, figure=figure, height=height)


@contextlib.contextmanager
def offline_widgets():
    """Create widgets without a frontend comm (``comm.DummyComm``) inside this block.

    Use it to add your own k3d objects to a scene: ``with offline_widgets(): scene.plot += k3d.points(...)``.

    A notebook stores the state of every widget its kernel ever opened (nbclient keeps even closed ones);
    k3d's would make the built book fetch k3d's JavaScript from a CDN and fail offline. The snapshot already
    holds the whole scene, so the plot needs a comm only when it is shown live (``show_scene(live=True)``).
    """
    import comm

    create = comm.create_comm
    comm.create_comm = comm._create_comm  # the package's default: a DummyComm that sends nothing
    try:
        yield
    finally:
        comm.create_comm = create


def _build_plot(volume, labels, particles, reference, max_side, classes, invert, volume_opacity, point_size,
                height, title):
    import k3d

    plot = k3d.plot(height=height - 32, grid_visible=False, camera_auto_fit=reference is None,
                    axes=["x", "y", "z"], background_color=0xFFFFFF, menu_visibility=True, name=title)
    if reference is not None:
        factor = downsample_factor(reference.shape, max_side)
        bounds = _bounds(reference.shape)
        plot.camera = _oblique_camera(reference.shape)
    if volume is not None:
        plot += _volume_object(volume, factor, bounds, volume_opacity, invert)
    if labels is not None:
        for label in _classes_to_draw(labels, classes):
            surface = _isosurface(labels, label, factor)
            if surface is not None:
                plot += surface
    if particles:
        side = max(reference.shape) if reference is not None else 64
        plot += _points_object(particles, point_size or max(1.0, side / 40))
    return plot


def _bounds(shape) -> list[float]:
    """k3d bounds ``[x0, x1, y0, y1, z0, z1]`` of a ``(Z, Y, X)`` grid, in voxels (voxel centres at integers)."""
    z, y, x = shape
    return [-0.5, x - 0.5, -0.5, y - 0.5, -0.5, z - 0.5]


def _oblique_camera(shape) -> list[float]:
    """A k3d camera ``[eye xyz, target xyz, up xyz]`` looking at the volume's centre from an oblique corner."""
    z, y, x = shape
    centre = np.array([x, y, z], dtype=float) / 2
    eye = centre + 1.9 * max(shape) * np.array([0.55, -0.65, 0.5])
    return [*eye.tolist(), *centre.tolist(), 0.0, 0.0, 1.0]


def _volume_object(volume: np.ndarray, factor: int, bounds: list[float], opacity: float, invert: bool):
    import k3d

    small = _pool(volume, factor, "mean")
    vmin, vmax = display_range(small)
    scaled = np.clip((small - vmin) / (vmax - vmin), 0.0, 1.0)  # grey levels in [0, 1]
    if invert:
        scaled = 1.0 - scaled
    return k3d.volume(scaled.astype(np.float16), color_range=[0.0, 1.0], alpha_coef=opacity, samples=VOLUME_SAMPLES,
                      color_map=k3d.colormaps.matplotlib_color_maps.Gray_r, bounds=bounds, compression_level=9,
                      opacity_function=VOLUME_OPACITY,
                      name="tomogram")


def _classes_to_draw(labels: np.ndarray, classes) -> list[int]:
    present = set(int(i) for i in np.unique(labels)) - {0}
    chosen = present if classes is None else present & set(int(c) for c in classes)
    return sorted(c for c in chosen if 0 < c < NUM_CLASSES)


def _isosurface(labels: np.ndarray, label: int, factor: int):
    """A k3d marching-cubes surface of one class, cropped to its bounding box (keeps the snapshot small)."""
    import k3d

    voxels = labels == label  # (Z, Y, X) bool
    box = _bounding_box(voxels)
    if box is None:
        return None
    low = np.maximum(box[0] - factor, 0)
    high = np.minimum(box[1] + factor + 1, labels.shape)
    crop = voxels[low[0]:high[0], low[1]:high[1], low[2]:high[2]]  # (z, y, x) box around the class
    mask = _pool(crop, factor, "mean")  # fraction of the class per coarse voxel
    if mask.max() < 0.5:  # thinner than a coarse voxel (a membrane): keep every coarse voxel it touches
        mask = _pool(crop, factor, "max")
    mask = np.pad(mask, 1)  # closed surfaces at the box's faces
    first = low - 0.5 - factor + factor / 2  # (z, y, x) centre of the padded coarse grid's first voxel
    last = first + (np.array(mask.shape) - 1) * factor
    bounds = [first[2], last[2], first[1], last[1], first[0], last[0]]  # k3d: the field's first/last samples
    return k3d.marching_cubes(mask.astype(np.float32), level=0.5, color=class_color_int(label), bounds=bounds,
                              flat_shading=False, compression_level=9, name=f"{label} {CLASSES[label].name}")


def _bounding_box(voxels: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The first and last ``(z, y, x)`` index where a boolean volume is True (None when it never is)."""
    ranges = []
    for axis in range(3):
        hits = np.flatnonzero(voxels.any(axis=tuple(a for a in range(3) if a != axis)))
        if hits.size == 0:
            return None
        ranges.append((hits[0], hits[-1]))
    return np.array([r[0] for r in ranges]), np.array([r[1] for r in ranges])


def _points_object(particles, point_size: float):
    import k3d

    positions = np.array([[p.x, p.y, p.z] for p in particles], dtype=np.float32)  # (N, 3) as (x, y, z)
    colors = np.array([class_color_int(p.label) for p in particles], dtype=np.uint32)
    return k3d.points(positions, colors=colors, point_size=point_size, shader="3d", name="particle centres")


def _points_only_figure(particles):
    import matplotlib.pyplot as plt

    from mvgtutor.viz.colors import class_rgb

    fig, ax = plt.subplots(figsize=(4, 4), constrained_layout=True)
    ax.scatter([p.x for p in particles], [p.y for p in particles], c=[class_rgb(p.label) for p in particles], s=8)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title("particle centres (x-y)", fontsize="small")
    return fig


def snapshot_html(plot, height: int = SCENE_HEIGHT_PX) -> str:
    """The k3d plot as ``<div><iframe srcdoc=...></iframe></div>``: a self-contained, interactive 3D view."""
    snapshot = plot.get_snapshot(compression_level=9)
    return (f'<div class="mvgtutor-k3d" style="width:100%;height:{height}px;">'
            f'<iframe srcdoc="{html.escape(snapshot, quote=True)}" style="width:100%;height:100%;border:0;" '
            f'title="3D scene (k3d)" sandbox="allow-scripts"></iframe></div>')


def show_scene(scene: Scene, live: bool = False) -> None:
    """Display a ``Scene`` in a notebook: the k3d snapshot (works without a kernel or network) and the
    matplotlib stand-in below it; with ``live=True`` also the live k3d widget (Jupyter / Colab only).

    Only ``live=True`` connects the k3d widgets to the frontend (see ``offline_widgets``), so a saved
    notebook carries no k3d widget state unless asked to.
    """
    import matplotlib.pyplot as plt
    from IPython.display import HTML, display

    display(HTML(snapshot_html(scene.plot, scene.height)))
    display(scene.figure)
    plt.close(scene.figure)
    if live:
        display(open_live(scene.plot))


def open_live(plot):
    """Connect a plot built by ``tomogram_scene`` (no comm) to the notebook's frontend; returns the plot."""
    for widget in (*plot.objects, plot):  # the objects first: the plot's state refers to them
        widget.comm = None
        widget.open()
    return plot
