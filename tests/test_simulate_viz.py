"""The simulator's figures (chapter 1): the structure gallery and the contrast bars."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from mvgtutor.viz.simulation import contrast_bars, structure_gallery  # noqa: E402


def test_structure_gallery_pairs_each_map_with_its_atomic_model():
    fig = structure_gallery(["3QM1", "5MRC", "1BXN"], columns=3)
    titles = [ax.get_title() for ax in fig.axes]
    assert any(t.startswith("3QM1 31 kDa") for t in titles) and any(t.startswith("5MRC 3325 kDa") for t in titles)
    assert titles.count("atomic model") == 2  # 5MRC has no model in PolNet's snapshot
    assert sum(bool(ax.images) for ax in fig.axes) == 5
    plt.close(fig)


def test_contrast_bars_draws_one_bar_per_class_and_setting():
    fig = contrast_bars({"before": {"3QM1": -1.8, "5MRC": -1.3}, "after": {"3QM1": -0.1, "5MRC": -0.9}})
    ax = fig.axes[0]
    assert len(ax.patches) == 4 and [t.get_text() for t in ax.get_xticklabels()] == ["3QM1", "5MRC"]
    plt.close(fig)
