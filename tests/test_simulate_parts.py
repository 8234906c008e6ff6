"""The simulator's parts: templates, packing, the tilt geometry and the imaging model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mvgtutor.data.classes import PROTEIN_CLASSES, class_by_name
from mvgtutor.data.formats import write_mrc
from mvgtutor.simulate.imaging import EFFECTS, ImagingConfig, measure_snr
from mvgtutor.simulate.scene import VESICLE_LABEL, SceneConfig, build_scene, dilate, rotate_template
from mvgtutor.simulate.templates import class_template, structure_template, template_from_atoms, template_from_mrc
from mvgtutor.simulate.tomography import (dose_symmetric_order, missing_wedge_mask, project_tilt_series,
                                               projection_rotation_matrix, tilt_angles,
                                               weighted_back_projection)
from mvgtutor.errors import ConfigError, DataError


# ------------------------------------------------------------------------------------------- templates
@pytest.mark.parametrize("cls", PROTEIN_CLASSES, ids=lambda c: c.name)
def test_class_template_has_the_class_size_and_its_centre_inside(cls):
    template = class_template(cls.name, 1.0)
    assert template.equivalent_diameter_nm == pytest.approx(cls.diameter_nm, rel=0.15)
    centre = template.density.shape[0] // 2
    assert template.density[centre, centre, centre] >= 1.3 * template.threshold  # listed centre is labelled


def test_class_templates_differ_by_shape_not_only_size():
    # 3D2F and 1U6G have the same diameter (11 nm): their supports must still differ
    a, b = class_template("3D2F"), class_template("1U6G")
    size = max(a.density.shape[0], b.density.shape[0])
    pad = lambda t: torch.nn.functional.pad(t.support.float(), [(size - t.density.shape[0]) // 2] * 6)
    overlap = (pad(a) * pad(b)).sum() / torch.maximum(pad(a).sum(), pad(b).sum())
    assert overlap < 0.8


def test_class_template_rejects_non_proteins():
    with pytest.raises(ConfigError, match="vesicle"):
        class_template("vesicle")


def _write_rod_pdb(path, n_atoms=600):
    """A rod of carbon atoms along x (PDB, Angstrom), written with gemmi."""
    import gemmi

    structure = gemmi.Structure()
    model, chain = gemmi.Model("1"), gemmi.Chain("A")
    rng = np.random.default_rng(0)
    for i in range(n_atoms):
        residue = gemmi.Residue()
        residue.name, residue.seqid = "GLY", gemmi.SeqId(i + 1, " ")
        atom = gemmi.Atom()
        atom.name, atom.element = "CA", gemmi.Element("C")
        x, y, z = rng.uniform(-60, 60), rng.uniform(-12, 12), rng.uniform(-12, 12)  # Angstrom
        atom.pos = gemmi.Position(x + 100.0, y - 50.0, z + 20.0)  # off-centre: the template recentres it
        residue.add_atom(atom)
        chain.add_residue(residue)
    model.add_chain(chain)
    structure.add_model(model)
    structure.setup_entities()
    structure.write_pdb(str(path))


def test_template_from_atoms_keeps_the_shape_and_axes(tmp_path):
    path = tmp_path / "rod.pdb"
    _write_rod_pdb(path)
    template = template_from_atoms(path, voxel_size_nm=0.5)
    zz, yy, xx = torch.nonzero(template.support, as_tuple=True)
    centre = template.density.shape[0] // 2
    extent = lambda idx: float(idx.max() - idx.min())
    assert extent(xx) > 2.5 * extent(yy) and extent(xx) > 2.5 * extent(zz)  # the rod lies along x = last axis
    assert abs(float(xx.float().mean()) - centre) < 1.5 and abs(float(zz.float().mean()) - centre) < 1.5
    expected_nm3 = 600 * 12.011 * 1.21e-3  # mass in Dalton times the protein volume per Dalton
    assert float(template.support.sum()) * 0.5 ** 3 == pytest.approx(expected_nm3, rel=0.15)


def test_template_from_atoms_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        template_from_atoms(tmp_path / "nothing.pdb")


def test_template_from_mrc_reads_the_map_and_checks_voxel_size(tmp_path):
    axis = np.arange(21) - 10
    z, y, x = np.meshgrid(axis, axis, axis, indexing="ij")
    ball = ((x ** 2 + y ** 2 + z ** 2) <= 36).astype(np.float32)  # radius 6 voxels
    write_mrc(tmp_path / "ball.mrc", ball, voxel_size_nm=0.8)
    template = template_from_mrc(tmp_path / "ball.mrc", voxel_size_nm=0.8, threshold=0.5)
    assert torch.equal(template.support, torch.from_numpy(ball > 0.5))
    with pytest.raises(DataError):
        template_from_mrc(tmp_path / "ball.mrc", voxel_size_nm=1.0)


def test_dilate_grows_a_mask_by_its_26_neighbours():
    mask = torch.zeros(5, 6, 7, dtype=torch.bool)
    mask[2, 3, 3] = True
    grown = dilate(mask)
    assert int(grown.sum()) == 27 and bool(grown[1:4, 2:5, 2:5].all())


def test_rotating_a_template_keeps_its_volume():
    from scipy.spatial.transform import Rotation

    template = class_template("2CG9")
    rotated = rotate_template(template, Rotation.from_euler("ZXZ", [30, 50, 70], degrees=True))
    assert float((rotated >= template.threshold).sum()) == pytest.approx(float(template.support.sum()), rel=0.1)


# ---------------------------------------------------------------------------------------------- scenes
@pytest.fixture(scope="module")
def scene():
    return build_scene(72, 1.0, SceneConfig(), np.random.default_rng(3))


def test_scene_particles_do_not_overlap(scene):
    occupancy = scene.occupancy_mask
    proteins = [p for p in scene.placements if p.label < VESICLE_LABEL]
    assert len(proteins) >= 10
    for placement in proteins:
        own = occupancy == placement.instance
        # nothing pasted later cut into it: its support is whole
        full = float(structure_template(placement.class_name).support.sum())
        assert float(own.sum()) == pytest.approx(full, rel=0.2), placement  # rotation resamples it
        # and a one-voxel gap separates it from every other particle and membrane
        idx = torch.nonzero(own)
        box = tuple(slice(max(int(lo) - 1, 0), int(hi) + 2) for lo, hi in zip(idx.min(0).values, idx.max(0).values))
        grown = dilate(own[box])
        neighbours = occupancy[box][grown & ~own[box]]
        assert not bool((neighbours != 0).any()), placement


def test_scene_stays_in_its_slab_and_labels_every_centre(scene):
    z0, z1 = scene.slab
    assert not scene.class_mask[:z0].any() and not scene.class_mask[z1:].any()
    for p in scene.placements:
        if p.label != VESICLE_LABEL:
            assert int(scene.class_mask[round(p.z), round(p.y), round(p.x)]) == p.label
            assert int(scene.occupancy_mask[round(p.z), round(p.y), round(p.x)]) == p.instance


def test_packing_an_overfull_slab_ends_instead_of_stalling():
    crowded = SceneConfig(protein_volume_fraction=0.9, vesicle_count=(0, 0))
    scene = build_scene(48, 1.0, crowded, np.random.default_rng(0))  # asks for 2-3x what fits
    placed = sum(1 for p in scene.placements if p.label < VESICLE_LABEL)
    asked = sum(n for name, n in scene.requested.items() if class_by_name(name).kind == "protein")
    assert 0 < placed < asked  # it filled what fits and returned


def test_scene_is_deterministic_given_the_generator():
    a = build_scene(40, 1.0, SceneConfig(), np.random.default_rng(7))
    b = build_scene(40, 1.0, SceneConfig(), np.random.default_rng(7))
    assert torch.equal(a.potential, b.potential) and a.placements == b.placements


# ------------------------------------------------------------------------------------ tilt geometry
def test_tilt_scheme_and_dose_symmetric_order():
    angles = tilt_angles(-60, 60, 2)
    assert len(angles) == 61 and float(angles[0]) == -60 and float(angles[-1]) == 60
    rank = dose_symmetric_order(angles, group=2)
    by_rank = angles[torch.argsort(rank)].tolist()
    assert by_rank[:7] == [0, 2, 4, -2, -4, 6, 8]
    assert sorted(rank.tolist()) == list(range(61))
    with pytest.raises(ConfigError):
        tilt_angles(-90, 90, 2)


def test_projection_matches_torch_fourier_slice():
    import torch_fourier_slice

    volume = torch.zeros(32, 32, 32)
    volume[20:24, 8:14, 18:26] = 1.0
    volume[10, 16, 5] = 3.0
    angles = torch.tensor([-50.0, -10.0, 0.0, 30.0])
    ours = project_tilt_series(volume, angles)  # (T, Y, X)
    matrices = torch.stack([projection_rotation_matrix(float(a)) for a in angles])
    theirs = torch_fourier_slice.project_3d_to_2d(volume, matrices, pad_factor=2.0)
    assert torch.corrcoef(torch.stack([ours.flatten(), theirs.flatten()]))[0, 1] > 0.99
    # a point at height z above the centre moves to x' = x + z sin(theta)
    point = torch.zeros(32, 32, 32)
    point[16 + 8, 16, 16] = 1.0
    image = project_tilt_series(point, torch.tensor([30.0]))[0]
    assert int(image[16].argmax()) == 16 + 4


def test_back_projection_recovers_a_volume_with_a_missing_wedge():
    generator = torch.Generator().manual_seed(0)
    volume = torch.nn.functional.avg_pool3d(torch.randn(1, 1, 32, 32, 32, generator=generator), 3, 1, 1)[0, 0]
    angles = tilt_angles(-60, 60, 2)
    reconstruction = weighted_back_projection(project_tilt_series(volume, angles), angles)
    assert torch.corrcoef(torch.stack([reconstruction.flatten(), volume.flatten()]))[0, 1] > 0.7
    power = torch.fft.fftshift(torch.fft.fftn(reconstruction)).abs() ** 2
    k = torch.arange(32) - 16
    radius = torch.sqrt(k[:, None, None] ** 2 + k[None, :, None] ** 2 + k[None, None, :] ** 2)
    band = (radius > 3) & (radius < 14)
    wedge = missing_wedge_mask(32, 65.0) & band  # 5 degrees of margin: gridding spreads each line by a cell
    sampled = ~missing_wedge_mask(32, 60.0) & band
    assert float(power[wedge].mean()) < 0.05 * float(power[sampled].mean())


# -------------------------------------------------------------------------------------------- imaging
def test_effects_switch_off_by_name():
    config = ImagingConfig().without("ctf", "noise")
    assert config.switches() == {e: e not in ("ctf", "noise") for e in EFFECTS}
    with pytest.raises(ConfigError, match="unknown physical effect"):
        ImagingConfig().without("gravity")


def test_measure_snr_of_known_signal_and_noise():
    generator = torch.Generator().manual_seed(1)
    clean = 2.0 * torch.randn(4, 64, 64, generator=generator)
    noisy = clean + torch.randn(4, 64, 64, generator=generator)
    assert measure_snr(clean, noisy) == pytest.approx(4.0, rel=0.05)
    assert measure_snr(clean, clean) == math.inf
