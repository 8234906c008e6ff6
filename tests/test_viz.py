"""Figures, the slice explorer and the k3d scene return what chapters display, in the shared colours."""

from __future__ import annotations

import html
import re

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from mvgtutor.data.classes import CLASSES
from mvgtutor.data.formats import Particle
from mvgtutor.errors import DataError
from mvgtutor.viz import (label_colormap, label_rgba, legend_handles, orthoslices, projections, show_scene,
                          slice_explorer, snapshot_html, tomogram_scene, view_slices)
from mvgtutor.viz.colors import class_color_int
from mvgtutor.viz.scene3d import downsample_factor
from mvgtutor.viz.slices import first_hit_labels, view_axis_names

SHAPE = (20, 24, 28)


@pytest.fixture(scope="module")
def volume_and_labels():
    rng = np.random.default_rng(0)
    volume = rng.normal(size=SHAPE).astype(np.float32)
    labels = np.zeros(SHAPE, np.uint8)
    labels[4:9, 5:10, 6:12] = 13
    labels[12:15, 15:18, 20:23] = 15
    volume[labels > 0] -= 3.0
    particles = [Particle("5MRC", x=8, y=7, z=6), Particle("fiducial", x=21, y=16, z=13)]
    return volume, labels, particles


def test_colours_come_from_the_class_table():
    cmap = label_colormap()
    assert cmap.N == 16 and cmap(0)[3] == 0.0  # background transparent in overlays
    assert matplotlib.colors.to_hex(cmap(13)) == CLASSES[13].color
    rgba = label_rgba(np.array([[0, 13]]), opacity=0.5)
    assert rgba.shape == (1, 2, 4) and rgba[0, 0, 3] == 0 and rgba[0, 1, 3] == 0.5
    assert class_color_int(1) == int(CLASSES[1].color[1:], 16)
    assert [h.get_label() for h in legend_handles([15, 13, 13])] == ["13 5MRC", "15 fiducial"]


def test_orthoslices_draw_three_planes_and_a_legend_of_present_classes(volume_and_labels):
    volume, labels, _ = volume_and_labels
    fig = orthoslices(torch.from_numpy(volume), labels, center=(6, 7, 8))
    assert isinstance(fig, Figure)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["x-y plane at z = 6", "x-z plane at y = 7", "y-z plane at x = 8"]
    legend = fig.axes[-1].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["13 5MRC"]  # the fiducial is not in these planes
    first_image = fig.axes[0].get_images()[0].get_array()
    np.testing.assert_array_equal(first_image, volume[6])


def test_orthoslices_reject_mismatched_labels(volume_and_labels):
    volume, labels, _ = volume_and_labels
    with pytest.raises(DataError, match="do not match"):
        orthoslices(volume, labels[:-1])


def test_view_slices_name_the_physical_axes_of_each_view():
    assert view_axis_names("xy") == ("z", "y", "x")
    assert view_axis_names("yz") == ("z", "x", "y")
    assert view_axis_names("xz") == ("x", "y", "z")
    patch = torch.arange(8 * 8 * 8, dtype=torch.float32).reshape(8, 8, 8)
    fig = view_slices(patch, labels=torch.zeros(8, 8, 8, dtype=torch.long))
    assert [ax.get_xlabel() for ax in fig.axes] == ["y", "x", "y"]
    middle_x = fig.axes[0].get_images()[0].get_array()
    np.testing.assert_array_equal(middle_x, patch[:, :, 4].numpy())  # XY view sliced along its last axis, x


def test_first_hit_labels_sees_the_nearest_object():
    labels = np.zeros((4, 1, 1), np.uint8)
    labels[1, 0, 0], labels[3, 0, 0] = 15, 13
    assert first_hit_labels(labels, axis=0)[0, 0] == 15
    assert first_hit_labels(np.zeros((3, 2, 2), np.uint8), axis=0).max() == 0


def test_projections_figure_with_particles(volume_and_labels):
    volume, labels, particles = volume_and_labels
    fig = projections(volume, labels, particles, title="demo")
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    assert len(fig.axes[0].collections[0].get_offsets()) == 2  # the particle centres


def test_slice_explorer_redraws_on_every_control(volume_and_labels):
    import ipywidgets as widgets

    volume, labels, _ = volume_and_labels
    explorer = slice_explorer(volume, labels)
    assert isinstance(explorer, widgets.VBox)
    axis_picker = explorer.children[0].children[0]
    slice_slider, opacity_slider = explorer.children[1].children
    image = explorer.children[2]
    assert image.value[:4] == b"\x89PNG" and slice_slider.max == SHAPE[0] - 1
    first = bytes(image.value)
    slice_slider.value = 5
    assert bytes(image.value) != first
    axis_picker.value = "x"
    assert slice_slider.max == SHAPE[2] - 1 and slice_slider.value == SHAPE[2] // 2
    slice_slider.value = 8  # a y-z plane through the 5MRC label
    before = bytes(image.value)
    opacity_slider.value = 0.0
    assert bytes(image.value) != before


def test_scene_holds_volume_isosurfaces_and_points(volume_and_labels):
    volume, labels, particles = volume_and_labels
    scene = tomogram_scene(volume, labels, particles, max_side=16)
    names = [obj.name for obj in scene.plot.objects]
    assert names == ["tomogram", "13 5MRC", "15 fiducial", "particle centres"]
    assert scene.plot.objects[0].volume.shape == (10, 12, 14)  # down-sampled by 2 to fit 16 voxels
    assert scene.plot.objects[1].color == class_color_int(13)
    assert isinstance(scene.figure, Figure)
    only = tomogram_scene(volume, labels, classes=[15])
    assert [o.name for o in only.plot.objects] == ["tomogram", "15 fiducial"]


def test_isosurface_sits_where_the_class_is(volume_and_labels):
    _, labels, _ = volume_and_labels
    scene = tomogram_scene(labels=labels)
    surface = scene.plot.objects[0]  # 13 5MRC occupies x 6..11, y 5..9, z 4..8
    matrix = np.asarray(surface.model_matrix)  # maps the field's unit cube [-0.5, 0.5]^3 into the scene
    (x0, x1), (y0, y1), (z0, z1) = [(matrix[i, 3] - matrix[i, i] / 2, matrix[i, 3] + matrix[i, i] / 2)
                                    for i in range(3)]
    assert x0 < 6 and x1 > 11 and y0 < 5 and y1 > 9 and z0 < 4 and z1 > 8
    assert x1 - x0 < 10 and z1 - z0 < 10  # cropped to the class, not the whole tomogram


def test_scene_html_embeds_the_self_contained_snapshot(volume_and_labels):
    volume, labels, particles = volume_and_labels
    scene = tomogram_scene(volume, labels, particles, max_side=16)
    page = snapshot_html(scene.plot, height=300)
    assert page.startswith('<div class="mvgtutor-k3d" style="width:100%;height:300px;">')
    srcdoc = re.search(r'srcdoc="([^"]*)"', page).group(1)
    snapshot = html.unescape(srcdoc)
    assert "K3D" in snapshot and "<html" in snapshot.lower()
    assert "https://" not in snapshot.replace("https://requirejs.org/docs/errors.html", "")  # no network
    assert len(page) < 4_000_000


def test_show_scene_displays_snapshot_and_static_figure(volume_and_labels, monkeypatch):
    volume, labels, particles = volume_and_labels
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    show_scene(tomogram_scene(volume, labels, particles, max_side=16))
    assert len(shown) == 2
    assert "srcdoc=" in shown[0].data and isinstance(shown[1], Figure)


def test_scene_needs_something_to_show_and_consistent_shapes(volume_and_labels):
    volume, labels, _ = volume_and_labels
    with pytest.raises(DataError, match="needs a volume"):
        tomogram_scene()
    with pytest.raises(DataError, match="do not match"):
        tomogram_scene(volume, labels[1:])
    assert downsample_factor((512, 512, 512), 64) == 8 and downsample_factor((60, 60, 60), 64) == 1


def test_a_saved_notebook_carries_no_k3d_widget_state_unless_live():
    """nbclient stores every widget a kernel opened; k3d's would make the static book fetch JS from a CDN."""
    import nbclient
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    source = """
import matplotlib
matplotlib.use("Agg")
import numpy as np
from mvgtutor.viz import show_scene, tomogram_scene
labels = np.zeros((8, 8, 8), np.uint8)
labels[2:5, 2:5, 2:5] = 3
show_scene(tomogram_scene(np.random.rand(8, 8, 8).astype(np.float32), labels), live=LIVE)
"""
    stored = {}
    for live in (False, True):
        notebook = new_notebook(cells=[new_code_cell(source.replace("LIVE", str(live)))])
        nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
        state = notebook.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
        stored[live] = [model["model_name"] for model in state.get("state", {}).values()]
        assert "srcdoc=" in notebook.cells[0].outputs[0]["data"]["text/html"]
    assert stored[False] == []
    assert stored[True].count("AnyModel") == 3  # plot, volume, isosurface: live widgets are real
    nbformat.validate(notebook)


def test_thin_membranes_survive_down_sampling():
    labels = np.zeros((64, 64, 64), np.uint8)
    labels[10:50, 10:50, 30] = 14  # a one-voxel-thick sheet, coarser than the 8-voxel grid below
    scene = tomogram_scene(labels=labels, max_side=8)
    (surface,) = scene.plot.objects
    assert surface.name == "14 vesicle" and np.asarray(surface.scalar_field).max() == 1.0
