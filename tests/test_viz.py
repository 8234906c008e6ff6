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
from mvgtutor.viz.slices import central_particle, correlation_lengths, crop_around, first_hit_labels, view_axis_names

SHAPE = (20, 24, 28)


@pytest.fixture(autouse=True)
def close_figures():
    """Each test's figures are closed after it (pyplot keeps them otherwise)."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


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


def test_view_slices_show_each_views_own_image_plane():
    assert view_axis_names("xy") == ("z", "y", "x")
    assert view_axis_names("yz") == ("x", "y", "z")
    assert view_axis_names("xz") == ("y", "z", "x")
    patch = torch.arange(8 * 8 * 8, dtype=torch.float32).reshape(8, 8, 8)  # (z, y, x)
    fig = view_slices(patch, labels=torch.zeros(8, 8, 8, dtype=torch.long))
    assert [(ax.get_ylabel(), ax.get_xlabel()) for ax in fig.axes] == [("y", "x"), ("y", "z"), ("z", "x")]
    panels = [ax.get_images()[0].get_array() for ax in fig.axes]
    np.testing.assert_array_equal(panels[0], patch[4].numpy())  # XY: plane (y, x) at z = 4
    np.testing.assert_array_equal(panels[1], patch[:, :, 4].T.numpy())  # YZ: rows y, columns z, at x = 4
    np.testing.assert_array_equal(panels[2], patch[:, 4, :].numpy())  # XZ: rows z, columns x, at y = 4
    through = view_slices(patch, torch.zeros(8, 8, 8, dtype=torch.long), center=(2, 6, 2))
    panels = [ax.get_images()[0].get_array() for ax in through.axes[:3]]
    np.testing.assert_array_equal(panels[0], patch[2].numpy())  # XY through z = 2
    np.testing.assert_array_equal(panels[1], patch[:, :, 2].T.numpy())  # YZ through x = 2
    np.testing.assert_array_equal(panels[2], patch[:, 6, :].numpy())  # XZ through y = 6


def test_central_particle_is_the_one_farthest_from_the_faces():
    beads = [Particle("fiducial", x=1, y=10, z=10), Particle("fiducial", x=9, y=9, z=8),
             Particle("5MRC", x=10, y=10, z=10)]
    assert central_particle(beads, (20, 20, 20), 15) is beads[1]
    assert central_particle(beads, (20, 20, 20), 14) is None


def test_crop_around_stays_inside_and_keeps_the_centre(volume_and_labels):
    volume, _, _ = volume_and_labels  # (20, 24, 28)
    cube, local = crop_around(volume, (1, 12, 27), 8)
    assert cube.shape == (8, 8, 8) and local == (1, 4, 7)
    assert float(cube[local]) == float(volume[1, 12, 27])
    with pytest.raises(DataError, match="cannot cut"):
        crop_around(volume, (0, 0, 0), 21)


def test_correlation_lengths_find_the_stretched_axis():
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(40, 40, 40, generator=generator)
    stretched = sum(noise.roll(shift, dims=0) for shift in range(6))  # correlated over 6 voxels along z only
    lengths = correlation_lengths(stretched)
    assert lengths["z"] > 2.5 and lengths["y"] < 1.0 and lengths["x"] < 1.0
    with pytest.raises(DataError, match="3D"):
        correlation_lengths(noise[0])


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


# --- chapter figures moved into the library (issue 10, section 6) ---------------------------------------------

def test_dataset_figures_of_chapter_2(volume_and_labels):
    from mvgtutor.viz.dataset import (augmentation_figure, class_balance_figure, class_fractions, log_amplitude,
                                      patch_grid_figure, wedge_spectra_figure)

    volume, labels, _ = volume_and_labels
    fraction = class_fractions(np.bincount(labels.ravel(), minlength=16))
    assert fraction.sum() == pytest.approx(1.0) and fraction[13] > 0
    fig = class_balance_figure(fraction, "balance")
    assert len(fig.axes[0].patches) == 16 and fig.axes[0].get_yscale() == "log"
    with pytest.raises(DataError, match="one value per class"):
        class_balance_figure(fraction[:3])
    grid = patch_grid_figure(volume, patch_size=8, z=6)
    assert len(grid.axes[0].lines) == len(range(0, 29, 8)) + len(range(0, 25, 8))
    np.testing.assert_array_equal(grid.axes[0].get_images()[0].get_array(), volume[6])
    patches = torch.from_numpy(volume[:8, :8, :8]).expand(3, 1, 8, 8, 8)
    copies = augmentation_figure(patches, torch.zeros(3, 8, 8, 8, dtype=torch.long), ["a", "b", "c"])
    assert [ax.get_title() for ax in copies.axes] == ["a (z = 4)", "b (z = 4)", "c (z = 4)"]
    with pytest.raises(DataError, match="same shape"):
        augmentation_figure(patches, torch.zeros(3, 8, 8, 7, dtype=torch.long))
    spectrum = log_amplitude(volume)
    assert spectrum.shape == SHAPE and float(spectrum[10, 12, 14]) == pytest.approx(
        float(np.log1p(abs(volume.sum()))), rel=1e-4)  # the zero frequency sits at the centre
    spectra = wedge_spectra_figure({"one": volume, "two": volume})
    assert [ax.get_xlabel() for ax in spectra.axes] == ["$k_x$", "$k_x$"]


def test_cluster_figures_of_chapter_3():
    from mvgtutor.viz.clusters import (cells_to_voxels, cluster_palette, cluster_planes_figure,
                                       graph_methods_figure, inertia_curve_figure)

    assignment = torch.arange(8) % 3  # a 2^3 token grid, three clusters
    voxels = cells_to_voxels(assignment, grid=2, token_patch=4)  # (8, 8, 8)
    assert voxels.shape == (8, 8, 8) and int(voxels[7, 7, 7]) == int(assignment[7]) and int(voxels[0, 0, 4]) == 1
    with pytest.raises(DataError, match="grid"):
        cells_to_voxels(assignment, grid=3, token_patch=4)
    assert len(cluster_palette(3)) == 3 and all(0 <= c < 2**24 for c in cluster_palette(3))
    patch = torch.randn(8, 8, 8)
    fig = cluster_planes_figure(patch, torch.zeros(8, 8, 8, dtype=torch.long), voxels, 3, "t")
    assert len(fig.axes) == 6
    np.testing.assert_array_equal(fig.axes[2].get_images()[0].get_array(), voxels[4].numpy())
    assert inertia_curve_figure([0, 1], [2.0, 1.0]).axes[0].get_ylabel() == "inertia (eq. 3)"
    methods = graph_methods_figure({"kmeans": assignment, "mincut": assignment}, 2, 3, {"kmeans": 1.5})
    assert [ax.get_title() for ax in methods.axes] == ["kmeans: inertia 1.5", "mincut"]


def test_training_figures_of_chapter_7():
    from mvgtutor.viz.training import class_dice_figure, dice_curves, dice_curves_figure, loss_curves_figure

    history = [{"epoch": e, "loss": 3.0 - e, "ce_fused": 1.0, "ce_xy": 0.5, "val_dice": [0.9] + [None] * 13
                + [0.2 * e, 0.0]} for e in (1, 2)]
    fig = loss_curves_figure(history)
    assert [line.get_label() for line in fig.axes[1].get_lines()] == ["ce_fused", "ce_xy"]
    curves = dice_curves(history, {"vesicle": [14], "vesicle and fiducial": [14, 15], "absent": [3]})
    assert curves == {"vesicle": [0.2, 0.4], "vesicle and fiducial": [0.1, 0.2], "absent": [0.0, 0.0]}
    assert len(dice_curves_figure(history, curves).axes[0].get_lines()) == 3
    with pytest.raises(DataError, match="validate=True"):
        dice_curves([{"epoch": 1, "loss": 1.0}], {"vesicle": [14]})
    dice = np.full(16, np.nan)
    dice[14] = 0.7
    bars = class_dice_figure(dice).axes[0].patches
    assert len(bars) == 15 and bars[13].get_height() == pytest.approx(0.7) and bars[0].get_height() == 0


def test_decoder_figures_of_chapter_6():
    from mvgtutor.model.inspect import DecoderCost
    from mvgtutor.viz.model import decoder_cost_figure, format_decoder_costs, middle_slices_figure

    costs = [DecoderCost("mf", 10, 100, 2_000_000_000, 1_000_000, 9_000_000)]
    fig = decoder_cost_figure(costs, "test")
    assert fig.axes[0].patches[0].get_height() == pytest.approx(1.0)
    assert fig.axes[1].patches[0].get_height() == pytest.approx(2.0)
    assert "2.00" in format_decoder_costs(costs, "test").splitlines()[1]
    volume = torch.randn(4, 5, 6)
    slices = middle_slices_figure(volume, {"map": volume * 2})
    np.testing.assert_array_equal(slices.axes[1].get_images()[0].get_array(), (volume * 2)[2].numpy())
