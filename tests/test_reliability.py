"""Issue 11, one test per defect at the library level: each failed before its fix.

The command-line side of the same defects (exit status, one line on stderr, inputs unchanged) is the battery
in ``test_bad_inputs.py``.
"""

from __future__ import annotations

import bz2
import gzip
import json
import os
import shutil

import mrcfile
import numpy as np
import pytest
import torch

from mvgtutor.data import integrity
from mvgtutor.data.formats import (read_mrc, read_mrc_info, read_particle_locations, read_shrec_tomogram,
                                   write_mrc)
from mvgtutor.errors import ConfigError, DataError
from mvgtutor.evaluate.metrics import segmentation_scores
from mvgtutor.paths import atomic_path, atomic_write, remove_stale_temporaries
from mvgtutor.simulate.dataset import check_settings, estimated_peak_bytes
from mvgtutor.train import runs
from train_helpers import write_tiny_dataset


def _with_manifest(folder):
    """Give a hand-written dataset the file records that ``simulate_dataset`` writes."""
    manifest = {"n_tomograms": len(list(folder.glob("model_*"))), integrity.FILES_KEY: integrity.file_records(folder)}
    (folder / integrity.MANIFEST).write_text(json.dumps(manifest))
    return folder


# ----------------------------------------------------------------------------------- MRC axis order, gzip
def test_non_standard_axis_order_is_reordered_to_zyx(tmp_path):
    zyx = np.arange(3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5)  # (Z, Y, X)
    path = tmp_path / "xyz.mrc"
    with mrcfile.new(path) as mrc:  # stored as [x, y, z]: columns run along z, sections along x
        mrc.set_data(np.ascontiguousarray(zyx.transpose(2, 1, 0)))
        mrc.header.mapc, mrc.header.mapr, mrc.header.maps = 3, 2, 1
        mrc.voxel_size = 10.0
    assert np.array_equal(read_mrc(path), zyx)
    assert read_mrc_info(path).shape == (3, 4, 5)


def test_axis_order_that_is_not_a_permutation_is_refused(tmp_path):
    path = write_mrc(tmp_path / "bad.mrc", np.zeros((2, 3, 4), np.float32), 1.0)
    with mrcfile.open(path, "r+") as mrc:
        mrc.header.mapc = 5
    with pytest.raises(DataError, match="MAPC"):
        read_mrc(path)


@pytest.mark.parametrize("name, compress", [("a.mrc", gzip.compress), ("a.mrc.gz", gzip.compress),
                                            ("a.mrc.bz2", bz2.compress)])
def test_compressed_mrc_is_read(tmp_path, name, compress):
    volume = np.random.default_rng(0).normal(size=(4, 5, 6)).astype(np.float32)
    plain = write_mrc(tmp_path / "plain.mrc", volume, 1.0)
    (tmp_path / name).write_bytes(compress(plain.read_bytes()))
    assert np.array_equal(read_mrc(tmp_path / name, expected_voxel_size_nm=1.0), volume)


def test_truncated_gzip_says_compressed(tmp_path):
    plain = write_mrc(tmp_path / "plain.mrc", np.ones((8, 8, 8), np.float32), 1.0)
    data = gzip.compress(plain.read_bytes())
    (tmp_path / "cut.mrc").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="compressed"):
        read_mrc(tmp_path / "cut.mrc")


# ------------------------------------------------------------------------------------- finite voxels
def test_nan_voxels_are_refused_on_write_and_on_read(tmp_path):
    bad = np.zeros((4, 4, 4), np.float32)
    bad[1, 2, 3] = np.nan
    with pytest.raises(DataError, match="NaN"):
        write_mrc(tmp_path / "w.mrc", bad, 1.0)
    data = write_tiny_dataset(tmp_path / "data", n_tomograms=1)
    with mrcfile.open(data / "model_0" / "reconstruction.mrc", "r+") as mrc:
        mrc.data[0, 0, 0] = np.inf
    with pytest.raises(DataError, match="reconstruction.mrc.*NaN or inf"):
        read_shrec_tomogram(data / "model_0")


# ----------------------------------------------------------------------------------- particle lists
@pytest.mark.parametrize("content, message", [
    (b"vesicle nan 8 8 0 0 0\n", "finite"), (b"vesicle 8 inf 8\n", "finite"),
    (b"vesicle 8 8 8 0 0 0\n\xff\xfe junk\n", "UTF-8"),
])
def test_bad_particle_lists(tmp_path, content, message):
    path = tmp_path / "particle_locations.txt"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_particle_locations(path)


# ------------------------------------------------------------------------ score: unsigned label volumes
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int8, np.int16, np.uint32])
def test_scores_accept_every_integer_label_dtype(dtype):
    labels = np.arange(2 * 3 * 4).reshape(2, 3, 4) % 16
    scores = segmentation_scores(labels.astype(dtype), labels.astype(np.int64))
    assert scores.miou == 1.0


def test_uint8_mask_written_by_mrcfile_scores(tmp_path):
    labels = (np.arange(4 * 4 * 4).reshape(4, 4, 4) % 16).astype(np.uint8)
    path = tmp_path / "u8.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(labels)  # mrcfile stores uint8 as uint16 (mode 6)
        mrc.voxel_size = 10.0
    assert segmentation_scores(read_mrc(path), labels).mean_dice == 1.0


# -------------------------------------------------------------------------- simulation settings, memory
@pytest.mark.parametrize("kwargs, message", [
    (dict(size=33), "even"), (dict(size=65), "even"), (dict(size=16), ">= 32"), (dict(seed=-1), "seed"),
    (dict(snr=0.0), "snr"), (dict(snr=-1.0), "snr"), (dict(snr=float("nan")), "snr"),
    (dict(snr=float("inf")), "snr"), (dict(voxel_size_nm=float("nan")), "voxel size"),
    (dict(voxel_size_nm=0.0), "voxel size"), (dict(n_tomograms=0), "at least one"),
    (dict(size=100_000), "memory"),
])
def test_simulation_settings_are_checked_before_any_work(kwargs, message):
    settings = dict(n_tomograms=1, size=32, seed=0, snr=None, voxel_size_nm=1.0) | kwargs
    with pytest.raises(ConfigError, match=message):
        check_settings(**settings)


def test_memory_estimate_grows_with_the_grid():
    assert estimated_peak_bytes(512) > 8 * estimated_peak_bytes(128) / 2
    assert estimated_peak_bytes(64, oversample=2) == estimated_peak_bytes(128)


# ---------------------------------------------------------------------------- dataset fingerprint
def test_a_rewritten_tomogram_file_is_detected(tmp_path):
    data = _with_manifest(write_tiny_dataset(tmp_path / "data"))
    before = runs.dataset_fingerprint(data)
    read_shrec_tomogram(data / "model_1")  # intact: reads
    path = data / "model_1" / "reconstruction.mrc"
    with mrcfile.open(path, "r+") as mrc:  # same size, new content
        mrc.data[0, 0, 0] += 1.0
    with pytest.raises(DataError, match="content changed"):
        runs.dataset_fingerprint(data)
    with pytest.raises(DataError, match="content changed"):
        read_shrec_tomogram(data / "model_1")
    assert before  # the intact dataset had a fingerprint


def test_a_left_over_model_folder_is_detected(tmp_path):
    data = _with_manifest(write_tiny_dataset(tmp_path / "data", n_tomograms=2))
    shutil.copytree(data / "model_1", data / "model_2")
    with pytest.raises(DataError, match="model_2 not listed"):
        integrity.verify_dataset(data)


def test_a_copied_dataset_keeps_its_fingerprint(tmp_path):
    data = _with_manifest(write_tiny_dataset(tmp_path / "data"))
    copy = shutil.copytree(data, tmp_path / "copy", copy_function=shutil.copy)  # new mtimes, same content
    assert runs.dataset_fingerprint(copy) == runs.dataset_fingerprint(data)


def test_simulating_the_same_data_twice_gives_the_same_fingerprint(tmp_path):
    from mvgtutor.simulate.dataset import simulate_dataset

    first = simulate_dataset(tmp_path / "a", n_tomograms=1, size=32, seed=5, progress=False)
    second = simulate_dataset(tmp_path / "b", n_tomograms=1, size=32, seed=5, progress=False)
    for name in ("reconstruction.mrc", "class_mask.mrc"):  # the same bytes: no date in the MRC header
        assert (first / "model_0" / name).read_bytes() == (second / "model_0" / name).read_bytes()
    assert runs.dataset_fingerprint(first) == runs.dataset_fingerprint(second)
    other = simulate_dataset(tmp_path / "c", n_tomograms=1, size=32, seed=6, progress=False)
    assert runs.dataset_fingerprint(other) != runs.dataset_fingerprint(first)


def test_remove_stale_temporaries_touches_only_its_names(tmp_path):
    (tmp_path / ".model.pt.x1.tmp").write_bytes(b"")
    (tmp_path / ".other.x1.tmp").write_bytes(b"")
    assert [p.name for p in remove_stale_temporaries(tmp_path, ["model.pt"])] == [".model.pt.x1.tmp"]
    assert (tmp_path / ".other.x1.tmp").exists()


# ------------------------------------------------------------------------------------------ file modes
@pytest.mark.parametrize("umask, expected", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_follow_the_umask(tmp_path, umask, expected):
    old = os.umask(umask)
    try:
        with atomic_write(tmp_path / "a.json", "w") as handle:
            handle.write("{}")
        with atomic_path(tmp_path / "b.pt") as tmp:
            torch.save({}, tmp)
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == expected
    assert (tmp_path / "b.pt").stat().st_mode & 0o777 == expected


# ----------------------------------------------------------------------------------- default dataset
def test_a_stale_default_dataset_with_user_files_is_never_deleted(tmp_path, monkeypatch):
    from mvgtutor.data.default import default_dataset, default_dataset_path

    monkeypatch.setenv("MVGTUTOR_DATA_DIR", str(tmp_path))
    target = default_dataset_path("test")
    write_tiny_dataset(target, n_tomograms=1)
    (target / "dataset.json").write_text(json.dumps({"simulator_version": -1}))
    (target / "my_notes.txt").write_text("precious")
    with pytest.raises(DataError, match="my_notes.txt"):
        default_dataset("test")
    assert (target / "my_notes.txt").read_text() == "precious" and (target / "model_0").is_dir()


def test_foreign_files_lists_only_what_the_course_did_not_write(tmp_path):
    from mvgtutor.data.default import foreign_files

    write_tiny_dataset(tmp_path, n_tomograms=1)
    (tmp_path / "dataset.json").write_text("{}")
    (tmp_path / "model_0" / ".reconstruction.mrc.x.tmp").write_bytes(b"")
    assert foreign_files(tmp_path) == []
    (tmp_path / "model_0" / "picks.json").write_text("{}")
    os.symlink(tmp_path / "model_0", tmp_path / "link")
    assert [str(p) for p in foreign_files(tmp_path)] == ["link", "model_0/picks.json"]


# --------------------------------------------------------------------------- simulate into a used folder
def test_simulate_never_mixes_datasets(tmp_path):
    from mvgtutor.simulate import simulate_dataset

    out = simulate_dataset(tmp_path / "d", n_tomograms=1, size=32, seed=3, progress=False)
    stamp = (out / "dataset.json").stat().st_mtime_ns
    assert simulate_dataset(out, n_tomograms=1, size=32, seed=3, progress=False) == out  # the same: kept
    assert (out / "dataset.json").stat().st_mtime_ns == stamp
    shutil.copytree(out / "model_0", out / "model_5")  # a left-over of an earlier, larger dataset
    with pytest.raises(ConfigError, match="--overwrite"):
        simulate_dataset(out, n_tomograms=1, size=32, seed=3, progress=False)
    assert (out / "model_5").is_dir()
    simulate_dataset(out, n_tomograms=1, size=32, seed=4, progress=False, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["dataset.json", "model_0"]  # replaced whole
    assert json.loads((out / "dataset.json").read_text())["seed"] == 4
    assert [p.name for p in tmp_path.iterdir()] == ["d"]  # no scratch folder left


def test_the_fingerprint_ignores_the_manifests_timings(tmp_path):
    """Two simulations of the same data differ only in the seconds each stage took: same fingerprint (a committed
    reference's card names its data by it, and CI regenerates the data)."""
    import json

    data = _with_manifest(write_tiny_dataset(tmp_path / "data"))
    before = runs.dataset_fingerprint(data)
    manifest_path = data / "dataset.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["timings_of_another_run"] = {"scene": 0.689, "projection": 0.078}
    manifest_path.write_text(json.dumps(manifest))
    assert runs.dataset_fingerprint(data) == before
