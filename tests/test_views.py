"""The three views sit on the physical axes their names say (paper Sec. 4.2, axes mapped by name)."""

import pytest
import torch

from mvgtutor.model.views import VIEWS, from_view, stack_from_views, to_view, view_plane


def _coordinate_volumes(n=(3, 4, 5)):
    """Three volumes whose voxel values are their own z, y and x index (a non-cubic grid keeps axes apart)."""
    z, y, x = torch.meshgrid(*(torch.arange(k) for k in n), indexing="ij")
    return {"z": z, "y": y, "x": x}


@pytest.mark.parametrize("view,plane", [("xy", ("y", "x")), ("yz", ("y", "z")), ("xz", ("z", "x"))])
def test_each_view_has_the_image_plane_its_name_says(view, plane):
    assert view_plane(view) == plane
    coords = _coordinate_volumes()
    moved = {axis: to_view(volume, view) for axis, volume in coords.items()}
    # along the view's last two dims, exactly the named physical axes vary
    for dim, axis in zip((-2, -1), plane):
        varying = [name for name, vol in moved.items() if (vol.diff(dim=dim) != 0).any()]
        assert varying == [axis]
    # the slicing (first) dim is the remaining axis
    (depth,) = set("zyx") - set(plane)
    assert [name for name, vol in moved.items() if (vol.diff(dim=-3) != 0).any()] == [depth]


def test_every_non_xy_view_moves_z_into_its_plane():
    for view in VIEWS:
        assert ("z" in view_plane(view)) == (view != "xy")


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("shape", [(2, 3, 4, 5, 6), (4, 5, 6), (2, 4, 5, 6)])
def test_to_view_and_from_view_are_exact_inverses(view, shape):
    x = torch.randn(shape)
    assert torch.equal(from_view(to_view(x, view), view), x)
    assert torch.equal(to_view(from_view(x, view), view), x)
    assert torch.equal(to_view(to_view(x, view), view), x)  # each view is one swap: its own inverse


def test_stack_from_views_brings_every_view_back_to_the_canonical_grid():
    x = torch.randn(2, 3, 4, 5, 6)
    views = ("xy", "yz", "xz", "yz")  # a repeated view too (Table 13)
    stacked = stack_from_views([to_view(x, v) for v in views], views)
    assert stacked.shape == (4, *x.shape)
    assert all(torch.equal(stacked[i], x) for i in range(len(views)))
    with pytest.raises(ValueError):  # one tensor per view, no silent truncation
        stack_from_views([x], views)
