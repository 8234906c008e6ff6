"""Chapter 12's figures, 3D scenes and explorer (mvgtutor.viz.inside)."""

import dataclasses

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from mvgtutor.config import make_profile
from mvgtutor.errors import DataError
from mvgtutor.interpret import attention_volume, cluster_volume, inspect_patch
from mvgtutor.model import MVGFormer
from mvgtutor.viz import inside
from mvgtutor.viz.scene3d import snapshot_html

matplotlib.use("Agg")
SMALL = dataclasses.replace(make_profile("test").model, input_size=16, p3da_dilations=(1, 2, 4, 6), decoder="mlp",
                            vsl=False)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return MVGFormer(SMALL).eval()


def test_heatmap_overlay_figure_has_the_input_and_one_panel_per_model():
    image = np.random.default_rng(0).normal(size=(16, 16, 16))
    heat = np.random.default_rng(1).uniform(size=(16, 16, 16))
    fig = inside.heatmap_overlay_figure(image, {"k-means": heat, "none": heat, "spectral": heat})
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[:4] == ["input", "k-means", "none", "spectral"] and len(fig.axes) == 5  # + the colour bar
    labelled = inside.heatmap_overlay_figure(image, {"k-means": heat}, labels=np.zeros((16, 16, 16), int), z=3)
    assert [ax.get_title() for ax in labelled.axes][:3] == ["input", "true labels", "k-means"]
    assert labelled.get_suptitle() == "x-y slice z = 3"
    with pytest.raises(DataError, match="same shape"):
        inside.heatmap_overlay_figure(image, {"bad": heat[:8]})
    with pytest.raises(DataError, match="same shape"):
        inside.heatmap_overlay_figure(image, {"k-means": heat}, labels=np.zeros((8, 16, 16), int))


def test_scenes_build_a_k3d_snapshot_and_a_static_stand_in(model):
    x = torch.randn(1, 1, 16, 16, 16, generator=torch.Generator().manual_seed(0))
    clusters = cluster_volume(model, x)[0]
    attention = attention_volume(model, x, (8, 8, 8), layer=0, view="xy")[0]
    scenes = [inside.heatmap_scene(torch.rand(16, 16, 16)), inside.graph_scene(clusters, 4, query=(8, 8, 8)),
              inside.graph_scene(clusters, 4), inside.attention_scene(attention, (8, 8, 8))]
    for scene in scenes:
        assert len(scene.plot.objects) >= 1 and len(scene.figure.axes) == 3
        html = snapshot_html(scene.plot, scene.height)
        assert html.startswith('<div class="mvgtutor-k3d"') and len(html) > 100_000  # k3d's code inlined
    points = scenes[1].plot.objects[0]
    sizes = np.asarray(points.point_sizes)
    assert len(sizes) == 64 and (sizes == sizes.max()).sum() == int((clusters[::4, ::4, ::4] == clusters[8, 8, 8]).sum())
    titles = [ax.get_title() for ax in inside.cluster_slices_figure(clusters, (1, 2, 3)).axes]
    assert titles == ["graph node per voxel, z = 1", "graph node per voxel, y = 2", "graph node per voxel, x = 3"]
    with pytest.raises(DataError, match="heatmap must be"):
        inside.heatmap_scene(torch.rand(16, 16))


def test_patch_insight_figure_and_png(model):
    volume = torch.randn(24, 24, 24, generator=torch.Generator().manual_seed(3))
    labels = torch.randint(0, 16, (24, 24, 24), generator=torch.Generator().manual_seed(4))
    insight = inspect_patch(model, volume, (12, 12, 12), labels)
    fig = inside.patch_insight_figure(insight)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[:4] == ["view XY: y-x plane", "view YZ: y-z plane", "view XZ: z-x plane", "heatmap, z = 8"]
    assert titles[5:10] == ["XY prediction", "YZ prediction", "XZ prediction", "fused prediction", "true labels"]
    assert inside.render_insight_png(insight)[:8] == b"\x89PNG\r\n\x1a\n"


def test_inside_explorer_redraws_for_a_new_position(model):
    volume = torch.randn(24, 24, 24, generator=torch.Generator().manual_seed(5))
    explorer = inside.inside_explorer(model, volume)
    sliders, image = explorer.children[0].children, explorer.children[1]
    assert [s.description for s in sliders] == ["z", "y", "x"] and [s.value for s in sliders] == [12, 12, 12]
    first = image.value
    assert first[:4] == b"\x89PNG"
    sliders[0].value = 2
    assert image.value != first
    with pytest.raises(DataError, match="volume must be"):
        inside.inside_explorer(model, volume[0])
