"""Device, precision and layout in one home below train and evaluate; Colab's Drive folders; the T4 estimates."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

from mvgtutor import colab, paths
from mvgtutor.config import make_profile
from mvgtutor.errors import ConfigError, DataError
from mvgtutor.train import costs, estimate
from train_helpers import PointwiseNet, cross_entropy

# --- one home for device, precision and layout ----------------------------------------------------------


def test_evaluate_does_not_import_train():
    code = ("import sys, mvgtutor.evaluate; "
            "print(sorted(m for m in sys.modules if m == 'mvgtutor.train' or m.startswith('mvgtutor.train.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_old_import_paths_are_the_runtime_functions():
    from mvgtutor import runtime
    from mvgtutor.train import layout, precision

    assert precision.resolve_precision is runtime.resolve_precision
    assert layout.memory_format_for is runtime.memory_format_for
    assert runtime.resolve_precision("auto", torch.device("cpu")) == "fp32"


def test_describe_device_on_cpu():
    from mvgtutor.runtime import describe_device

    assert describe_device(torch.device("cpu")) == "cpu"


# --- Colab: data and runs on Google Drive ---------------------------------------------------------------

def _fake_mount(calls):
    def mount(point):
        calls.append(point)
        (Path(point) / "MyDrive").mkdir(parents=True, exist_ok=True)
    return mount


def test_use_drive_points_data_and_runs_at_drive(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MVGTUTOR_DATA_DIR", raising=False)
    monkeypatch.delenv("MVGTUTOR_RUNS_DIR", raising=False)
    calls = []
    chosen = colab.use_drive(mount_point=tmp_path / "drive", mount=_fake_mount(calls))
    assert calls == [str(tmp_path / "drive")]
    assert chosen == {"data": tmp_path / "drive" / "MyDrive" / "mvgtutor" / "data",
                      "runs": tmp_path / "drive" / "MyDrive" / "mvgtutor" / "runs"}
    assert paths.data_root() == chosen["data"] and paths.runs_root() == chosen["runs"]
    assert all(folder.is_dir() for folder in chosen.values())
    assert "mvgtutor runs:" in capsys.readouterr().out


def test_use_drive_can_keep_runs_only(tmp_path, monkeypatch):
    monkeypatch.setenv("MVGTUTOR_DATA_DIR", str(tmp_path / "local"))
    monkeypatch.delenv("MVGTUTOR_RUNS_DIR", raising=False)
    chosen = colab.use_drive("course", data=False, mount_point=tmp_path, mount=_fake_mount([]))
    assert list(chosen) == ["runs"] and paths.runs_root() == tmp_path / "MyDrive" / "course" / "runs"
    assert paths.data_root() == tmp_path / "local"


def test_use_drive_calls_colabs_mount(tmp_path, monkeypatch):
    monkeypatch.delenv("MVGTUTOR_DATA_DIR", raising=False)
    monkeypatch.delenv("MVGTUTOR_RUNS_DIR", raising=False)
    calls = []
    drive = types.ModuleType("google.colab.drive")
    drive.mount = _fake_mount(calls)
    google = types.ModuleType("google")
    google_colab = types.ModuleType("google.colab")
    google.colab, google_colab.drive = google_colab, drive
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", google_colab)
    monkeypatch.setitem(sys.modules, "google.colab.drive", drive)
    colab.use_drive(mount_point=tmp_path)
    assert calls == [str(tmp_path)] and paths.runs_root() == tmp_path / "MyDrive" / "mvgtutor" / "runs"


@pytest.mark.parametrize("kwargs, says", [(dict(folder="/abs"), "inside MyDrive"),
                                          (dict(folder="../up"), "inside MyDrive"),
                                          (dict(data=False, runs=False), "nothing to keep")])
def test_use_drive_rejects_bad_requests(tmp_path, kwargs, says):
    with pytest.raises(ConfigError, match=says):
        colab.use_drive(mount_point=tmp_path, mount=_fake_mount([]), **kwargs)


def test_use_drive_outside_colab_and_a_failed_mount_say_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "google.colab", None)  # import fails, as outside Colab
    with pytest.raises(ConfigError, match="only be mounted inside Colab.*MVGTUTOR_DATA_DIR"):
        colab.use_drive(mount_point=tmp_path)
    with pytest.raises(ConfigError, match="did not mount"):
        colab.use_drive(mount_point=tmp_path, mount=lambda point: None)


def test_setup_on_colab_says_how_to_keep_runs(monkeypatch):
    from mvgtutor import notebook

    monkeypatch.delenv("MVGTUTOR_RUNS_DIR", raising=False)
    env = notebook.NotebookEnv(profile=make_profile("test"), device=torch.device("cpu"), in_colab=True)
    assert "mvgtutor.colab.use_drive()" in env.summary().splitlines()[-1]
    monkeypatch.setenv("MVGTUTOR_RUNS_DIR", "/content/drive/MyDrive/mvgtutor/runs")
    assert len(env.summary().splitlines()) == 2
    assert len(notebook.NotebookEnv(make_profile("test"), torch.device("cpu"), in_colab=False).summary()
               .splitlines()) == 2


def test_exclusive_lock_works_where_flock_is_refused(tmp_path, monkeypatch):
    import fcntl

    def refuse(*args):
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(fcntl, "flock", refuse)  # e.g. a FUSE mount such as Colab's Drive
    with paths.exclusive_lock(tmp_path / "dataset"):
        (tmp_path / "inside").write_text("ran")
    assert (tmp_path / "inside").read_text() == "ran"


# --- estimates for a GPU we do not have -----------------------------------------------------------------

def test_samples_per_run_counts_the_grid_patches_of_the_training_tomograms():
    test = make_profile("test")  # 3 x 64^3, one held out, 2 epochs, 32^3 patches
    assert estimate.samples_per_run(test) == 2 * 2 * 8


def test_t4_estimate_follows_flops_and_the_reference_fraction():
    fraction = estimate.achieved_fraction()
    reference = estimate.REFERENCE_STEP
    assert 0 < fraction < 1
    # the reference model on a T4: the H100's throughput scaled by the ratio of the peaks
    t4 = estimate.estimated_samples_per_s(reference.flops_per_sample)
    assert t4 == pytest.approx(reference.samples_per_s * estimate.T4.half_peak_flops / reference.peak_flops)
    assert estimate.estimated_samples_per_s(1e9, fraction=0.5) == pytest.approx(65e12 * 0.5 / 1e9)


def test_activation_memory_of_a_pointwise_network_by_hand():
    memory = estimate.measure_activation_memory(PointwiseNet(num_classes=2), make_profile("test").train,
                                                cross_entropy, input_size=4, num_classes=2)
    voxels = 4 ** 3
    # saved per sample under bf16 autocast: the bf16 input of each conv (1 and 4 channels), the hidden layer's
    # output for tanh's backward and the logits for the loss; between 5 and 40 bytes per voxel
    assert 5 * voxels <= memory.per_sample_bytes <= 40 * voxels
    parameters = sum(p.numel() for p in PointwiseNet(num_classes=2).parameters())
    assert memory.state_bytes == 16 * parameters
    assert memory.at_batch(4) == memory.state_bytes + memory.fixed_bytes + 4 * memory.per_sample_bytes


def test_bench_measures_and_estimates_the_test_profile(tmp_path, capsys):
    from mvgtutor.cli import main

    out = tmp_path / "bench.json"
    assert main(["bench", "--profiles", "test", "--steps", "1", "--warmup", "0", "--inference-size", "32",
                 "--batch-size", "1", "--device", "cpu", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "GFLOP/sample" in printed and "T4 estimate" in printed and "GPU memory estimate" in printed
    record = costs.read_results(out)
    (result,) = record["results"]
    assert result["profile"] == "test" and result["timed"] and result["train_samples_per_s"] > 0
    assert result["train_flops_per_sample"] > 0 and result["gpu_memory_estimate_gib"] > 0
    assert result["t4_run_minutes"] == pytest.approx(result["samples_per_run"] / result["t4_samples_per_s"] / 60)
    assert record["started"]["load_average"] is not None and record["command"].startswith("python -m mvgtutor")
    rows = costs.profile_cost_rows(record)
    assert rows[0]["profile"] == "`test`" and "measured" in " ".join(rows[0])
    assert main(["bench", "--profiles", "test", "--out", str(out)]) == 1  # no overwrite without asking
    assert main(["bench", "--profiles", "paper", "--untimed", "paper", "--no-flops", "--no-memory-estimate",
                 "--device", "cpu"]) == 0  # counted only: no step of the paper's model on a CPU
    assert "not timed on cpu (needs CUDA)" in capsys.readouterr().out


def test_bench_compares_eager_and_compiled_steps_in_one_run(monkeypatch, capsys):
    """The plumbing of --compare-compile (torch.compile itself is tests/test_model_compile.py's): the step is timed
    twice, the second time through torch.compile, and both speeds and their ratio are printed."""
    import torch

    from mvgtutor.cli import main

    compiled = []
    monkeypatch.setattr(torch, "compile", lambda model, **kw: compiled.append(model) or model)
    assert main(["bench", "--profiles", "test", "--model", "unet3d", "--steps", "1", "--warmup", "0",
                 "--inference-size", "32", "--batch-size", "1", "--no-flops", "--no-memory-estimate",
                 "--device", "cpu", "--compare-compile", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(compiled) == 1 and result["compiled_samples_per_s"] > 0
    assert result["compile_speedup"] == pytest.approx(result["compiled_samples_per_s"] / result["train_samples_per_s"])


def test_committed_bench_results_cover_every_profile_with_provenance():
    from mvgtutor.config import PROFILE_NAMES

    record = costs.read_results()
    assert [r["profile"] for r in record["results"]] == list(PROFILE_NAMES)
    rerun = f"python -m mvgtutor bench --untimed colab paper --out {costs.RESULTS_FILE} --overwrite"
    assert not costs.stale_results(record), f"a profile's model or batch changed since the bench ran: run `{rerun}`"
    for result in record["results"]:
        assert result["train_flops_per_sample"] > 0 and result["t4_samples_per_s"] > 0
    assert record["started"]["commit"] and record["started"]["load_average"]
    assert costs.provenance(record).startswith("`python -m mvgtutor bench")


def test_estimate_constants_match_the_recorded_paper_step():
    paper = next(r for r in costs.read_results()["results"] if r["profile"] == "paper")
    assert paper["train_flops_per_sample"] == pytest.approx(estimate.REFERENCE_STEP.flops_per_sample, rel=0.01)
    # calibrated on the H100's measured peak: the paper step's estimate at batch 72 is that peak
    assert paper["profile_batch_size"] == estimate.REFERENCE_STEP.batch_size
    assert paper["gpu_memory_estimate_gib"] * 2**30 == pytest.approx(estimate.REFERENCE_STEP.peak_memory_bytes,
                                                                    rel=0.02)


def test_colab_profile_fits_a_t4_by_the_recorded_estimates():
    colab_result = next(r for r in costs.read_results()["results"] if r["profile"] == "colab")
    assert colab_result["gpu_memory_estimate_gib"] * 2**30 <= estimate.COLAB_MEMORY_BUDGET_BYTES
    training_s = estimate.samples_per_run(make_profile("colab")) / colab_result["t4_samples_per_s"]
    assert training_s <= estimate.COLAB_TIME_BUDGET_S / 2  # half the budget: the rest for data, validation, inference


def test_stale_results_name_a_profile_whose_model_changed():
    record = costs.read_results()
    changed = json.loads(json.dumps(record))
    changed["results"][0]["model_config"]["embed_dim"] += 1
    assert costs.stale_results(changed) == [changed["results"][0]["profile"]]


def test_read_results_errors_say_what_to_do(tmp_path):
    with pytest.raises(DataError, match="no bench results; run `python -m mvgtutor bench --out"):
        costs.read_results(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text(json.dumps({"results": "no"}))
    with pytest.raises(DataError, match="not a bench results file"):
        costs.read_results(tmp_path / "bad.json")
