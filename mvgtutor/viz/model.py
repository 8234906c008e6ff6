"""Figures of chapter 6: the decoders compared by size, and one channel of the voxel maps each up-sampling makes.

``costs`` are ``mvgtutor.model.inspect.DecoderCost`` rows; volumes are ``(D, H, W)`` tensors or arrays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from mvgtutor.viz.slices import as_array


def decoder_cost_figure(costs: Sequence, profile_name: str) -> Figure:
    """Left: decoder parameters at the paper's settings (millions); right: forward GFLOP per sample at the profile."""
    names = [row.decoder for row in costs]
    fig, axes = plt.subplots(1, 2, figsize=(8, 2.8), constrained_layout=True)
    axes[0].bar(names, [row.paper_decoder_parameters / 1e6 for row in costs], color="#4363d8")
    axes[0].set_ylabel("decoder parameters (M)")
    axes[0].set_title("paper settings", fontsize="small")
    axes[1].bar(names, [row.flops_per_sample / 1e9 for row in costs], color="#f58231")
    axes[1].set_ylabel("GFLOP per sample (forward)")
    axes[1].set_title(f"profile {profile_name}", fontsize="small")
    return fig


def format_decoder_costs(costs: Sequence, profile_name: str) -> str:
    """The rows of ``decoder_costs`` as an aligned text table."""
    lines = [f"{'decoder':>8} | {profile_name + ' profile: decoder':>24} {'model':>10} {'GFLOP/sample':>13} | "
             f"{'paper: decoder':>15} {'model':>12}"]
    lines += [f"{row.decoder:>8} | {row.decoder_parameters:>24,} {row.model_parameters:>10,} "
              f"{row.flops_per_sample / 1e9:>13.2f} | {row.paper_decoder_parameters:>15,} "
              f"{row.paper_model_parameters:>12,}" for row in costs]
    return "\n".join(lines)


def middle_slices_figure(image, maps: Mapping[str, object], size: float = 3.2) -> Figure:
    """The middle z-slice of a ``(D, H, W)`` ``image`` (grey) beside that of each named ``(D, H, W)`` map."""
    panels = [("patch", as_array(image), "gray")] + [(name, as_array(m), "coolwarm") for name, m in maps.items()]
    fig, axes = plt.subplots(1, len(panels), figsize=(size * len(panels), size), constrained_layout=True,
                             squeeze=False)
    for ax, (name, volume, cmap) in zip(axes[0], panels):
        middle = volume.shape[0] // 2
        ax.imshow(volume[middle], cmap=cmap, origin="lower")
        ax.set_title(f"{name}, z = {middle}", fontsize="small")
        ax.set_xlabel("x")
        ax.set_ylabel("y")
    return fig
