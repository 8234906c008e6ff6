"""The paper's three observation perspectives (Sec. 4.2), written once and used everywhere.

Axis convention of the whole course (MONAI-style, channel first): a patch is a tensor ``(B, C, D, H, W)``
with D = z, H = y, W = x, exactly as an MRC array indexed ``[z, y, x]``.

The paper writes a patch as ``H x W x D`` and defines the views as axis orders of that grid:

* ``xy`` = (H, W, D): the canonical order, here the identity;
* ``yz`` = (H, D, W): the last two paper axes swapped;
* ``xz`` = (D, W, H): the first and last paper axes swapped.

We map the paper's ``(H, W, D)`` onto our three spatial tensor dims in order (dims 2, 3, 4). Each view is
then a single swap of two spatial dims, so every view is its own inverse: ``from_view(to_view(x, v), v) == x``.
"""

from __future__ import annotations

import torch

from mvgtutor.errors import ConfigError

VIEWS: tuple[str, ...] = ("xy", "yz", "xz")

# Spatial-axis order of each view, as indices into the paper's (H, W, D) = tensor dims (2, 3, 4).
VIEW_AXES: dict[str, tuple[int, int, int]] = {
    "xy": (0, 1, 2),  # (H, W, D)
    "yz": (0, 2, 1),  # (H, D, W)
    "xz": (2, 1, 0),  # (D, W, H)
}


def _check_view(view: str) -> tuple[int, int, int]:
    if view not in VIEW_AXES:
        raise ConfigError(f"unknown view {view!r}: use one of {', '.join(VIEWS)}")
    return VIEW_AXES[view]


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
