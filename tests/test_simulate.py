"""The whole simulator: determinism, axes, SNR, the missing wedge, datasets, the default dataset and the CLI."""

from __future__ import annotations

import dataclasses
import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from mvgtutor.cli import main
from mvgtutor.config import make_profile
from mvgtutor.data.formats import read_shrec_tomogram
from mvgtutor.simulate import (MANIFEST, SimulationConfig, image_scene, make_scene, simulate_dataset,
                                   simulate_tomogram)
from mvgtutor.simulate.imaging import ImagingConfig
from mvgtutor.simulate.tomography import missing_wedge_mask
from mvgtutor.errors import ConfigError

SIZE = 48


@pytest.fixture(scope="module")
def tomogram():
    return simulate_tomogram(size=SIZE, seed=5, keep_intermediates=True)


def test_outputs_have_shrec_shapes_and_types(tomogram):
    assert tomogram.reconstruction.shape == (SIZE,) * 3 and tomogram.reconstruction.dtype == torch.float32
    assert tomogram.class_mask.dtype == torch.uint8 and int(tomogram.class_mask.max()) <= 15
    assert tomogram.occupancy_mask.dtype == torch.int32
    assert tomogram.tilt_series.noisy.shape == (61, SIZE, SIZE)
    assert len(tomogram.particles) > 3


def test_particle_at_xyz_sits_at_class_mask_zyx(tomogram, tmp_path):
    from mvgtutor.data.formats import write_shrec_tomogram

    folder = write_shrec_tomogram(tmp_path / "model_0", reconstruction=tomogram.reconstruction,
                                  class_mask=tomogram.class_mask, occupancy_mask=tomogram.occupancy_mask,
                                  grandmodel=tomogram.grandmodel, particles=tomogram.particles,
                                  voxel_size_nm=1.0)
    written = read_shrec_tomogram(folder, expected_voxel_size_nm=1.0)
    checked = 0
    for particle in written.particles:
        if particle.class_name != "vesicle":  # a vesicle's centre is its hollow inside
            z, y, x = particle.zyx_index
            assert int(written.class_mask[z, y, x]) == particle.label, particle
            checked += 1
    assert checked >= 3


def test_same_seed_same_tomogram_other_seed_other_tomogram():
    a = simulate_tomogram(size=32, seed=11)
    b = simulate_tomogram(size=32, seed=11)
    c = simulate_tomogram(size=32, seed=12)
    assert torch.equal(a.reconstruction, b.reconstruction) and torch.equal(a.class_mask, b.class_mask)
    assert a.particles == b.particles
    assert not torch.equal(a.reconstruction, c.reconstruction)


def test_reconstruction_shows_the_missing_wedge(tomogram):
    power = torch.fft.fftshift(torch.fft.fftn(tomogram.reconstruction)).abs() ** 2  # (Z, Y, X)
    k = torch.arange(SIZE) - SIZE // 2
    radius = torch.sqrt(k[:, None, None] ** 2 + k[None, :, None] ** 2 + k[None, None, :] ** 2)
    band = (radius > 3) & (radius < SIZE // 2 - 2)
    wedge = missing_wedge_mask(SIZE, 65.0)  # 5 degrees of margin: gridding spreads each line by a cell
    sampled = ~missing_wedge_mask(SIZE, 60.0)
    inside, outside = float(power[wedge & band].mean()), float(power[sampled & band].mean())
    assert inside < 0.05 * outside


@pytest.fixture(scope="module")
def small_scene():
    return make_scene(32, np.random.default_rng(2))


@pytest.mark.parametrize("snr", [0.05, 0.5])
def test_requested_snr_is_measured(small_scene, snr):
    imaging = dataclasses.replace(ImagingConfig(), snr=snr)
    result = image_scene(small_scene, 32, seed=3, imaging=imaging, keep_intermediates=True)
    assert result.metadata["measured_snr"] == pytest.approx(snr, rel=0.05)
    series = result.tilt_series  # measured against the noise-free projections, independently here
    signal = series.clean - series.clean.mean(dim=(-2, -1), keepdim=True)
    noise = series.noisy - series.clean
    assert float(signal.var() / noise.var()) == pytest.approx(snr, rel=0.1)


def test_higher_snr_needs_more_dose(small_scene):
    # without radiation damage the noise-free images do not depend on the dose, so the SNR is linear in it
    # (with damage it is sublinear: the ice's fine texture, part of the signal, fades as the dose grows)
    undamaged = ImagingConfig().without("exposure_filter")
    dose = {snr: image_scene(small_scene, 32, seed=3, imaging=dataclasses.replace(undamaged, snr=snr))
            .metadata["total_dose_e_per_a2"] for snr in (0.1, 0.4)}
    assert dose[0.4] == pytest.approx(4 * dose[0.1], rel=0.3)


def test_switching_noise_off_gives_the_clean_series_and_forbids_snr():
    quiet = SimulationConfig().without("noise")
    result = simulate_tomogram(size=32, seed=1, config=quiet, keep_intermediates=True)
    assert torch.equal(result.tilt_series.noisy, result.tilt_series.clean)
    assert result.metadata["physics"]["noise"] is False
    with pytest.raises(ConfigError, match="noise"):
        simulate_tomogram(size=32, seed=1, snr=1.0, config=quiet)


def test_each_effect_changes_the_tilt_series():
    scene = make_scene(32, np.random.default_rng(4))
    base = image_scene(scene, 32, seed=9, keep_intermediates=True).tilt_series.clean
    assert torch.equal(base, image_scene(scene, 32, seed=9, keep_intermediates=True).tilt_series.clean)
    for effect in ("ice", "misalignment", "exposure_filter", "ctf", "detector"):
        changed = image_scene(scene, 32, seed=9, imaging=ImagingConfig().without(effect),
                              keep_intermediates=True).tilt_series.clean
        assert not torch.allclose(base, changed), effect
    with pytest.raises(ConfigError, match="make_scene"):
        image_scene(scene, 64, seed=9)


def test_oversampling_gives_the_tomogram_grid():
    config = SimulationConfig()
    config = dataclasses.replace(config, imaging=dataclasses.replace(config.imaging, oversample=2))
    result = simulate_tomogram(size=32, seed=3, config=config)
    assert result.reconstruction.shape == (32, 32, 32) and result.class_mask.shape == (32, 32, 32)
    for particle in result.particles:
        if particle.class_name != "vesicle":
            assert int(result.class_mask[particle.zyx_index]) == particle.label


def test_bad_sizes_raise_config_error():
    with pytest.raises(ConfigError, match="size"):
        simulate_tomogram(size=8)


# ------------------------------------------------------------------------------- datasets and the CLI
def test_simulate_dataset_writes_shrec_layout_and_manifest_last(tmp_path):
    out = simulate_dataset(tmp_path / "data", n_tomograms=2, size=32, seed=1, snr=0.3, progress=False)
    manifest = json.loads((out / MANIFEST).read_text())
    assert [r["name"] for r in manifest["tomograms"]] == ["model_0", "model_1"]
    assert all(r["measured_snr"] == pytest.approx(0.3, rel=0.05) for r in manifest["tomograms"])
    for name in ("model_0", "model_1"):
        written = read_shrec_tomogram(out / name, expected_voxel_size_nm=1.0)
        assert written.reconstruction.shape == (32, 32, 32)
    latest = max(p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != MANIFEST)
    assert (out / MANIFEST).stat().st_mtime_ns >= latest


def test_cli_simulate_writes_a_dataset_and_reports_errors(tmp_path, capsys):
    assert main(["simulate", "--out", str(tmp_path / "cli"), "--size", "32", "--seed", "2",
                 "--disable", "ctf"]) == 0
    manifest = json.loads((tmp_path / "cli" / MANIFEST).read_text())
    assert manifest["tomograms"][0]["physics"]["ctf"] is False
    assert main(["simulate"]) == 1
    assert "--out" in capsys.readouterr().err


def _tiny_profile():
    profile = make_profile("test")
    return dataclasses.replace(profile, data=dataclasses.replace(profile.data, tomogram_size=32, n_tomograms=1))


def test_default_dataset_is_built_once_and_reused(tmp_path, monkeypatch):
    from mvgtutor.data.default import default_dataset

    monkeypatch.setenv("MVGTUTOR_DATA_DIR", str(tmp_path))
    first = default_dataset(_tiny_profile())
    assert first == tmp_path / "shrec-sim-test" and (first / MANIFEST).is_file()
    stamp = (first / MANIFEST).stat().st_mtime_ns
    assert default_dataset(_tiny_profile()) == first and (first / MANIFEST).stat().st_mtime_ns == stamp
    assert not [p for p in tmp_path.iterdir() if ".building." in p.name or ".stale." in p.name]  # no scratch left


def test_default_dataset_never_uses_an_incomplete_folder(tmp_path, monkeypatch):
    from mvgtutor.data.default import default_dataset

    monkeypatch.setenv("MVGTUTOR_DATA_DIR", str(tmp_path))
    broken = tmp_path / "shrec-sim-test" / "model_0"
    broken.mkdir(parents=True)
    (broken / "reconstruction.mrc").write_bytes(b"half a file")
    with pytest.warns(UserWarning, match="rebuilding"):
        path = default_dataset(_tiny_profile())
    assert read_shrec_tomogram(path / "model_0", expected_voxel_size_nm=1.0).reconstruction.shape == (32,) * 3


def test_default_dataset_is_safe_with_two_concurrent_callers(tmp_path, monkeypatch):
    # two threads: each opens the lock file itself, and flock locks belong to the open file, so the two
    # contend exactly as two pytest-xdist processes do (without paying for two interpreter start-ups)
    from mvgtutor.data.default import default_dataset

    monkeypatch.setenv("MVGTUTOR_DATA_DIR", str(tmp_path))
    with ThreadPoolExecutor(max_workers=2) as pool:
        paths = list(pool.map(lambda _: default_dataset(_tiny_profile()), range(2)))
    assert paths == [tmp_path / "shrec-sim-test"] * 2
    manifest = json.loads((tmp_path / "shrec-sim-test" / MANIFEST).read_text())
    assert manifest["size"] == 32 and np.isfinite(manifest["tomograms"][0]["measured_snr"])
    assert not [p for p in tmp_path.iterdir() if ".building." in p.name]  # the loser left no scratch behind
