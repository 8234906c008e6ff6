"""MRC I/O, the SHREC 2021 layout and copick picks: round trips and every bad-file error."""

from __future__ import annotations

import json
import re

import mrcfile
import numpy as np
import pytest
import torch

from mvgtutor.data import formats
from mvgtutor.data.formats import (Particle, list_tomograms, read_copick_picks, read_mrc,
                                   read_particle_locations, read_shrec_tomogram, write_copick_picks,
                                   write_mrc, write_shrec_tomogram)
from mvgtutor.errors import DataError

SHAPE = (12, 16, 20)  # (Z, Y, X): all different so that a transposed axis shows up


def _tomogram_arrays(seed: int = 0):
    """Small arrays in SHREC form with two particles painted into the class mask at their X Y Z."""
    rng = np.random.default_rng(seed)
    reconstruction = rng.normal(size=SHAPE).astype(np.float32)
    grandmodel = rng.random(SHAPE).astype(np.float32)
    class_mask = np.zeros(SHAPE, np.uint8)
    occupancy = np.zeros(SHAPE, np.int64)
    particles = [Particle("5MRC", x=3, y=10, z=7, phi=10.0, theta=20.0, psi=30.0),
                 Particle("fiducial", x=17.0, y=2.0, z=1.0)]
    for instance, p in enumerate(particles, start=1):
        z, y, x = p.zyx_index
        class_mask[z, y, x] = p.label
        occupancy[z, y, x] = instance
    return dict(reconstruction=reconstruction, class_mask=class_mask, occupancy_mask=occupancy,
                grandmodel=grandmodel, particles=particles)


@pytest.fixture
def tomogram_dir(tmp_path):
    folder = tmp_path / "dataset" / "model_0"
    write_shrec_tomogram(folder, voxel_size_nm=1.0, **_tomogram_arrays())
    return folder


def test_mrc_round_trip_keeps_values_dtype_and_voxel_size(tmp_path):
    volume = np.arange(np.prod(SHAPE), dtype=np.float32).reshape(SHAPE)
    write_mrc(tmp_path / "v.mrc", volume, voxel_size_nm=1.35)
    back = read_mrc(tmp_path / "v.mrc", expected_voxel_size_nm=1.35)
    assert back.dtype == np.float32 and back.shape == SHAPE
    np.testing.assert_array_equal(back, volume)
    with mrcfile.open(tmp_path / "v.mrc") as mrc:  # the header stores Angstrom
        assert mrc.voxel_size.x == pytest.approx(13.5)
    assert formats.mrc_voxel_size_nm(tmp_path / "v.mrc") == pytest.approx(1.35)


def test_mrc_accepts_torch_tensors_and_memory_maps_on_request(tmp_path):
    write_mrc(tmp_path / "t.mrc", torch.ones(SHAPE), voxel_size_nm=1.0)
    mapped = read_mrc(tmp_path / "t.mrc", mmap=True)
    assert isinstance(mapped, np.memmap) and not mapped.flags.writeable
    assert float(mapped.sum()) == np.prod(SHAPE)
    assert not isinstance(read_mrc(tmp_path / "t.mrc", mmap=False), np.memmap)


def test_mrc_voxel_size_mismatch_is_an_error_not_a_resample(tmp_path):
    write_mrc(tmp_path / "v.mrc", np.zeros(SHAPE, np.float32), voxel_size_nm=1.0)
    with pytest.raises(DataError, match=r"v\.mrc.*voxel size 1 nm.*expected 0\.5 nm"):
        read_mrc(tmp_path / "v.mrc", expected_voxel_size_nm=0.5)


def test_mrc_without_voxel_size_is_an_error(tmp_path):
    with mrcfile.new(tmp_path / "bare.mrc") as mrc:
        mrc.set_data(np.zeros(SHAPE, np.float32))
        mrc.voxel_size = 0.0
    with pytest.raises(DataError, match="no voxel size"):
        read_mrc(tmp_path / "bare.mrc", expected_voxel_size_nm=1.0)


def test_truncated_mrc_names_the_file(tmp_path):
    path = write_mrc(tmp_path / "cut.mrc", np.zeros(SHAPE, np.float32), voxel_size_nm=1.0)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    with pytest.raises(DataError, match=r"cut\.mrc: truncated"):
        read_mrc(path)
    path.write_bytes(data[:500])  # not even a whole header
    with pytest.raises(DataError, match=r"cut\.mrc: not a readable MRC"):
        read_mrc(path)


def test_write_mrc_rejects_bad_input(tmp_path):
    with pytest.raises(DataError, match="3D volume"):
        write_mrc(tmp_path / "a.mrc", np.zeros((4, 4)), 1.0)
    with pytest.raises(DataError, match="int64 cannot be stored"):
        write_mrc(tmp_path / "a.mrc", np.zeros(SHAPE, np.int64), 1.0)
    with pytest.raises(DataError, match="positive number"):
        write_mrc(tmp_path / "a.mrc", np.zeros(SHAPE, np.float32), 0.0)
    assert not (tmp_path / "a.mrc").exists()


def test_shrec_layout_round_trip(tomogram_dir):
    arrays = _tomogram_arrays()
    names = sorted(p.name for p in tomogram_dir.iterdir())
    assert names == ["class_mask.mrc", "grandmodel.mrc", "occupancy_mask.mrc", "particle_locations.txt",
                     "reconstruction.mrc"]
    tomo = read_shrec_tomogram(tomogram_dir, expected_voxel_size_nm=1.0)
    assert tomo.name == "model_0" and tomo.shape == SHAPE and tomo.voxel_size_nm == pytest.approx(1.0)
    assert tomo.class_mask.dtype == np.uint8 and tomo.reconstruction.dtype == np.float32
    np.testing.assert_array_equal(tomo.reconstruction, arrays["reconstruction"])
    np.testing.assert_array_equal(tomo.class_mask, arrays["class_mask"])
    np.testing.assert_array_equal(tomo.occupancy_mask, arrays["occupancy_mask"])
    np.testing.assert_array_equal(tomo.grandmodel, arrays["grandmodel"])
    assert tomo.particles == arrays["particles"]


def test_particle_at_xyz_sits_at_class_mask_zyx_after_round_trip(tomogram_dir):
    tomo = read_shrec_tomogram(tomogram_dir)
    lines = (tomogram_dir / "particle_locations.txt").read_text().splitlines()
    assert lines[0].split()[:4] == ["5MRC", "3", "10", "7"]  # X Y Z as written in the file
    for particle in tomo.particles:
        assert tomo.class_mask[int(particle.z), int(particle.y), int(particle.x)] == particle.label


def test_optional_volumes_may_be_absent(tmp_path):
    arrays = _tomogram_arrays()
    arrays.update(occupancy_mask=None, grandmodel=None)
    folder = write_shrec_tomogram(tmp_path / "model_3", voxel_size_nm=1.0, **arrays)
    tomo = read_shrec_tomogram(folder)
    assert tomo.occupancy_mask is None and tomo.grandmodel is None


def test_large_instance_ids_survive(tmp_path):
    arrays = _tomogram_arrays()
    arrays["occupancy_mask"][0, 0, 0] = 40_000  # beyond int16
    tomo = read_shrec_tomogram(write_shrec_tomogram(tmp_path / "model_0", voxel_size_nm=1.0, **arrays))
    assert tomo.occupancy_mask[0, 0, 0] == 40_000


@pytest.mark.parametrize("missing", ["reconstruction.mrc", "class_mask.mrc", "particle_locations.txt"])
def test_missing_file_names_it(tomogram_dir, missing):
    (tomogram_dir / missing).unlink()
    with pytest.raises(DataError, match=re.escape(missing) + ": file not found"):
        read_shrec_tomogram(tomogram_dir)


def test_shape_mismatch_between_tomogram_and_mask(tomogram_dir):
    write_mrc(tomogram_dir / "class_mask.mrc", np.zeros((12, 16, 19), np.int8), 1.0)
    with pytest.raises(DataError, match=r"class_mask\.mrc: shape \(12, 16, 19\) does not match"):
        read_shrec_tomogram(tomogram_dir)


def test_write_refuses_shape_mismatch(tmp_path):
    arrays = _tomogram_arrays()
    arrays["class_mask"] = arrays["class_mask"][:, :, :-1]
    with pytest.raises(DataError, match="class_mask.mrc: shape"):
        write_shrec_tomogram(tmp_path / "model_0", voxel_size_nm=1.0, **arrays)


def test_wrong_dtype_of_mask(tomogram_dir):
    write_mrc(tomogram_dir / "class_mask.mrc", np.full(SHAPE, 0.5, np.float32), 1.0)
    with pytest.raises(DataError, match=r"class_mask\.mrc: wrong dtype"):
        read_shrec_tomogram(tomogram_dir)


def test_wrong_dtype_of_reconstruction(tomogram_dir):
    with mrcfile.new(tomogram_dir / "reconstruction.mrc", overwrite=True) as mrc:
        mrc.set_data(np.zeros(SHAPE, np.complex64))
        mrc.voxel_size = 10.0
    with pytest.raises(DataError, match=r"reconstruction\.mrc: wrong dtype complex64"):
        read_shrec_tomogram(tomogram_dir)


def test_labels_out_of_range(tomogram_dir):
    write_mrc(tomogram_dir / "class_mask.mrc", np.full(SHAPE, 16, np.int8), 1.0)
    with pytest.raises(DataError, match=r"class_mask\.mrc: labels must lie in 0\.\.15"):
        read_shrec_tomogram(tomogram_dir)


def test_voxel_sizes_must_agree_inside_a_folder(tomogram_dir):
    write_mrc(tomogram_dir / "class_mask.mrc", np.zeros(SHAPE, np.int8), 1.1)
    with pytest.raises(DataError, match=r"class_mask\.mrc: voxel size 1\.1 nm"):
        read_shrec_tomogram(tomogram_dir)
    with pytest.raises(DataError, match=r"reconstruction\.mrc: voxel size 1 nm.*expected 2 nm"):
        read_shrec_tomogram(tomogram_dir, expected_voxel_size_nm=2.0)


def test_unknown_class_name_names_file_and_line(tomogram_dir):
    path = tomogram_dir / "particle_locations.txt"
    path.write_text(path.read_text() + "ribosome 1 2 3 0 0 0\n")
    with pytest.raises(DataError, match=r"particle_locations\.txt, line 3: unknown class name 'ribosome'"):
        read_shrec_tomogram(tomogram_dir)


@pytest.mark.parametrize("line, message", [("5MRC 1 2", "expected 'CLASSNAME"),
                                           ("5MRC 1 two 3 0 0 0", "coordinates and angles must be numbers")])
def test_malformed_particle_lines(tmp_path, line, message):
    path = tmp_path / "particle_locations.txt"
    path.write_text(f"# comment\n\n{line}\n")
    with pytest.raises(DataError, match=rf"line 3: {message}"):
        read_particle_locations(path)


def test_particle_outside_the_volume_hints_at_units(tomogram_dir):
    path = tomogram_dir / "particle_locations.txt"
    path.write_text("4V94 30 40 500 0 0 0\n")  # Angstrom instead of voxels
    with pytest.raises(DataError, match="outside the volume.*not Angstrom"):
        read_shrec_tomogram(tomogram_dir)


def test_list_tomograms_orders_numerically(tmp_path):
    for n in (10, 2, 0):
        (tmp_path / f"model_{n}").mkdir()
    (tmp_path / "notes").mkdir()
    assert [p.name for p in list_tomograms(tmp_path)] == ["model_0", "model_2", "model_10"]


def test_list_tomograms_says_how_to_make_data(tmp_path):
    with pytest.raises(DataError, match="mvgtutor simulate --out DIR.*make data"):
        list_tomograms(tmp_path / "nowhere")
    with pytest.raises(DataError, match="no model_N"):
        list_tomograms(tmp_path)


def _copick_document():
    """A picks file exactly as copick writes it (pydantic dump: Angstrom, ``transformation_``)."""
    quarter_turn_z = [[0.0, -1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
    return {
        "pickable_object_name": "apo-ferritin",
        "user_id": "curation",
        "session_id": "0",
        "run_name": "TS_5_4",
        "voxel_spacing": None,
        "unit": "angstrom",
        "trust_orientation": True,
        "points": [
            {"location": {"x": 468.514, "y": 5915.906, "z": 604.167},
             "transformation_": quarter_turn_z, "instance_id": 0, "score": 1.0},
            {"location": {"x": 100.0, "y": 200.0, "z": 300.0}, "instance_id": 0},
        ],
    }


def test_copick_picks_are_read_in_voxels(tmp_path):
    path = tmp_path / "curation_0_apo-ferritin.json"
    path.write_text(json.dumps(_copick_document(), indent=4))
    particles = read_copick_picks(path, voxel_size_nm=1.0)  # 10 A voxels
    assert [p.class_name for p in particles] == ["apo-ferritin", "apo-ferritin"]
    first, second = particles
    assert (first.x, first.y, first.z) == pytest.approx((46.8514, 591.5906, 60.4167))
    assert (first.phi + first.psi) % 360 == pytest.approx(90.0) and first.theta == pytest.approx(0.0)
    assert (second.x, second.y, second.z, second.phi, second.theta, second.psi) == pytest.approx(
        (10.0, 20.0, 30.0, 0.0, 0.0, 0.0))


def test_copick_round_trip_angstrom_voxels_angstrom(tmp_path):
    particles = [Particle("4V94", 12.5, 7.0, 3.25, 30.0, 40.0, 50.0)]
    path = write_copick_picks(tmp_path / "p.json", particles, voxel_size_nm=0.75, object_name="4V94")
    document = json.loads(path.read_text())
    assert document["points"][0]["location"] == pytest.approx({"x": 93.75, "y": 52.5, "z": 24.375})
    (back,) = read_copick_picks(path, voxel_size_nm=0.75)
    assert (back.x, back.y, back.z, back.phi, back.theta, back.psi) == pytest.approx(
        (12.5, 7.0, 3.25, 30.0, 40.0, 50.0))


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    (json.dumps({"points": []}), "not a copick picks file"),
    (json.dumps({"pickable_object_name": "a", "unit": "nm", "points": []}), "unit 'nm'"),
    (json.dumps({"pickable_object_name": "a", "points": [{"location": {"x": 1}}]}), "point 0 is malformed"),
    ('{"pickable_object_name": "a", "points": [{"location": {"x": NaN, "y": 1, "z": 1}}]}', "point 0 has a"),
    ('{"pickable_object_name": "a", "points": [{"location": {"x": 1, "y": Infinity, "z": 1}}]}', "point 0 has a"),
])
def test_bad_copick_files(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(DataError, match=rf"bad\.json: {message}"):
        read_copick_picks(path, voxel_size_nm=1.0)


def test_read_mrc_info_reads_the_header_only(tomogram_dir):
    info = formats.read_mrc_info(tomogram_dir / "class_mask.mrc")
    assert info.shape == SHAPE and info.dtype == np.int8 and info.voxel_size_nm == pytest.approx(1.0)


def test_info_cli_summarises_a_dataset(tomogram_dir, capsys):
    from mvgtutor.cli import main

    arrays = _tomogram_arrays(seed=1)
    arrays["particles"] = arrays["particles"][:1]
    arrays.update(grandmodel=None)
    write_shrec_tomogram(tomogram_dir.parent / "model_1", voxel_size_nm=1.0, **arrays)
    assert main(["info", str(tomogram_dir.parent)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("2 tomograms, voxel size 1 nm")
    assert out[2].split() == ["tomogram", "shape", "(Z", "x", "Y", "x", "X)", "voxel", "nm", "particles",
                              "optional", "volumes"]
    assert out[3].split() == ["model_0", "12", "x", "16", "x", "20", "1", "2", "occupancy_mask,", "grandmodel"]
    assert out[4].split() == ["model_1", "12", "x", "16", "x", "20", "1", "1", "occupancy_mask"]
    per_class = out[out.index("Particles per class:") + 1:]
    assert [line.split() for line in per_class] == [["label", "class", "model_0", "model_1", "total"],
                                                    ["13", "5MRC", "1", "1", "2"],
                                                    ["15", "fiducial", "1", "0", "1"]]


def test_info_cli_on_a_missing_folder_prints_one_line(tmp_path, capsys):
    from mvgtutor.cli import main

    assert main(["info", str(tmp_path / "nothing")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "make data" in err
