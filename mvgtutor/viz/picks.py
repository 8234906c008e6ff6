"""Figures for particle picking (chapter 13): what counts as a hit, why F-beta with beta = 4 favours recall,
and picks over the tomogram in 3D.

* ``hit_rules_figure()``: one made-up 2D field of particles and picks, judged by the paper's rule (within the
  radius, one pick per particle), the CZII rule (within half the radius) and SHREC 2021's (inside the particle's
  dilated occupancy);
* ``fbeta_figure(betas)``: F-beta over the precision-recall square, one panel per beta;
* ``picks_scene(volume, truth, picks, match)``: a k3d scene (``mvgtutor.viz.scene3d``) with the true centres in
  their class colours and the picks as hits (black) and false positives (red), plus the static stand-in.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

HIT_COLOR = "#1a9641"
MISS_COLOR = "#d7191c"

# The made-up example of ``hit_rules_figure``: particle centres (x, y), radii, and picks (x, y), in voxels.
_EXAMPLE_PARTICLES = np.array([[12.0, 14.0], [30.0, 30.0], [46.0, 14.0], [50.0, 44.0]])
_EXAMPLE_RADII = np.array([7.0, 9.0, 5.0, 6.0])
_EXAMPLE_PICKS = np.array([[13.0, 15.5], [16.5, 17.0], [36.0, 33.5], [29.0, 29.0], [46.5, 18.2], [53.5, 47.0],
                           [24.0, 50.0]])


def hit_rules_figure(size: float = 3.4) -> Figure:
    """Three panels, one per rule, on the same made-up 2D field: circles are particles (dashed: half the
    radius, the CZII threshold), crosses are picks, green a hit and red a false positive; a particle drawn
    red was missed. The counts in each title come from ``match_points`` / the occupancy rule."""
    from mvgtutor.picking.matching import match_points

    particles3 = np.c_[_EXAMPLE_PARTICLES, np.zeros(len(_EXAMPLE_PARTICLES))]
    picks3 = np.c_[_EXAMPLE_PICKS, np.zeros(len(_EXAMPLE_PICKS))]
    paper = match_points(picks3, particles3, _EXAMPLE_RADII, rule="one_to_one", strict=True)
    czii = match_points(picks3, particles3, 0.5 * _EXAMPLE_RADII, rule="czii")
    inside = np.linalg.norm(_EXAMPLE_PICKS[:, None] - _EXAMPLE_PARTICLES[None], axis=2) <= _EXAMPLE_RADII + 1
    shrec_pick = np.where(inside.any(1), inside.argmax(1), -1)  # the occupied (dilated by 1 voxel) particle
    shrec_found = np.zeros(len(_EXAMPLE_PARTICLES), bool)
    shrec_first = np.zeros(len(_EXAMPLE_PICKS), bool)
    for p, t in enumerate(shrec_pick):
        if t >= 0 and not shrec_found[t]:
            shrec_found[t] = shrec_first[p] = True
    panels = [
        ("paper: within the radius,\none pick per particle", paper.pick_truth >= 0, paper.truth_found, 1.0,
         f"TP {paper.tp}  FP {paper.fp}  FN {paper.fn}"),
        ("CZII: within 0.5 x radius", czii.pick_truth >= 0, czii.truth_found, 0.5,
         f"TP {czii.tp}  FP {czii.fp}  FN {czii.fn}"),
        ("SHREC 2021: inside the particle\n(occupancy dilated by one voxel)", shrec_first, shrec_found, None,
         f"TP {shrec_found.sum()}  picks {len(_EXAMPLE_PICKS)}  FN {(~shrec_found).sum()}"),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(3 * size, size + 0.5), constrained_layout=True)
    for ax, (title, pick_hit, found, threshold, counts) in zip(axes, panels):
        for (x, y), r, ok in zip(_EXAMPLE_PARTICLES, _EXAMPLE_RADII, found):
            color = HIT_COLOR if ok else MISS_COLOR
            ax.add_patch(plt.Circle((x, y), r, facecolor=color, alpha=0.15, edgecolor=color))
            if threshold is not None and threshold < 1:
                ax.add_patch(plt.Circle((x, y), threshold * r, fill=False, edgecolor=color, linestyle="--"))
            ax.plot(x, y, ".", color=color)
        for (x, y), ok in zip(_EXAMPLE_PICKS, pick_hit):
            ax.plot(x, y, "x", color=HIT_COLOR if ok else MISS_COLOR, markersize=9, markeredgewidth=2)
        ax.set_xlim(0, 62); ax.set_ylim(0, 58); ax.set_aspect("equal")  # noqa: E702
        ax.set_title(f"{title}\n{counts}", fontsize="small")
        ax.set_xlabel("x (voxels)")
    axes[0].set_ylabel("y (voxels)")
    return fig


def fbeta_figure(betas=(1.0, 4.0), size: float = 3.4) -> Figure:
    """F-beta (``(1 + b^2) P R / (b^2 P + R)``) over precision and recall in [0, 1], one panel per beta,
    with the two corner pickers marked: a careful one (P 0.9, R 0.5) and an eager one (P 0.5, R 0.9)."""
    from mvgtutor.picking.scores import Counts

    grid = np.linspace(0.005, 1, 200)
    precision, recall = np.meshgrid(grid, grid)
    fig, axes = plt.subplots(1, len(betas), figsize=(len(betas) * size + 0.8, size), constrained_layout=True)
    axes = np.atleast_1d(axes)
    pickers = {"careful": (0.9, 0.5), "eager": (0.5, 0.9)}
    for ax, beta in zip(axes, betas):
        f = (1 + beta**2) * precision * recall / (beta**2 * precision + recall)
        image = ax.contourf(precision, recall, f, levels=np.linspace(0, 1, 11), cmap="viridis")
        ax.contour(precision, recall, f, levels=[0.5, 0.7, 0.9], colors="white", linewidths=0.8)
        labels = []
        for name, (p, r) in pickers.items():
            tp = 1000
            counts = Counts(tp, round(tp / p) - tp, round(tp / r) - tp)
            ax.plot(p, r, "o", color="white", markeredgecolor="black")
            ax.annotate(name, (p, r), textcoords="offset points", xytext=(5, 5), color="white", fontsize="small")
            labels.append(f"{name} {counts.fbeta(beta):.2f}")
        ax.set_xlabel("precision"); ax.set_ylabel("recall")  # noqa: E702
        ax.set_title(f"F-beta, beta = {beta:g}\n" + ", ".join(labels), fontsize="small")
    fig.colorbar(image, ax=axes, label="F-beta")
    return fig


def picks_scene(volume, truth, picks, pick_hit=None, *, title: str | None = None, max_side: int = 64):
    """A 3D scene of a ``(Z, Y, X)`` volume with true centres (voxel ``Picks`` or ``Particle`` s, class colours)
    and voxel ``picks`` as points: black where ``pick_hit (P,)`` is true, red where false (all black when
    None). Returns a ``mvgtutor.viz.scene3d.Scene``; show it with ``show_scene``."""
    import k3d

    from mvgtutor.viz.scene3d import offline_widgets, tomogram_scene

    particles = truth.to_particles() if hasattr(truth, "to_particles") else list(truth)
    if picks.unit != "voxel":
        from mvgtutor.errors import DataError

        raise DataError("picks_scene: picks must be in voxels of the volume (convert with .to_voxels())")
    hit = np.ones(len(picks), bool) if pick_hit is None else np.asarray(pick_hit, bool)
    scene = tomogram_scene(volume, particles=particles, title=title, max_side=max_side)
    side = max(np.shape(volume))
    with offline_widgets():
        for mask, color, name in ((hit, 0x000000, "picks (hits)"), (~hit, 0xD7191C, "picks (false positives)")):
            if mask.any():
                scene.plot += k3d.points(picks.xyz[mask].astype(np.float32), color=color, point_size=max(1.0, side / 60),
                                         shader="flat", name=name)
    layout = [("x", "y"), ("x", "z"), ("y", "z")]
    column = {"x": 0, "y": 1, "z": 2}
    for ax, (a, b) in zip(scene.figure.axes[:3], layout):
        for mask, color in ((hit, "black"), (~hit, MISS_COLOR)):
            ax.scatter(picks.xyz[mask, column[a]], picks.xyz[mask, column[b]], marker="x", s=14, c=color,
                       linewidths=0.8)
    return scene
