"""The learning curves of chapter 7: reading, tabulating and plotting the committed lever curves."""

import json

import matplotlib
import pytest

from mvgtutor.errors import DataError
from mvgtutor.train.curves import committed_curves, curve_table, lever_curves_figure, read_curve

matplotlib.use("Agg")


def _curve(rows, **extra):
    return dict(label="x", rows=[dict(samples=s, vesicle=v, fiducial=0.0, big_five=b) for s, v, b in rows], **extra)


def test_the_committed_curves_read_and_hold_rows_in_order():
    labels = committed_curves()
    assert "cpu-fg-cosine" in labels and "cpu-grid-step-partial" in labels
    for label in labels:
        curve = read_curve(label)
        samples = [row["samples"] for row in curve["rows"]]
        assert samples == sorted(samples) and samples[0] > 0
        assert all(0.0 <= row["vesicle"] <= 1.0 for row in curve["rows"])


def test_a_table_takes_the_last_scoring_within_each_budget_and_none_past_the_end():
    curves = {"long": _curve([(300, 0.1, 0.0), (600, 0.3, 0.1), (900, 0.5, 0.2)]),
              "short": _curve([(300, 0.2, 0.05)], note="stopped")}
    rows = curve_table(curves, [300, 750, 900])
    assert rows[0]["curve"] == "long" and rows[0]["vesicle@300"] == 0.1 and rows[0]["vesicle@750"] == 0.3
    assert rows[0]["vesicle@900"] == 0.5 and rows[0]["big_five@900"] == 0.2
    assert rows[1]["vesicle@300"] == 0.2 and rows[1]["vesicle@750"] is None  # it stopped at 300 samples


def test_the_figure_has_one_panel_per_metric_and_one_line_per_curve():
    curves = {"a": _curve([(300, 0.1, 0.0), (600, 0.3, 0.1)]), "b": _curve([(300, 0.2, 0.05)])}
    figure = lever_curves_figure(curves, title="t")
    assert len(figure.axes) == 3 and all(len(axis.lines) == 2 for axis in figure.axes)


def test_a_file_that_is_not_a_curve_is_refused_with_the_fix(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"rows": [{"epoch": 1}]}))
    with pytest.raises(DataError, match="learning_curve.py"):
        read_curve(bad)
    with pytest.raises(DataError, match="committed labels"):
        read_curve("no-such-curve")


def test_bars_per_profile_and_their_verdicts():
    from mvgtutor.train.bars import BARS, bar_means, bar_rows, bars_for

    dice = [None] * 16
    dice[14], dice[15] = 0.75, float("nan")  # vesicles present, no fiducial in this tomogram
    dice[13], dice[2] = 0.5, 0.3  # 5MRC and 4CR2; the other three of the five largest absent
    assert bar_means(dice) == dict(vesicle=0.75, fiducial=None, big_five=0.4)
    rows = {r["quantity"]: r for r in bar_rows(dice, "cpu")}
    assert rows["vesicle"]["met"] == "met" and rows["fiducial"]["met"] == "absent"
    assert rows["mean of 5MRC, 4CR2, 4V94, 1QVR, 3CF3"]["met"] == "met"  # 0.4 >= 0.4
    assert [r["met"] for r in bar_rows(dice, "colab")] == ["not met", "absent", "not met"]
    assert bars_for("test") == ("cpu", BARS["cpu"]) and bars_for("paper")[0] == "reference"
    with pytest.raises(KeyError, match="choose one of"):
        bars_for("laptop")
