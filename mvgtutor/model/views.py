"""The paper's three observation perspectives (Sec. 4.2), written once and used everywhere.

Axis convention of the whole course (MONAI-style, channel first): a patch is a tensor ``(B, C, D, H, W)``
with D = z (depth, the beam axis), H = y, W = x, exactly as an MRC array indexed ``[z, y, x]``. A view's tensor
is read the same way: its first spatial dim is the slicing (depth) axis, the last two span its *image plane*.

The paper writes a patch as ``H x W x D`` (D = depth) and defines the views by axis order (Sec. 4.2):
``x_XY`` in H x W x D, ``x_YZ`` in H x D x W and ``x_XZ`` in D x W x H, the image plane being the first two
axes. We map the paper's axes **by name** (H = y, W = x, D = z), not by position, so that

* ``xy`` = (z, y, x): the canonical order, image plane (y, x): the identity;
* ``yz`` = (x, y, z): image plane (y, z), sliced along x: z and x swapped;
* ``xz`` = (y, z, x): image plane (z, x), sliced along y: z and y swapped.

Both non-XY views have z in their image plane, so they see the missing wedge's elongation along the beam that
the XY view cannot (the paper's motivation, Sec. 1). Each view is a single swap of two spatial dims, so every
view is its own inverse: ``from_view(to_view(x, v), v) == x`` and ``to_view(to_view(x, v), v) == x``.
"""

from __future__ import annotations

import torch

from mvgtutor.errors import ConfigError

VIEWS: tuple[str, ...] = ("xy", "yz", "xz")

SPATIAL_AXES: tuple[str, ...] = ("z", "y", "x")  # the canonical tensor's spatial dims (-3, -2, -1)

# Spatial-axis order of each view, as indices into the canonical (z, y, x) = tensor dims (-3, -2, -1).
VIEW_AXES: dict[str, tuple[int, int, int]] = {
    "xy": (0, 1, 2),  # (z, y, x): the paper's H x W x D, plane (y, x)
    "yz": (2, 1, 0),  # (x, y, z): the paper's H x D x W, plane (y, z)
    "xz": (1, 0, 2),  # (y, z, x): the paper's D x W x H, plane (z, x)
}


def _check_view(view: str) -> tuple[int, int, int]:
    if view not in VIEW_AXES:
        raise ConfigError(f"unknown view {view!r}: use one of {', '.join(VIEWS)}")
    return VIEW_AXES[view]


def view_plane(view: str) -> tuple[str, str]:
    """The two physical axes spanning ``view``'s image plane, e.g. ``view_plane("xz") == ("z", "x")``."""
    axes = _check_view(view)
    return SPATIAL_AXES[axes[1]], SPATIAL_AXES[axes[2]]


def view_permutation(view: str, ndim: int = 5) -> tuple[int, ...]:
    """The ``Tensor.permute`` order that turns a canonical tensor into ``view`` (spatial dims last three)."""
    axes = _check_view(view)
    lead = tuple(range(ndim - 3))
    return lead + tuple(ndim - 3 + a for a in axes)


def to_view(x: torch.Tensor, view: str) -> torch.Tensor:
    """Re-arrange a canonical ``(..., D, H, W)`` tensor into ``view``'s axis order (same shape for cubes).

    Works for images ``(B, C, D, H, W)``, labels ``(B, D, H, W)`` and single volumes ``(D, H, W)``.
    """
    return x.permute(view_permutation(view, x.ndim))


def from_view(x: torch.Tensor, view: str) -> torch.Tensor:
    """Inverse of ``to_view``: bring a tensor in ``view``'s axis order back to the canonical grid."""
    perm = view_permutation(view, x.ndim)
    inverse = [0] * len(perm)
    for i, p in enumerate(perm):
        inverse[p] = i
    return x.permute(inverse)


def stack_from_views(per_view: list[torch.Tensor] | tuple[torch.Tensor, ...], views: tuple[str, ...]) -> torch.Tensor:
    """Per-view tensors ``[(B, ...) in view v's axis order for v in views]`` -> ``(V, B, ...)`` on the canonical
    grid (``from_view`` on each, then stacked): what fusion (eq. 8) needs."""
    return torch.stack([from_view(t, view) for t, view in zip(per_view, views, strict=True)])


def view_keys(views: tuple[str, ...]) -> tuple[str, ...]:
    """Distinct names for a list of views that may repeat (Table 13's ``("xy", "xy", "xy")``): the first
    occurrence keeps its name, the n-th repeat becomes ``"<view>_<n>"``, e.g. ``("xy", "xy_2", "xy_3")``."""
    keys, seen = [], {}
    for view in views:
        _check_view(view)
        seen[view] = seen.get(view, 0) + 1
        keys.append(view if seen[view] == 1 else f"{view}_{seen[view]}")
    return tuple(keys)
