"""Picking file formats (text, CSV, CZII CSV, STAR, copick project, MRC at any voxel size) and the two CLI commands."""

import json

import numpy as np
import pytest

from mvgtutor.cli import main
from mvgtutor.data.formats import Particle, write_mrc, write_shrec_tomogram
from mvgtutor.errors import DataError
from mvgtutor.picking import Picks, read_mrc_at, read_picks, rescale_volume, write_picks
from mvgtutor.picking.copick_project import (read_copick_project_picks, read_copick_tomogram, write_copick_config,
                                             write_copick_picks, write_copick_tomogram)
from mvgtutor.picking.io import read_czii_submission, read_star_picks, write_czii_submission, write_star_picks


def _picks(unit="voxel"):
    xyz = np.array([[1.5, 2.0, 3.25], [10.0, 20.0, 30.0], [4.0, 5.0, 6.0]])
    return Picks(xyz, ["ribosome", "ribosome", "apo-ferritin"], ["TS_1", "TS_2", "TS_1"], [0.9, 0.8, 0.7], unit,
                 10.0 if unit == "voxel" else None)


def _same(a: Picks, b: Picks, names=True):
    order_a = np.lexsort(a.xyz.T[::-1])
    order_b = np.lexsort(b.xyz.T[::-1])
    np.testing.assert_allclose(a.xyz[order_a], b.xyz[order_b], atol=1e-3)
    if names:
        assert list(a.names[order_a]) == list(b.names[order_b])
        assert list(a.tomograms[order_a]) == list(b.tomograms[order_b])


def test_units_round_trip_angstrom_voxels():
    picks = _picks()
    angstrom = picks.to_angstrom()
    assert angstrom.unit == "angstrom" and angstrom.xyz[1].tolist() == [100.0, 200.0, 300.0]
    _same(angstrom.to_voxels(10.0), picks)
    np.testing.assert_allclose(angstrom.to_voxels(7.5).xyz[1], [100 / 7.5, 200 / 7.5, 40.0])
    with pytest.raises(DataError, match="voxel size is unknown"):
        Picks.create([[1, 2, 3]], "a", unit="voxel").to_angstrom()
    with pytest.raises(DataError, match="one per pick"):
        Picks(np.zeros((2, 3)), ["a"], ["t", "t"], [1, 1], "voxel")


def test_czii_submission_csv(tmp_path):
    path = write_czii_submission(tmp_path / "submission.csv", _picks())
    assert path.read_text().splitlines()[0] == "id,experiment,particle_type,x,y,z"
    back = read_czii_submission(path)
    assert back.unit == "angstrom"
    _same(back, _picks().to_angstrom())
    (tmp_path / "no_id.csv").write_text("experiment,particle_type,x,y,z\nTS_5,ribosome,1.0,2.0,3.0\n")
    assert read_picks(tmp_path / "no_id.csv").tomograms.tolist() == ["TS_5"]  # id column optional
    (tmp_path / "plain.csv").write_text("x,y,z\n1,2,3\n")
    with pytest.raises(DataError, match="unit"):
        read_picks(tmp_path / "plain.csv")
    assert read_picks(tmp_path / "plain.csv", unit="voxel").xyz.tolist() == [[1.0, 2.0, 3.0]]


def test_csv_and_text_round_trip(tmp_path):
    picks = _picks()
    _same(read_picks(write_picks(tmp_path / "p.csv", picks), unit="voxel"), picks)
    text = read_picks(write_picks(tmp_path / "p.txt", picks), unit="voxel")
    _same(text, picks, names=False)
    assert sorted(text.names) == sorted(picks.names)
    shrec = Picks.create([[3, 4, 5], [6, 7, 8]], ["5MRC", "1BXN"], unit="voxel")
    path = write_picks(tmp_path / "model_0" / "particle_locations.txt", shrec)
    assert path.read_text().splitlines()[0].startswith("5MRC 3 4 5")  # the SHREC layout, via formats
    back = read_picks(path, unit="angstrom")  # a SHREC list is voxels whatever the caller's default unit
    assert back.unit == "voxel" and back.tomograms.tolist() == ["model_0", "model_0"]
    _same(back, shrec.with_tomogram("model_0"))


def test_star_files(tmp_path):
    one_type = _picks().of_class("ribosome")
    path = write_star_picks(tmp_path / "ribosome.star", one_type)
    back = read_star_picks(path)
    assert back.unit == "voxel" and set(back.names) == {"ribosome"}  # the class from the file name
    _same(back, one_type)
    with pytest.raises(DataError, match="one"):
        write_star_picks(tmp_path / "two.star", _picks())
    # RELION's origin shifts: position = coordinate - origin / pixel size
    path.write_text("data_particles\n\nloop_\n_rlnCoordinateX #1\n_rlnCoordinateY #2\n_rlnCoordinateZ #3\n"
                    "_rlnOriginXAngst #4\n_rlnTomoName #5\n10.0 20.0 30.0 20.0 TS_7\n")
    with pytest.raises(DataError, match="voxel_size_angstrom"):
        read_star_picks(path)
    shifted = read_star_picks(path, voxel_size_angstrom=10.0, particle_type="ribosome")
    assert shifted.xyz.tolist() == [[8.0, 20.0, 30.0]] and shifted.tomograms.tolist() == ["TS_7"]


def test_copick_project_round_trip(tmp_path):
    root = tmp_path / "project"
    config = write_copick_config(root, {"ribosome": 150.0, "apo-ferritin": 60.0})
    written = write_copick_picks(root, _picks())
    assert {p.relative_to(root).as_posix() for p in written} == {
        "ExperimentRuns/TS_1/Picks/mvgtutor_0_ribosome.json", "ExperimentRuns/TS_1/Picks/mvgtutor_0_apo-ferritin.json",
        "ExperimentRuns/TS_2/Picks/mvgtutor_0_ribosome.json"}
    document = json.loads(written[0].read_text())
    assert document["unit"] == "angstrom" and {"x", "y", "z"} <= set(document["points"][0]["location"])
    assert json.loads(config.read_text())["pickable_objects"][1]["name"] == "ribosome"
    back = read_copick_project_picks(root)
    assert back.unit == "angstrom"
    _same(back, _picks().to_angstrom())
    _same(read_picks(config), _picks().to_angstrom())
    assert len(read_copick_project_picks(root, objects=["ribosome"])) == 2
    volume = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    zarr_path = write_copick_tomogram(root, "TS_1", volume, 10.0)
    assert zarr_path.relative_to(root).as_posix() == "ExperimentRuns/TS_1/VoxelSpacing10.000/wbp.zarr"
    data, spacing = read_copick_tomogram(root, "TS_1")
    assert spacing == 10.0 and np.array_equal(data, volume)
    with pytest.raises(DataError, match="voxel spacings"):
        read_copick_tomogram(root, "TS_1", voxel_size_angstrom=7.0)


def test_mrc_at_any_voxel_size_is_rescaled(tmp_path):
    zz, yy, xx = np.meshgrid(*[np.arange(40)] * 3, indexing="ij")
    blob = np.exp(-((zz - 20) ** 2 + (yy - 16) ** 2 + (xx - 24) ** 2) / 18.0).astype(np.float32)
    write_mrc(tmp_path / "fine.mrc", blob, voxel_size_nm=0.5)
    volume, source = read_mrc_at(tmp_path / "fine.mrc", 1.0)
    assert source == pytest.approx(0.5) and volume.shape == (20, 20, 20)
    peak = np.unravel_index(volume.argmax(), volume.shape)
    assert peak == (10, 8, 12)  # the same place in nm: voxel coordinates halve
    assert volume.mean() == pytest.approx(blob.mean(), rel=1e-4)
    assert rescale_volume(volume, 1.0, 0.5).shape == (40, 40, 40)
    with pytest.raises(DataError, match="voxel size"):
        read_mrc_at(tmp_path / "fine.mrc", 1.0, expected_voxel_size_nm=1.0)


# ---------------------------------------------------------------------------------------------------- CLI
@pytest.fixture()
def tomogram_folder(tmp_path):
    labels = np.zeros((24, 24, 24), np.uint8)
    occupancy = np.zeros((24, 24, 24), np.int32)
    labels[3:9, 3:9, 3:9], occupancy[3:9, 3:9, 3:9] = 13, 1
    labels[14:20, 14:20, 14:20], occupancy[14:20, 14:20, 14:20] = 2, 2
    particles = [Particle("5MRC", 5.5, 5.5, 5.5), Particle("4CR2", 16.5, 16.5, 16.5)]
    folder = write_shrec_tomogram(tmp_path / "model_0", reconstruction=np.zeros((24, 24, 24), np.float32),
                                  class_mask=labels, occupancy_mask=occupancy, grandmodel=None, particles=particles,
                                  voxel_size_nm=1.0)
    prediction = labels.copy()
    prediction[14:20, 14:20, 14:20] = 0  # the 4CR2 is missed
    prediction[20:23, 2:5, 2:5] = 13  # a false 5MRC of 27 voxels
    write_mrc(tmp_path / "pred.mrc", prediction.astype(np.int8), 1.0)
    return folder


def test_cli_pick_and_score(tomogram_folder, tmp_path, capsys):
    assert main(["pick", "--seg", str(tmp_path / "pred.mrc"), "--out", str(tmp_path / "picks.csv"),
                 "--min-size", "5"]) == 0
    picks = read_picks(tmp_path / "picks.csv", unit="voxel")
    assert sorted(map(tuple, picks.xyz.round(2))) == [(3.0, 3.0, 21.0), (5.5, 5.5, 5.5)]
    truth = str(tomogram_folder / "particle_locations.txt")
    capsys.readouterr()
    for metric in ("paper", "shrec"):  # one of two picks right, one of two particles found: P = R = F1 = 0.5
        assert main(["score-picks", "--pred", str(tmp_path / "picks.csv"), "--truth", truth, "--metric", metric,
                     "--unit", "voxel", "--json"]) == 0
        result = json.loads(capsys.readouterr().out)
        assert result["total"]["tp"] == 1 and result["headline"] == pytest.approx(0.5)
    assert main(["pick", "--seg", str(tmp_path / "pred.mrc"), "--out", str(tmp_path / "sub.csv"), "--czii",
                 "--min-size", "5", "--tomogram", "model_0"]) == 0
    assert main(["score-picks", "--pred", str(tmp_path / "sub.csv"), "--truth", truth, "--metric", "czii",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert result["per_class"]["5MRC"]["tp"] == 1 and result["per_class"]["4CR2"]["fn"] == 1
    assert main(["score-picks", "--pred", str(tmp_path / "nope.csv"), "--truth", truth]) == 1
    assert "file not found" in capsys.readouterr().err


def test_cli_pick_never_writes_over_a_file_unasked(tomogram_folder, tmp_path, capsys):
    truth = tomogram_folder / "particle_locations.txt"
    before = truth.read_bytes()
    seg = str(tmp_path / "pred.mrc")
    assert main(["pick", "--seg", seg, "--out", str(truth), "--min-size", "5"]) == 1  # the truth list: refused
    assert "exists" in capsys.readouterr().err and truth.read_bytes() == before
    assert main(["pick", "--seg", seg, "--out", seg, "--overwrite"]) == 1  # its own input: refused even so
    assert "input" in capsys.readouterr().err
    assert main(["pick", "--seg", seg, "--out", str(tmp_path / "p.csv"), "--min-size-fraction", "nan"]) == 1
    assert "--min-size-fraction" in capsys.readouterr().err
    assert main(["pick", "--seg", seg, "--out", str(tmp_path / "p.csv"), "--min-size", "5"]) == 0
    assert main(["pick", "--seg", seg, "--out", str(tmp_path / "p.csv"), "--min-size", "5", "--overwrite"]) == 0


def test_cli_scores_a_czii_submission_against_a_copick_project(tmp_path, capsys):
    truth = Picks(np.array([[1000.0, 1000, 1000], [3000, 3000, 3000], [500, 500, 500]]),
                  ["ribosome", "thyroglobulin", "apo-ferritin"], ["TS_5_4", "TS_5_4", "TS_6_4"], np.ones(3), "angstrom")
    write_copick_config(tmp_path / "project", {"ribosome": 150.0, "thyroglobulin": 130.0, "apo-ferritin": 60.0})
    write_copick_picks(tmp_path / "project", truth)
    found = Picks(np.array([[1050.0, 1000, 1000], [3100, 3000, 3000]]), ["ribosome", "thyroglobulin"],
                  ["TS_5_4", "TS_5_4"], np.ones(2), "angstrom")
    write_czii_submission(tmp_path / "submission.csv", found)
    capsys.readouterr()
    assert main(["score-picks", "--pred", str(tmp_path / "submission.csv"), "--truth", str(tmp_path / "project"),
                 "--metric", "czii", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    # ribosome found (50 A < 75 A); thyroglobulin missed (100 A > 65 A); apo-ferritin missed
    assert result["per_class"]["ribosome"]["tp"] == 1 and result["per_class"]["thyroglobulin"]["fn"] == 1
    assert result["headline"] == pytest.approx(1 / 4)  # F4 = 1 (weight 1), 0 (weight 2), 0 (weight 1)
    assert main(["score-picks", "--pred", str(tmp_path / "submission.csv"), "--truth", str(tmp_path / "project"),
                 "--metric", "paper", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["total"]["tp"] == 2  # within the full radius both are hits


# A picks file exactly as copick 1.31.0 writes it (`run.new_picks("ribosome", "7", "copickuser")` then `.store()`),
# kept here so the test needs neither the copick package nor a network.
COPICK_WRITTEN = {
    "pickable_object_name": "ribosome", "user_id": "copickuser", "session_id": "7", "run_name": "TS_1",
    "voxel_spacing": None, "unit": "angstrom", "trust_orientation": True,
    "points": [{"location": {"x": x, "y": y, "z": z}, "instance_id": 0, "score": 1.0,
                "transformation_": [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0],
                                    [0.0, 0.0, 0.0, 1.0]]}
               for x, y, z in ((1500.0, 2500.0, 3500.0), (10.0, 20.0, 30.0))],
}


def test_reads_picks_that_the_copick_library_wrote(tmp_path):
    write_copick_config(tmp_path, {"ribosome": 150.0})
    path = tmp_path / "ExperimentRuns" / "TS_1" / "Picks" / "copickuser_7_ribosome.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(COPICK_WRITTEN, indent=4))
    picks = read_copick_project_picks(tmp_path, user_id="copickuser", session_id="7")
    assert picks.unit == "angstrom" and list(picks.names) == ["ribosome", "ribosome"]
    assert list(picks.tomograms) == ["TS_1", "TS_1"]
    np.testing.assert_allclose(picks.xyz, [[1500.0, 2500.0, 3500.0], [10.0, 20.0, 30.0]], atol=1e-6)


def test_copick_tomograms_use_ome_zarr_nested_chunk_keys(tmp_path):
    """OME-Zarr 0.4 (and so copick's store) nests chunk keys as 0/0/0/0; flat 0.0.0 keys read back as zeros."""
    write_copick_config(tmp_path, {"ribosome": 150.0})
    volume = np.random.default_rng(0).normal(size=(8, 10, 12)).astype(np.float32)
    path = write_copick_tomogram(tmp_path, "TS_1", volume, 10.0)
    assert json.loads((path / "0" / ".zarray").read_text())["dimension_separator"] == "/"
    assert (path / "0" / "0" / "0" / "0").is_file()
    np.testing.assert_array_equal(read_copick_tomogram(tmp_path, "TS_1")[0], volume)
