"""The ablation lab: registry, statistics on known numbers, the results table, the report, and every registered
experiment building, training one step and scoring in a tiny profile."""

import csv
import dataclasses
import math

import pytest

from mvgtutor.ablations import (ABLATIONS, DEFAULT, ablation_profile, append_result, format_report,
                                paired_comparison, plot_report, read_results, report_rows, run_ablation, run_seed,
                                t_interval)
from mvgtutor.ablations.results import COLUMNS
from mvgtutor.cli import main
from mvgtutor.config import make_profile
from mvgtutor.errors import ConfigError, DataError
from train_helpers import tiny_profile, write_tiny_dataset

T_975_DOF2 = 4.302652729911275  # Student's t, 97.5% quantile, 2 degrees of freedom (printed tables: 4.303)


def test_t_interval_on_known_numbers():
    summary = t_interval([1.0, 2.0, 3.0])
    assert summary.n == 3 and summary.mean == 2.0 and summary.std == pytest.approx(1.0)
    assert summary.high - summary.mean == pytest.approx(T_975_DOF2 / math.sqrt(3))
    assert summary.low == pytest.approx(2.0 - T_975_DOF2 / math.sqrt(3))
    one = t_interval([5.0])
    assert one.mean == 5.0 and math.isnan(one.std) and math.isnan(one.low)
    with pytest.raises(ConfigError):
        t_interval([])


def test_paired_comparison_on_known_numbers():
    reference = {0: 1.0, 1: 2.0, 2: 3.0}
    other = {0: 2.0, 1: 4.0, 2: 3.5, 7: 99.0}  # seed 7 has no partner: left out
    paired = paired_comparison(reference, other)
    differences = [1.0, 2.0, 0.5]
    mean = sum(differences) / 3
    std = math.sqrt(sum((d - mean) ** 2 for d in differences) / 2)
    t = mean / (std / math.sqrt(3))
    assert paired.n == 3 and paired.mean_difference == pytest.approx(mean)
    assert paired.t == pytest.approx(t)
    assert paired.p == pytest.approx(1 - t / math.sqrt(t * t + 2))  # Student's t with 2 dof in closed form
    assert paired.high - paired.mean_difference == pytest.approx(T_975_DOF2 * std / math.sqrt(3))
    # the same differences on every seed: no spread, certainly not zero
    assert paired_comparison({0: 1.0, 1: 2.0}, {0: 2.0, 1: 3.0}).p == 0.0
    assert math.isnan(paired_comparison({0: 1.0}, {1: 2.0}).p)


def test_a_difference_inside_the_seed_spread_is_not_significant():
    reference = {0: 50.0, 1: 60.0, 2: 55.0}
    other = {0: 51.0, 1: 59.0, 2: 56.5}
    paired = paired_comparison(reference, other)
    assert paired.low < 0 < paired.high and paired.p > 0.05


def test_registry_covers_the_papers_ablations():
    families = {a.family for a in ABLATIONS.values()}
    for needed in ("Table 8", "Tables 9-10", "graph construction", "fusion", "loss (Table 9)", "Table 12",
                   "Table 13", "Table 11", "Fig. 9(a)", "Fig. 9(b)", "Fig. 9(c)", "VSL", "fidelity"):
        assert any(needed in family for family in families), needed
    for ablation in ABLATIONS.values():
        assert ablation.paper.source and ablation.paper.quote and ablation.question
        if ablation.paper.miou is not None:  # the number is quoted, not only typed
            assert f"{ablation.paper.miou:.1f}" in ablation.paper.quote, ablation.name
    assert all(a.available for a in ABLATIONS.values())  # every experiment of the registry is built
    for ablation in ABLATIONS.values():  # a paired comparison subtracts a registered, runnable experiment
        assert ABLATIONS[ablation.compare_with].available, ablation.name


@pytest.fixture
def unbuilt(monkeypatch):
    """An experiment whose parts are missing, for the paths that must refuse one (every registered one is built)."""
    from mvgtutor.ablations import Ablation, PaperResult

    entry = Ablation("unbuilt", "tests", "Can it run?", PaperResult("none", None, None, "none"),
                     needs="a part the course does not have")
    monkeypatch.setitem(ABLATIONS, entry.name, entry)
    return entry.name


def test_scaled_sizes_are_the_papers_numbers_in_the_paper_profile(unbuilt):
    paper = make_profile("gpu")
    assert ablation_profile("c128", paper).model.embed_dim == 128
    assert ablation_profile("ln6", paper).model.depth == 6
    assert ablation_profile("k8", paper).model.num_clusters == 8
    assert ablation_profile("k24", paper).model.num_clusters == 24
    cpu = make_profile("cpu")
    assert ablation_profile("c512", cpu).model.embed_dim == 2 * cpu.model.embed_dim
    assert ablation_profile("k32", cpu, absolute_sizes=True).model.num_clusters == 32
    assert ablation_profile("graph_spectral", cpu).model.graph_method == "spectral"
    assert ablation_profile("loss_boundary", cpu).train.loss == "ce_boundary_dice"
    assert ablation_profile(DEFAULT, cpu) == cpu
    with pytest.raises(ConfigError, match="not available"):
        ablation_profile(unbuilt, cpu)
    assert ablation_profile("patch16", paper).model.num_clusters == 8  # capped: 8 token cells at 16^3 tokens
    assert ablation_profile("patch16", cpu).model.token_patch == 16
    assert ABLATIONS["patch16"].delta() == "model.token_patch=16, model.num_clusters<=8"
    with pytest.raises(ConfigError, match="--list"):
        ablation_profile("no_such", cpu)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ablation")
    profile = tiny_profile()
    profile = dataclasses.replace(profile, model=dataclasses.replace(profile.model, decoder_channels=4))
    return profile, write_tiny_dataset(folder / "data"), folder


@pytest.mark.parametrize("name", [n for n, a in ABLATIONS.items() if a.available])
def test_every_ablation_builds_trains_one_step_and_scores(name, tiny, monkeypatch):
    profile, data, folder = tiny
    monkeypatch.setenv("MVGTUTOR_RUNS_DIR", str(folder / "runs"))
    row = run_seed(name, 0, profile, data_dir=data, train_overrides=dict(batch_size=2))
    assert row["experiment"] == name and row["epochs"] == 1 and row["samples_seen"] == 2  # one step of 2
    assert 0.0 <= row["miou"] <= 100.0 and 0.0 <= row["dice"] <= 100.0
    assert row["budget"] == "lab+custom" and set(row) == set(COLUMNS)


def _row(experiment, seed, miou, profile="cpu", budget="lab"):
    return {c: "" for c in COLUMNS} | dict(experiment=experiment, seed=seed, profile=profile, budget=budget,
                                          miou=miou, dice=miou + 5)


def test_results_append_replace_and_refuse_other_files(tmp_path):
    path = tmp_path / "results.csv"
    append_result(path, _row("default", 0, 10.0))
    append_result(path, _row("default", 1, 12.0))
    append_result(path, _row("default", 0, 11.0))  # a rerun of seed 0 replaces it
    rows = read_results(path)
    assert [(r["seed"], r["miou"]) for r in rows] == [(1, 12.0), (0, 11.0)]
    assert not list(tmp_path.glob(".*tmp"))
    with pytest.raises(DataError):
        append_result(path, {"experiment": "x"})
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="not an ablation results file"):
        read_results(other)


def test_report_rows_plot_and_missing_experiments(tmp_path, unbuilt):
    results = [_row("default", s, v) for s, v in enumerate((40.0, 44.0, 42.0))]
    results += [_row("k8", s, v) for s, v in enumerate((38.0, 41.0, 40.0))]
    results += [_row("k8", 0, 99.0, budget="profile")]  # another budget: not mixed in
    rows = {r["experiment"]: r for r in report_rows(results, "cpu", "lab")}
    assert rows["default"]["mean"] == pytest.approx(42.0) and rows["default"]["seeds"] == 3
    assert rows["k8"]["diff"] == pytest.approx(-7.0 / 3) and rows["k8"]["paper"] == 83.6
    assert rows["c128"]["status"] == "not run" and rows[unbuilt]["status"] == "not available"
    text = format_report(list(rows.values()))
    assert "not run" in text and "not available" in text and "k8" in text
    import matplotlib.pyplot as plt

    plt.close(plot_report(list(rows.values()), tmp_path / "plot.png"))
    assert (tmp_path / "plot.png").stat().st_size > 1000


def test_mvp_rows_are_compared_with_their_own_backbone():
    results = [_row("default", s, v) for s, v in enumerate((40.0, 44.0, 42.0))]
    results += [_row("unet3d", s, v) for s, v in enumerate((20.0, 22.0, 21.0))]
    results += [_row("unet3d_mvp", s, v) for s, v in enumerate((23.0, 24.5, 24.0))]
    rows = {r["experiment"]: r for r in report_rows(results, "cpu", "lab")}
    assert rows["unet3d"]["compare_with"] == "default" and rows["unet3d"]["diff"] == pytest.approx(-21.0)
    assert rows["unet3d_mvp"]["compare_with"] == "unet3d"
    assert rows["unet3d_mvp"]["diff"] == pytest.approx(8.5 / 3) and rows["unet3d_mvp"]["verdict"] == "better"
    assert "(vs unet3d)" in format_report(list(rows.values()))


def test_cli_list_report_and_errors(tmp_path, capsys, unbuilt):
    assert main(["ablate", "--list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in ABLATIONS) and "Table 9" in listed and "not available" in listed
    results = tmp_path / "r.csv"
    for seed, value in enumerate((40.0, 44.0, 42.0)):
        append_result(results, _row("default", seed, value, profile="test"))
    assert main(["ablate", "--report", "--profile", "test", "--results", str(results),
                 "--plot", str(tmp_path / "p.png")]) == 0
    out = capsys.readouterr().out
    assert "default" in out and "42.0" in out and (tmp_path / "p.png").is_file()
    assert main(["ablate", "no_such", "--profile", "test", "--results", str(results)]) == 1
    assert main(["ablate", unbuilt, "--profile", "test", "--results", str(results)]) == 1
    assert main(["ablate", "--report", "--profile", "test", "--results", str(tmp_path / "none.csv")]) == 1
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 3 and "--list" in errors[0] and "not available" in errors[1]


def test_run_ablation_appends_each_seed(tiny, tmp_path, monkeypatch):
    profile, data, folder = tiny
    monkeypatch.setenv("MVGTUTOR_RUNS_DIR", str(folder / "runs"))
    import mvgtutor.ablations.runner as runner

    monkeypatch.setattr(runner, "get_profile", lambda name=None: profile)
    calls = []
    real = runner.run_seed

    def fake_data_run_seed(ablation, seed, base, **kwargs):
        calls.append(seed)
        return real(ablation, seed, base, data_dir=data, **kwargs)

    monkeypatch.setattr(runner, "run_seed", fake_data_run_seed)
    rows = run_ablation("default", profile=profile, seeds=2, first_seed=3, results=tmp_path / "r.csv",
                        train_overrides=dict(batch_size=2))
    assert calls == [3, 4] and [r["seed"] for r in read_results(tmp_path / "r.csv")] == [3, 4]
    assert rows[0]["run"] != rows[1]["run"]
    with open(tmp_path / "r.csv") as handle:
        assert next(csv.reader(handle)) == list(COLUMNS)


def test_seeds_needed():
    from mvgtutor.ablations.stats import seeds_needed

    assert seeds_needed(1.0, 0.0) == 2
    # n = 3: 4.303 * 1 / sqrt(3) = 2.48 > 2; n = 4: 3.182 / 2 = 1.59 < 2
    assert seeds_needed(2.0, 1.0) == 4
    assert seeds_needed(-2.0, 1.0) == 4
    with pytest.raises(ConfigError):
        seeds_needed(0.0, 1.0)


def test_expected_band_and_results():
    from mvgtutor.ablations.grading import expected_band, expected_results

    results = [_row("default", s, v) | dict(train_seconds=100.0 + s, samples_per_s=3.0, load_1min=4.0)
               for s, v in enumerate((40.0, 44.0, 42.0))]
    low, high = expected_band(results, "default")
    assert (low, high) == pytest.approx((42.0 - 6.0, 42.0 + 6.0))  # std 2, widened 3x
    assert expected_band(results, "k8") is None
    assert expected_band(results, "default", widen=0.1) == pytest.approx((41.0, 43.0))  # at least +-1 point
    rows = expected_results(results)
    assert [r["experiment"] for r in rows] == ["default"] and rows[0]["train_s"] == 101


def test_cli_run_passes_its_options_to_the_runner(tmp_path, monkeypatch, capsys):
    import mvgtutor.ablations.runner as runner

    seen = {}

    def recording_run_ablation(name, **kwargs):
        seen.update(kwargs, name=name)
        return [_row(name, kwargs["first_seed"], 12.5) | dict(samples_seen=4, train_seconds=2.0, samples_per_s=2.0)]

    monkeypatch.setattr(runner, "run_ablation", recording_run_ablation)
    assert main(["ablate", "k8", "--profile", "test", "--seeds", "2", "--first-seed", "5", "--budget", "profile",
                 "--results", str(tmp_path / "r.csv")]) == 0
    assert seen == dict(name="k8", profile="test", seeds=2, first_seed=5, budget="profile",
                        results=tmp_path / "r.csv", device=None, progress=False)
    assert "k8 seed 5: mIoU 12.5%" in capsys.readouterr().out
    assert main(["ablate", "k8", "--profile", "test", "--seeds", "0"]) == 1
    assert main(["ablate", "--profile", "test"]) == 1
    assert "name an experiment" in capsys.readouterr().err


def test_plot_report_without_results_says_so(tmp_path):
    import matplotlib.pyplot as plt

    figure = plot_report(report_rows([], "cpu", "lab"), tmp_path / "empty.png")
    assert "no results yet" in [t.get_text() for t in figure.axes[0].texts]
    plt.close(figure)
