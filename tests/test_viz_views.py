"""Figures of chapters 4 and 5 (mvgtutor.viz.views): the right planes, the wedge measured, attention panels."""

import dataclasses

import matplotlib

matplotlib.use("Agg")
import pytest  # noqa: E402
import torch  # noqa: E402

from mvgtutor.config import make_profile  # noqa: E402
from mvgtutor.errors import DataError  # noqa: E402
from mvgtutor.model import MVGFormer  # noqa: E402
from mvgtutor.viz.views import (axis_widths, busiest_patch, cluster_sorted_attention, object_centre,  # noqa: E402
                                query_attention_overlay, view_planes, widths_table)


def ellipsoid(centre=(16, 12, 20), radii=(6.0, 3.0, 3.0), size=32):
    """A dark ellipsoid (elongated along z, as the missing wedge makes a sphere) and its round true label."""
    z, y, x = torch.meshgrid(*[torch.arange(size, dtype=torch.float32)] * 3, indexing="ij")
    offsets = [(a - c) / r for a, c, r in zip((z, y, x), centre, radii)]
    image = -(sum(o.square() for o in offsets) <= 1).float()
    sphere = sum(((a - c) / 3.0).square() for a, c in zip((z, y, x), centre)) <= 1
    return image, sphere.long() * 15


def test_object_centre_and_widths_see_the_elongation_along_z():
    image, labels = ellipsoid()
    assert object_centre(labels, 15) == (16, 12, 20)
    widths = axis_widths(image, labels, 15)
    assert widths["z"] > widths["y"] + 4 and widths["y"] == widths["x"]
    table = widths_table(widths)
    assert "XY: plane (y, x)" in table and table.count("z in the plane") == 2
    with pytest.raises(DataError, match="no voxel is labelled 3"):
        object_centre(labels, 3)
    assert busiest_patch(torch.stack([labels * 0, labels]), 15) == 1


def test_view_planes_draws_each_view_plane_through_the_centre():
    image, labels = ellipsoid()
    fig = view_planes(image, labels, (16, 12, 20), outline=15)
    axes = fig.axes[:3]
    assert [(ax.get_ylabel(), ax.get_xlabel()) for ax in axes] == [("y", "x"), ("y", "z"), ("z", "x")]
    assert [ax.get_title().split("\n")[1] for ax in axes] == ["z = 16", "x = 20", "y = 12"]


def test_attention_figures_run_on_encoder_features():
    config = dataclasses.replace(make_profile("test").model, vsl=False)
    model = MVGFormer(config).eval()
    x = torch.randn(1, 1, 32, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        features = model.forward_features(x, return_attention=True)
    assert len(cluster_sorted_attention(features).axes) == 4  # two maps and their colour bars
    fig = query_attention_overlay(x[0, 0], torch.zeros(32, 32, 32, dtype=torch.long), features, 292, 4)
    assert "token 292" in fig.axes[2].get_title()
