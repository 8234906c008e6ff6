"""Issue 11's battery: every bad input of the issue, driven through the command line.

Each case asserts what a careful user needs: a non-zero exit status, exactly one line on stderr that starts with
``error:`` and names the culprit (the option or the file), no traceback, and every input file unchanged (SHA-256
before and after). Most cases call ``mvgtutor.cli.main`` in this interpreter (an escaping exception fails the
test, so "no traceback" is checked all the same, and the battery stays fast); a few run ``python -m mvgtutor`` as
a real subprocess to check the wiring of exit status and stderr end to end. The inputs that the issue found
mishandled but that are valid (unsigned masks, compressed and axis-permuted MRC files, headers without a voxel
size) must now be accepted and scored right.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mrcfile
import numpy as np
import pytest
import torch

from mvgtutor.cli import main
from mvgtutor.data import integrity
from train_helpers import write_tiny_dataset

REPO = Path(__file__).resolve().parent.parent
ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False  # root ignores file permissions


# ------------------------------------------------------------------------------------------------ helpers
def run_cli(*args) -> tuple[int, str]:
    """``python -m mvgtutor ARGS`` in this interpreter: (exit status, stderr)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            status = main([str(a) for a in args])
        except SystemExit as exit_info:  # argparse
            status = exit_info.code
    return status, err.getvalue()


def checksums(*paths) -> dict[str, str]:
    """SHA-256 of every file (hidden ones too) under ``paths``."""
    sums = {}
    for root in map(Path, paths):
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            sums[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return sums


def assert_clear_error(status, err: str, culprit: str) -> None:
    """Non-zero exit, one ``error:`` line on stderr that names ``culprit``, no traceback."""
    assert status not in (0, None), f"exit status {status} for a bad input; stderr: {err!r}"
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), f"expected one error line, got {err!r}"
    assert culprit in lines[0], f"{culprit!r} not named in {lines[0]!r}"


def write_labels(path: Path, labels: np.ndarray, voxel_size_a: float = 10.0, order=None) -> Path:
    """A label MRC written directly with mrcfile (uint8 -> mode 6), optionally with a permuted axis order."""
    with mrcfile.new(path, overwrite=True) as mrc:
        if order is None:
            mrc.set_data(np.ascontiguousarray(labels))
        else:
            mrc.set_data(np.ascontiguousarray(labels.transpose(2, 1, 0)))  # stored as [x, y, z]
            mrc.header.mapc, mrc.header.mapr, mrc.header.maps = order
        mrc.voxel_size = voxel_size_a
    return path


# ----------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny dataset (3 x 32^3, one with a manifest of file records), a trained 1-epoch run, a spare file."""
    base = tmp_path_factory.mktemp("world")
    data = write_tiny_dataset(base / "data")
    simulated = shutil.copytree(data, base / "simulated")
    manifest = {"simulator_version": 0, "n_tomograms": 3, "size": 32, "seed": 0,
                integrity.FILES_KEY: integrity.file_records(simulated)}
    (simulated / integrity.MANIFEST).write_text(json.dumps(manifest))
    run = base / "run"
    status, err = run_cli("train", "--data", data, "--out", run, "--model", "voxresnet", "--epochs", "1",
                          "--batch-size", "2", "--profile", "test", "--quiet")
    assert status == 0, err
    (base / "a_file").write_text("not a folder")
    (base / "existing.mrc").write_bytes(b"precious")
    return dict(base=base, data=data, simulated=simulated, run=run, file=base / "a_file",
                existing=base / "existing.mrc", truth=data / "model_2" / "class_mask.mrc")


def _ids(cases) -> list[str]:
    """Each case's name (the first value; ``pytest.param`` cases carry theirs in ``.values``)."""
    return [c.values[0] if hasattr(c, "values") else c[0] for c in cases]


def _copy(world, tmp_path, key):
    return shutil.copytree(world[key], tmp_path / key)


# ------------------------------------------------------------------------------ the cases of the issue
# (name, arguments, culprit named in the one-line error); "{x}" are filled from the world fixture
SIMULATE = [
    ("odd size 33", ["--size", "33"], "size 33"), ("odd size 35", ["--size", "35"], "size 35"),
    ("odd size 63", ["--size", "63"], "size 63"), ("odd size 65", ["--size", "65"], "size 65"),
    ("too small", ["--size", "8"], "size 8"), ("no memory", ["--size", "100000"], "memory"),
    ("seed -1", ["--seed", "-1"], "--seed"), ("voxel nan", ["--voxel-size", "nan"], "--voxel-size"),
    ("voxel 0", ["--voxel-size", "0"], "--voxel-size"), ("snr 0", ["--snr", "0"], "--snr"),
    ("snr -1", ["--snr", "-1"], "--snr"), ("snr nan", ["--snr", "nan"], "--snr"),
    ("snr inf", ["--snr", "inf"], "--snr"), ("no tomograms", ["--n-tomograms", "0"], "--n-tomograms"),
    ("size not a number", ["--size", "abc"], "--size"),
    ("no disk space", ["--n-tomograms", "100000000", "--size", "32"], "on disk"),
]


@pytest.mark.parametrize("name, options, culprit", SIMULATE, ids=[c[0] for c in SIMULATE])
def test_simulate_refuses_bad_values_and_writes_nothing(tmp_path, name, options, culprit):
    out = tmp_path / "out"
    assert_clear_error(*run_cli("simulate", "--out", out, *options), culprit)
    assert not out.exists() and list(tmp_path.iterdir()) == []  # not even an empty folder


def test_simulate_refuses_an_existing_other_dataset(world, tmp_path):
    target = _copy(world, tmp_path, "simulated")
    before = checksums(target)
    assert_clear_error(*run_cli("simulate", "--out", target, "--size", "32"), str(target))
    assert checksums(target) == before


def test_simulate_refuses_a_folder_with_user_files(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("years of work")
    before = checksums(tmp_path / "mine")
    assert_clear_error(*run_cli("simulate", "--out", tmp_path / "mine"), "--overwrite")
    assert checksums(tmp_path / "mine") == before


@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_simulate_out_where_no_folder_can_be(world, where):
    out = world["file"] if where == "a file" else world["file"] / "sub"
    before = checksums(world["file"])
    assert_clear_error(*run_cli("simulate", "--out", out), "--out")
    assert checksums(world["file"]) == before


@pytest.mark.skipif(ROOT, reason="root ignores file permissions")
def test_simulate_into_an_unwritable_folder(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        assert_clear_error(*run_cli("simulate", "--out", locked / "data"), "permission")
    finally:
        locked.chmod(0o700)


@pytest.mark.skipif(ROOT, reason="root ignores file permissions")
def test_default_dataset_in_a_read_only_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("MVGTUTOR_DATA_DIR", str(tmp_path / "ro"))
    monkeypatch.setenv("MVGTUTOR_PROFILE", "test")
    (tmp_path / "ro").mkdir(mode=0o500)
    try:
        assert_clear_error(*run_cli("simulate", "--default"), str(tmp_path / "ro"))
    finally:
        (tmp_path / "ro").chmod(0o700)


@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_default_dataset_where_no_data_folder_can_be(world, monkeypatch, where):
    root = world["file"] if where == "a file" else world["file"] / "sub"
    monkeypatch.setenv("MVGTUTOR_DATA_DIR", str(root))
    monkeypatch.setenv("MVGTUTOR_PROFILE", "test")
    before = checksums(world["file"])
    assert_clear_error(*run_cli("simulate", "--default"), str(world["file"]))
    assert checksums(world["file"]) == before


def test_stale_default_dataset_with_user_files_is_kept(world, tmp_path, monkeypatch):
    monkeypatch.setenv("MVGTUTOR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MVGTUTOR_PROFILE", "test")
    stale = shutil.copytree(world["simulated"], tmp_path / "shrec-sim-test")
    (stale / "notes.txt").write_text("mine")
    before = checksums(stale)
    assert_clear_error(*run_cli("simulate", "--default"), "notes.txt")
    assert checksums(stale) == before


TRAIN = [
    ("epochs 0", ["--epochs", "0"], "--epochs"), ("epochs -1", ["--epochs", "-1"], "--epochs"),
    ("batch 0", ["--batch-size", "0"], "--batch-size"), ("lr nan", ["--lr", "nan"], "--lr"),
    ("lr 0", ["--lr", "0"], "--lr"), ("seed -1", ["--seed", "-1"], "--seed"),
    ("device foo", ["--device", "foo"], "--device"),
    pytest.param("device cuda", ["--device", "cuda"], "--device", marks=pytest.mark.skipif(
        torch.cuda.is_available(), reason="this machine has CUDA")),
    ("batch larger than the data", ["--batch-size", "64"], "batch_size 64"),
]


@pytest.mark.parametrize("name, options, culprit", TRAIN, ids=_ids(TRAIN))
def test_train_refuses_bad_values(world, tmp_path, name, options, culprit):
    before = checksums(world["data"])
    status, err = run_cli("train", "--data", world["data"], "--out", tmp_path / "run", "--model", "voxresnet",
                          "--epochs", "1", "--batch-size", "2", "--profile", "test", "--quiet", *options)
    assert_clear_error(status, err, culprit)
    assert checksums(world["data"]) == before
    assert not (tmp_path / "run" / "model.pt").exists()


@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_train_out_where_no_folder_can_be(world, where):
    out = world["file"] if where == "a file" else world["file"] / "sub"
    status, err = run_cli("train", "--data", world["data"], "--out", out, "--profile", "test", "--quiet")
    assert_clear_error(status, err, "--out")


def test_train_resuming_from_another_models_checkpoint(world, tmp_path):
    run = _copy(world, tmp_path, "run")
    (run / "model.pt").unlink()  # unfinished: train resumes from checkpoint.pt ...
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    state["model"] = {"conv.weight": torch.zeros(3, 3)}  # ... which another model wrote
    torch.save(state, run / "checkpoint.pt")
    before = checksums(run, world["data"])
    status, err = run_cli("train", "--data", world["data"], "--out", run, "--model", "voxresnet", "--epochs", "1",
                          "--batch-size", "2", "--profile", "test", "--quiet")
    assert_clear_error(status, err, "checkpoint.pt")
    assert checksums(run, world["data"]) == before


def test_train_on_a_dataset_rewritten_since_simulation(world, tmp_path):
    data = _copy(world, tmp_path, "simulated")
    with mrcfile.open(data / "model_0" / "class_mask.mrc", "r+") as mrc:
        mrc.data[0, 0, 0] = 3  # same size, other content: the old fingerprint would not change
    before = checksums(data)
    status, err = run_cli("train", "--data", data, "--out", tmp_path / "run", "--profile", "test", "--quiet")
    assert_clear_error(status, err, "class_mask.mrc")
    assert checksums(data) == before


def test_train_on_nan_voxels(world, tmp_path):
    data = _copy(world, tmp_path, "data")
    with mrcfile.open(data / "model_1" / "reconstruction.mrc", "r+") as mrc:
        mrc.data[3, 3, 3] = np.nan
    status, err = run_cli("train", "--data", data, "--out", tmp_path / "run", "--model", "voxresnet",
                          "--epochs", "1", "--batch-size", "2", "--profile", "test", "--quiet")
    assert_clear_error(status, err, "model_1/reconstruction.mrc")


def _evaluate(world, *options, run=None, data=None, tomogram="model_2"):
    return run_cli("evaluate", "--run", run or world["run"], "--data", data or world["data"],
                   "--tomogram", tomogram, *options)


EVALUATE = [
    ("out exists", lambda w, t: ["--out", w["existing"]], "--overwrite"),
    ("out is the truth", lambda w, t: ["--out", w["truth"]], "input"),
    ("out is the truth, --overwrite", lambda w, t: ["--out", w["truth"], "--overwrite"], "input"),
    ("out is the tomogram", lambda w, t: ["--out", w["data"] / "model_2" / "reconstruction.mrc", "--overwrite"],
     "input"),
    ("out is the run's weights", lambda w, t: ["--out", w["run"] / "model.pt", "--overwrite"], "input"),
    ("out is a folder", lambda w, t: ["--out", t], "folder"),
    ("out under a file", lambda w, t: ["--out", w["file"] / "p.mrc"], "--out"),
    ("batch 0", lambda w, t: ["--out", t / "p.mrc", "--batch-size", "0"], "--batch-size"),
    ("overlap 1.5", lambda w, t: ["--out", t / "p.mrc", "--overlap", "1.5"], "--overlap"),
    ("device foo", lambda w, t: ["--out", t / "p.mrc", "--device", "foo"], "--device"),
    pytest.param("device cuda", lambda w, t: ["--out", t / "p.mrc", "--device", "cuda"], "--device",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")),
]


@pytest.mark.parametrize("name, options, culprit", EVALUATE, ids=_ids(EVALUATE))
def test_evaluate_refuses_bad_values_and_never_overwrites(world, tmp_path, name, options, culprit):
    before = checksums(world["data"], world["run"], world["existing"])
    assert_clear_error(*_evaluate(world, *options(world, tmp_path)), culprit)
    assert checksums(world["data"], world["run"], world["existing"]) == before
    assert not (tmp_path / "p.mrc").exists()


def test_evaluate_overwrites_an_output_when_asked(world, tmp_path):
    out = tmp_path / "p.mrc"
    out.write_bytes(b"old prediction")
    status, err = _evaluate(world, "--out", out, "--overwrite")
    assert status == 0 and err == "", err
    assert mrcfile.open(out).data.shape == (32, 32, 32)


def _broken_run(world, tmp_path, damage):
    run = _copy(world, tmp_path, "run")
    damage(run)
    return run


RUN_DAMAGE = [
    ("truncated run.json", lambda r: (r / "run.json").write_text((r / "run.json").read_text()[:50]), "run.json"),
    ("truncated history", lambda r: (r / "history.json").write_text("[{\"epoch\": 1, "), "history.json"),
    ("weights of another model", lambda r: (r / "run.json").write_text(json.dumps(
        {**json.loads((r / "run.json").read_text()), "model_name": "unet3d"})), "model.pt"),
    ("truncated weights", lambda r: (r / "model.pt").write_bytes((r / "model.pt").read_bytes()[:100]), "model.pt"),
]


@pytest.mark.parametrize("name, damage, culprit", RUN_DAMAGE, ids=[c[0] for c in RUN_DAMAGE])
def test_evaluate_with_a_damaged_run(world, tmp_path, name, damage, culprit):
    run = _broken_run(world, tmp_path, damage)
    before = checksums(run, world["data"])
    assert_clear_error(*_evaluate(world, "--out", tmp_path / "p.mrc", run=run), culprit)
    assert checksums(run, world["data"]) == before


def test_evaluate_an_unfinished_run_says_so(world, tmp_path):
    def unfinish(run):
        (run / "model.pt").unlink()
        description = json.loads((run / "run.json").read_text())
        description["train"]["epochs"] = 5
        (run / "run.json").write_text(json.dumps(description))
    run = _broken_run(world, tmp_path, unfinish)
    status, err = _evaluate(world, "--out", tmp_path / "p.mrc", run=run)
    assert status == 0 and "unfinished (1/5 epochs)" in err and "latest checkpoint" in err


def _tomogram_with(world, tmp_path, damage):
    data = _copy(world, tmp_path, "data")
    damage(data / "model_2")
    return data


def _nan_reconstruction(folder):
    with mrcfile.open(folder / "reconstruction.mrc", "r+") as mrc:
        mrc.data[1, 2, 3] = np.nan


def _particles(text: bytes):
    return lambda folder: (folder / "particle_locations.txt").write_bytes(text)


TOMOGRAM_DAMAGE = [
    ("nan voxels", _nan_reconstruction, "reconstruction.mrc"),
    ("particle at nan", _particles(b"vesicle nan 8 8 0 0 0\n"), "particle_locations.txt, line 1"),
    ("particle at inf", _particles(b"vesicle 8 8 inf 0 0 0\n"), "particle_locations.txt, line 1"),
    ("particles not UTF-8", _particles(b"vesicle 8 8 8 0 0 0\n\xff\xfe\x00\n"), "particle_locations.txt"),
]


@pytest.mark.parametrize("name, damage, culprit", TOMOGRAM_DAMAGE, ids=[c[0] for c in TOMOGRAM_DAMAGE])
@pytest.mark.parametrize("command", ["evaluate", "info"])
def test_damaged_tomogram_files(world, tmp_path, command, name, damage, culprit):
    if command == "info" and name == "nan voxels":
        pytest.skip("info reads headers only")
    data = _tomogram_with(world, tmp_path, damage)
    before = checksums(data)
    if command == "evaluate":
        status, err = _evaluate(world, "--out", tmp_path / "p.mrc", data=data)
    else:
        status, err = run_cli("info", data)
    assert_clear_error(status, err, culprit)
    assert checksums(data) == before


def _complex_reconstruction(folder):
    with mrcfile.new(folder / "reconstruction.mrc", overwrite=True) as mrc:
        mrc.set_data(np.zeros((32, 32, 32), np.complex64))
        mrc.voxel_size = 10.0


def _other_voxel_size(folder):
    with mrcfile.open(folder / "class_mask.mrc", "r+") as mrc:
        mrc.voxel_size = 20.0


def _left_over_tomogram(folder):
    shutil.copytree(folder, folder.parent / "model_7")


INFO_DAMAGE = [
    ("complex reconstruction", _complex_reconstruction, "reconstruction.mrc"),
    ("voxel sizes differ", _other_voxel_size, "class_mask.mrc"),
]


@pytest.mark.parametrize("name, damage, culprit", INFO_DAMAGE, ids=[c[0] for c in INFO_DAMAGE])
def test_info_checks_the_headers_it_reads(world, tmp_path, name, damage, culprit):
    data = _tomogram_with(world, tmp_path, damage)
    before = checksums(data)
    assert_clear_error(*run_cli("info", data), culprit)
    assert checksums(data) == before


def test_info_refuses_a_mixed_dataset(world, tmp_path):
    data = _copy(world, tmp_path, "simulated")
    _left_over_tomogram(data / "model_2")
    assert_clear_error(*run_cli("info", data), "model_7")


def test_score_refuses_bad_values(world, tmp_path):
    truth = world["truth"]
    before = checksums(truth)
    assert_clear_error(*run_cli("score", "--pred", truth, "--truth", truth, "--num-classes", "40"),
                       "--num-classes")
    other = write_labels(tmp_path / "coarse.mrc", np.zeros((32, 32, 32), np.uint8), voxel_size_a=20.0)
    assert_clear_error(*run_cli("score", "--pred", other, "--truth", truth), "voxel size")
    floats = tmp_path / "floats.mrc"
    with mrcfile.new(floats) as mrc:
        mrc.set_data(np.zeros((32, 32, 32), np.float32))
        mrc.voxel_size = 10.0
    assert_clear_error(*run_cli("score", "--pred", floats, "--truth", truth), "floats.mrc")
    packed = gzip.compress(truth.read_bytes())
    (tmp_path / "cut.mrc").write_bytes(packed[: len(packed) // 2])
    assert_clear_error(*run_cli("score", "--pred", tmp_path / "cut.mrc", "--truth", truth), "cut.mrc")
    assert checksums(truth) == before


BENCH = [("steps 0", ["--steps", "0"], "--steps"), ("batch 0", ["--batch-size", "0"], "--batch-size"),
         ("inference size 0", ["--inference-size", "0"], "--inference-size"),
         ("warmup -1", ["--warmup", "-1"], "--warmup"), ("device foo", ["--device", "foo"], "--device")]


@pytest.mark.parametrize("name, options, culprit", BENCH, ids=_ids(BENCH))
def test_bench_refuses_bad_values(name, options, culprit):
    assert_clear_error(*run_cli("bench", "--profiles", "test", "--no-flops", *options), culprit)


def test_os_errors_are_one_line(monkeypatch):
    import mvgtutor.cli.info as info

    def refuse(args):
        raise PermissionError(13, "Permission denied", "/data/.shrec-sim-cpu.lock")
    monkeypatch.setattr(info, "run", refuse)
    assert_clear_error(*run_cli("info", "x"), "/data/.shrec-sim-cpu.lock")


def test_a_closed_pipe_is_not_reported_as_a_file_error(monkeypatch):
    import mvgtutor.cli.info as info

    def reader_went_away(args):
        raise BrokenPipeError(32, "Broken pipe")  # `python -m mvgtutor info DIR | head -2`
    monkeypatch.setattr(info, "run", reader_went_away)
    assert run_cli("info", "x") == (1, "")


# --------------------------------------------------------------------- valid inputs that used to fail
def _score(pred, truth) -> tuple[int, str, dict | None]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["score", "--pred", str(pred), "--truth", str(truth), "--json"])
    return status, err.getvalue(), json.loads(out.getvalue()) if status == 0 else None


def _truth_labels(world) -> np.ndarray:
    with mrcfile.open(world["truth"]) as mrc:
        return np.array(mrc.data)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int8, np.int16])
def test_score_accepts_every_integer_mask_dtype(world, tmp_path, dtype):
    pred = write_labels(tmp_path / "pred.mrc", _truth_labels(world).astype(dtype))
    status, err, scores = _score(pred, world["truth"])
    assert status == 0 and err == "" and scores["mean_dice"] == 1.0


@pytest.mark.parametrize("name", ["pred.mrc.gz", "gzip-named.mrc", "pred.mrc.bz2"])
def test_score_reads_compressed_files(world, tmp_path, name):
    import bz2

    compress = bz2.compress if name.endswith(".bz2") else gzip.compress
    (tmp_path / name).write_bytes(compress(world["truth"].read_bytes()))
    status, err, scores = _score(tmp_path / name, world["truth"])
    assert status == 0 and scores["mean_dice"] == 1.0


def test_info_and_evaluate_read_a_gzip_compressed_tomogram(world, tmp_path):
    data = _copy(world, tmp_path, "data")
    path = data / "model_2" / "reconstruction.mrc"
    path.write_bytes(gzip.compress(path.read_bytes()))  # gzip content under the usual name
    assert run_cli("info", data) == (0, "")
    status, err = _evaluate(world, "--out", tmp_path / "p.mrc", data=data)
    assert status == 0 and err == "", err


def test_score_honours_the_axis_order_of_the_header(world, tmp_path):
    pred = write_labels(tmp_path / "xyz.mrc", _truth_labels(world), order=(3, 2, 1))
    status, err, scores = _score(pred, world["truth"])
    assert status == 0 and scores["mean_dice"] == 1.0


def test_score_warns_when_a_header_has_no_voxel_size(world, tmp_path):
    pred = write_labels(tmp_path / "nosize.mrc", _truth_labels(world), voxel_size_a=0.0)
    status, err, scores = _score(pred, world["truth"])
    assert status == 0 and scores["mean_dice"] == 1.0
    assert err.startswith("warning: ") and "nosize.mrc" in err and err.count("\n") == 1


# ------------------------------------------------------------------------------ real subprocesses
SUBPROCESS = [
    ("simulate odd size", lambda w, t: ["simulate", "--out", t / "d", "--size", "33"], "size 33"),
    ("train epochs 0", lambda w, t: ["train", "--data", w["data"], "--out", t / "r", "--epochs", "0"],
     "--epochs"),
    ("evaluate over the truth", lambda w, t: ["evaluate", "--run", w["run"], "--data", w["data"], "--tomogram",
                                              "model_2", "--out", w["truth"], "--overwrite"], "input"),
]


@pytest.mark.parametrize("name, args, culprit", SUBPROCESS, ids=[c[0] for c in SUBPROCESS])
def test_python_m_mvgtutor_end_to_end(world, tmp_path, name, args, culprit):
    before = checksums(world["data"], world["run"])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "mvgtutor", *map(str, args(world, tmp_path))], cwd=tmp_path,
                            capture_output=True, text=True, env=env, timeout=300)
    assert_clear_error(result.returncode, result.stderr, culprit)
    assert checksums(world["data"], world["run"]) == before
