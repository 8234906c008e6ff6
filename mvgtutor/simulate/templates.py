"""Particle templates: a 3D density per class, with the support that the class mask labels.

A *template* is a small cubic density ``(s, s, s)`` indexed ``[z, y, x]`` with the molecule's centre at
voxel ``s // 2``. Its *support* (``density >= threshold``) is what SHREC's ``class_mask`` marks.

Four sources:

* ``structure_template(name, voxel_size_nm)`` (the default): the real molecule. PolNet's 10 A density maps
  of the 13 SHREC 2021 structures, vendored in ``structures/`` with their provenance and PolNet's licence
  (``data_scripts/vendor_structures.py`` made them). One scale factor for all 13 (the median of map sum per
  Dalton) turns a map into a *protein volume fraction* (1 = solid protein at 1.21 A^3 per Dalton), so a
  molecule's integrated potential follows its molecular weight. The label is SHREC-like and loose: the
  smallest set of voxels holding ``LABEL_MASS_FRACTION`` of the density (our choice; SHREC thresholded the
  potential at 0.01, which gives labels about 1.25-1.5x the molecule's half-maximum diameter, as this does).
* ``class_template(name, voxel_size_nm)``: the earlier cartoons, made in code. Each class is a few Gaussian
  "domains" in a shape of its own, scaled so that the support's equivalent-sphere diameter is the class's
  (``CLASSES[i].diameter_nm``); their mass does not follow the molecule's (kept as an option, ``"cartoon"``).
* ``template_from_atoms(path, voxel_size_nm)``: an atomic model (PDB / mmCIF, read with gemmi), each atom a
  Gaussian weighted by its atomic number; the support threshold encloses the protein's volume
  (1.21 A^3 per Dalton, i.e. a partial specific volume of 0.73 cm^3/g).
* ``template_from_mrc(path, voxel_size_nm)``: a density map (e.g. from EMDB) at the tomogram's voxel size.
"""

from __future__ import annotations

import functools
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mvgtutor.data.classes import PROTEIN_CLASSES, class_by_name
from mvgtutor.errors import ConfigError, DataError

PROTEIN_NM3_PER_DALTON = 1.21e-3  # partial specific volume 0.73 cm^3/g
DOMAIN_THRESHOLD = 0.5  # support of a code-made template: summed domain density >= 0.5
ATOM_BLUR_NM = 0.3  # Gaussian width of one atom in templates made from atomic models
STRUCTURES = Path(__file__).with_name("structures")  # vendored maps (see data_scripts/vendor_structures.py)
LABEL_MASS_FRACTION = 0.95  # a structure's label holds this share of its density
TEMPLATE_SOURCES = ("structures", "cartoon")


@dataclass(frozen=True)
class Template:
    """A particle's density ``(s, s, s)`` ([z, y, x], centre at ``s // 2``) and its support threshold.

    ``density`` is scaled so that its mean over the support is 1 (the scene multiplies it by the class's
    contrast against ice, in volts).
    """

    name: str
    density: torch.Tensor  # (s, s, s) float32
    threshold: float
    voxel_size_nm: float
    envelope: torch.Tensor | None = None  # (s, s, s) float 0/1: the label when it is not density >= threshold

    @functools.cached_property
    def support(self) -> torch.Tensor:
        """The voxels the class mask labels, ``(s, s, s)`` bool: ``density >= threshold``, or the envelope."""
        return self.density >= self.threshold if self.envelope is None else self.envelope >= 0.5

    @property
    def equivalent_diameter_nm(self) -> float:
        """The diameter of the sphere with the support's volume, in nm."""
        volume_nm3 = float(self.support.sum()) * self.voxel_size_nm ** 3
        return (6.0 * volume_nm3 / math.pi) ** (1.0 / 3.0)

    @functools.cached_property
    def core_radius_voxels(self) -> float:
        """The radius of the largest centred sphere inside the support, in voxels."""
        outside = torch.nonzero(~self.support).float()  # (n, 3)
        centre = torch.tensor([self.density.shape[0] // 2] * 3, dtype=torch.float32)
        return max(float((outside - centre).norm(dim=1).min()) - 1.0, 0.0) if len(outside) else 0.0

    @functools.cached_property
    def radius_voxels(self) -> float:
        """The radius of the smallest centred sphere holding the support, in voxels."""
        idx = torch.nonzero(self.support).float()  # (n, 3)
        centre = torch.tensor([self.density.shape[0] // 2] * 3, dtype=torch.float32)
        return float((idx - centre).norm(dim=1).max()) + 0.5 if len(idx) else 0.0


# --------------------------------------------------------------------------------- shapes of the 13 classes
def _ring(n: int, radius: float, z: float = 0.0, phase: float = 0.0) -> list[tuple[float, float, float]]:
    """``n`` points (x, y, z) evenly on a circle of ``radius`` in the plane at height ``z``."""
    return [(radius * math.cos(phase + 2 * math.pi * i / n), radius * math.sin(phase + 2 * math.pi * i / n), z)
            for i in range(n)]


def _line(n: int, start, stop) -> list[tuple[float, float, float]]:
    """``n`` points evenly from ``start`` to ``stop`` (x, y, z)."""
    a, b = np.asarray(start, float), np.asarray(stop, float)
    return [tuple(a + (b - a) * t) for t in np.linspace(0.0, 1.0, n)]


# class name -> list of (centre (x, y, z), width sigma, weight), in arbitrary units (scaled later). The
# origin, where a particle's listed coordinates point, lies inside every shape (class_mask there = label).
_DOMAINS: dict[str, list[tuple[tuple[float, float, float], float, float]]] = {
    # ribosome: a large and a small subunit with a cleft between them
    "4V94": [((0.0, 0.0, -0.25), 0.55, 1.0), ((0.25, 0.1, 0.6), 0.42, 1.0), ((-0.45, -0.2, -0.2), 0.35, 1.0)],
    # 26S proteasome: a barrel of stacked rings with a cap at each end, off-axis
    "4CR2": [(p, 0.28, 1.0) for p in _line(5, (0, 0, -0.75), (0, 0, 0.75))]
    + [((0.3, 0.0, 1.05), 0.3, 1.0), ((-0.3, 0.0, -1.05), 0.3, 1.0)],
    # ClpB: a hexameric ring, two tiers, around a central plug
    "1QVR": [(p, 0.22, 1.0) for p in _ring(6, 0.6, -0.15) + _ring(6, 0.5, 0.25, math.pi / 6)]
    + [((0, 0, 0), 0.2, 1.0)],
    # Rubisco L8S8: a compact cube of eight domains
    "1BXN": [((x, y, z), 0.3, 1.0) for x in (-0.42, 0.42) for y in (-0.42, 0.42) for z in (-0.42, 0.42)]
    + [((0, 0, 0), 0.3, 1.0)],
    # p97: two stacked hexameric rings, twisted, joined at the axis
    "3CF3": [(p, 0.24, 1.0) for p in _ring(6, 0.62, -0.3) + _ring(6, 0.62, 0.3, math.pi / 6)]
    + [((0, 0, 0), 0.25, 1.0)],
    # cullin complex: a long curved arm (crescent)
    "1U6G": [((1.1 * math.cos(a) - 0.95, 0.6 * math.sin(a), 0.0), 0.24, 1.0) for a in np.linspace(-1.4, 1.4, 7)],
    # a tripod: three arms from a hub
    "3D2F": [((0, 0, 0), 0.3, 1.0)] + [(p, 0.22, 1.0) for a in range(3)
                                       for p in _line(2, _ring(3, 0.45, 0.1, 0)[a], _ring(3, 0.9, 0.3, 0)[a])],
    # Hsp90 dimer: two rods in a V
    "2CG9": [(p, 0.2, 1.0) for p in _line(5, (-0.9, 0, 1.1), (0, 0, -0.2)) + _line(4, (0.9, 0, 1.1),
                                                                                  (0.22, 0, 0.0))],
    # a trimer: three domains in a triangle
    "3H84": [(p, 0.3, 1.0) for p in _ring(3, 0.45)],
    # a tetramer: four domains on a tetrahedron
    "3GL1": [((s1 * 0.4, s2 * 0.4, s1 * s2 * 0.4), 0.28, 1.0) for s1 in (-1, 1) for s2 in (-1, 1)]
    + [((0, 0, 0), 0.2, 1.0)],
    # a dumbbell
    "3QM1": [((-0.4, 0, 0), 0.33, 1.0), ((0.45, 0, 0), 0.28, 1.0)],
    # an L of three domains
    "1S3X": [((-0.45, 0, 0), 0.28, 1.0), ((0.0, 0, 0), 0.28, 1.0), ((0.0, 0.5, 0), 0.28, 1.0)],
    # a large complex with a crown of bumps on one side
    "5MRC": [((0, 0, 0), 0.6, 1.0)] + [(p, 0.3, 1.0) for p in _ring(3, 0.55, 0.6)]
    + [((0.0, 0.0, -0.75), 0.3, 1.0)],
}


def _gaussian_sum(centres: torch.Tensor, sigmas: torch.Tensor, weights: torch.Tensor, size: int) -> torch.Tensor:
    """Sum of isotropic Gaussians on a ``(size,)*3`` grid [z, y, x] centred at ``size // 2``.

    ``centres (n, 3)`` as (x, y, z) in voxels from the centre, ``sigmas (n,)`` and ``weights (n,)``. Each
    Gaussian is separable, so the sum is one einsum over three ``(n, size)`` tables.
    """
    axis = torch.arange(size, dtype=torch.float64) - size // 2  # (size,)
    two_var = 2.0 * sigmas[:, None] ** 2  # (n, 1)
    gx = torch.exp(-(axis[None] - centres[:, 0:1]) ** 2 / two_var)  # (n, size)
    gy = torch.exp(-(axis[None] - centres[:, 1:2]) ** 2 / two_var)
    gz = torch.exp(-(axis[None] - centres[:, 2:3]) ** 2 / two_var)
    zy = (weights[:, None, None] * gz[:, :, None] * gy[:, None, :]).reshape(len(weights), -1)  # (n, z*y)
    return (zy.T @ gx).reshape(size, size, size)  # (z, y, x)


def _render_domains(domains, scale: float, size: int) -> torch.Tensor:
    """Sum of Gaussian domains scaled by ``scale`` voxels per unit, on a ``(size,)*3`` grid [z, y, x]."""
    centres = torch.tensor([c for c, _, _ in domains], dtype=torch.float64) * scale  # (n, 3)
    sigmas = torch.tensor([s for _, s, _ in domains], dtype=torch.float64) * scale  # (n,)
    weights = torch.tensor([w for _, _, w in domains], dtype=torch.float64)  # (n,)
    return _gaussian_sum(centres, sigmas, weights, size)


def _crop_to_content(density: torch.Tensor, level: float) -> torch.Tensor:
    """Crop a centred cube ``(s, s, s)`` to the smallest centred cube that holds the sphere around every
    voxel >= ``level`` (so the content stays inside the box in any orientation)."""
    size = density.shape[0]
    idx = torch.nonzero(density >= level).float()  # (n, 3)
    half = int(math.ceil(float((idx - size // 2).norm(dim=1).max()))) + 1 if len(idx) else size // 2
    lo, hi = max(size // 2 - half, 0), min(size // 2 + half + 1, size)
    return density[lo:hi, lo:hi, lo:hi]


def _domain_extent(domains) -> float:
    """How far the domains reach from the centre, in units (centre distance + 3 sigma)."""
    return max(math.dist((0, 0, 0), c) + 3.0 * s for c, s, _ in domains)


@functools.lru_cache(maxsize=64)
def class_template(name: str, voxel_size_nm: float = 1.0) -> Template:
    """The code-made template of protein class ``name`` (e.g. ``"5MRC"``) at ``voxel_size_nm``.

    The domain layout is scaled (by bisection) until the support's equivalent-sphere diameter equals the
    class's diameter from ``mvgtutor.data.classes``. Returns a ``Template`` with ``density (s, s, s)``.
    """
    cls = class_by_name(name)
    if cls.kind != "protein":
        raise ConfigError(f"class {name!r} is a {cls.kind}, not a protein: templates exist for "
                          f"{', '.join(c.name for c in PROTEIN_CLASSES)}")
    if voxel_size_nm <= 0:
        raise ConfigError(f"voxel_size_nm must be positive, got {voxel_size_nm}")
    domains = _DOMAINS[cls.name]
    target_voxels = math.pi / 6.0 * (cls.diameter_nm / voxel_size_nm) ** 3
    scale = 0.5 * cls.diameter_nm / voxel_size_nm  # voxels per unit; refined below
    for _ in range(4):  # the support's volume grows as scale^3 (up to sampling): fixed-point steps
        size = 2 * math.ceil(_domain_extent(domains) * scale) + 3
        volume = float((_render_domains(domains, scale, size) >= DOMAIN_THRESHOLD).sum())
        scale *= (target_voxels / max(volume, 1.0)) ** (1.0 / 3.0)
    size = 2 * math.ceil(_domain_extent(domains) * scale) + 3
    density = _crop_to_content(_render_domains(domains, scale, size), 0.02 * DOMAIN_THRESHOLD)
    return _normalized(cls.name, density, DOMAIN_THRESHOLD, voxel_size_nm)


def _normalized(name: str, density: torch.Tensor, threshold: float, voxel_size_nm: float) -> Template:
    """A ``Template`` whose density has mean 1 over its support (the threshold scales with it)."""
    support = density >= threshold
    if not bool(support.any()):
        raise DataError(f"template {name!r}: no voxel reaches the threshold {threshold:.4g}; "
                        f"lower the threshold or check the map")
    mean_inside = float(density[support].mean())
    return Template(name=name, density=(density / mean_inside).float(), threshold=threshold / mean_inside,
                    voxel_size_nm=voxel_size_nm)


# ----------------------------------------------------------------------------- templates from real data
def template_from_atoms(path: str | os.PathLike, voxel_size_nm: float = 1.0, name: str | None = None,
                        blur_nm: float = ATOM_BLUR_NM) -> Template:
    """A template from an atomic model (PDB or mmCIF, read with gemmi), centred on its centre of mass.

    Each atom is a Gaussian of width ``blur_nm`` weighted by its atomic number; the support threshold is
    chosen so that the support's volume equals the molecule's (1.21 A^3 per Dalton).
    """
    import gemmi

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: atomic model not found; download it (data_scripts/download_pdb.py) "
                        f"or check the path")
    try:
        structure = gemmi.read_structure(str(path))
    except (RuntimeError, ValueError) as error:
        raise DataError(f"{path}: gemmi cannot read this atomic model ({error}); give a PDB or mmCIF file")
    atoms = [(atom.pos, atom.element.atomic_number, atom.element.weight)
             for residue in (r for chain in structure[0] for r in chain) for atom in residue]
    if not atoms:
        raise DataError(f"{path}: the model holds no atoms; give a PDB or mmCIF file with coordinates")
    xyz_nm = np.array([[p.x, p.y, p.z] for p, _, _ in atoms]) / 10.0  # (n, 3), Angstrom -> nm
    weight = np.array([z for _, z, _ in atoms], dtype=float)  # (n,)
    mass_da = float(sum(m for _, _, m in atoms))
    centred = (xyz_nm - np.average(xyz_nm, axis=0, weights=weight)) / voxel_size_nm  # (n, 3) in voxels
    blur = max(blur_nm / voxel_size_nm, 0.5)
    size = 2 * math.ceil(np.abs(centred).max() + 3 * blur) + 3
    density = torch.zeros(size, size, size, dtype=torch.float64)
    for start in range(0, len(centred), 4096):  # chunks keep the (n, size) tables small
        chunk = slice(start, start + 4096)
        density += _gaussian_sum(torch.from_numpy(centred[chunk]), torch.full((len(centred[chunk]),), blur,
                                 dtype=torch.float64), torch.from_numpy(weight[chunk]), size)
    n_inside = max(1, round(mass_da * PROTEIN_NM3_PER_DALTON / voxel_size_nm ** 3))
    threshold = float(torch.sort(density.flatten(), descending=True).values[n_inside - 1])
    return _normalized(name or path.stem, density, threshold, voxel_size_nm)


def template_from_mrc(path: str | os.PathLike, voxel_size_nm: float = 1.0, threshold: float | None = None,
                      name: str | None = None) -> Template:
    """A template from a cubic density map; its header's voxel size must equal ``voxel_size_nm``.

    ``threshold`` sets the support (default: mean + 2 standard deviations of the map).
    """
    from mvgtutor.data.formats import read_mrc

    path = Path(path)
    density = torch.from_numpy(np.array(read_mrc(path, expected_voxel_size_nm=voxel_size_nm),
                                        dtype=np.float64))
    if density.ndim != 3 or len(set(density.shape)) != 1:
        raise DataError(f"{path}: a template map must be a cube, got shape {tuple(density.shape)}; "
                        f"pad or crop it to (s, s, s)")
    level = float(density.mean() + 2 * density.std()) if threshold is None else float(threshold)
    return _normalized(name or path.stem, density, level, voxel_size_nm)


def protein_templates(voxel_size_nm: float = 1.0, source: str = "structures") -> dict[int, Template]:
    """The templates of the 13 proteins, keyed by label (1-13): ``"structures"`` (the real molecules,
    ``structure_template``) or ``"cartoon"`` (the code-made shapes, ``class_template``)."""
    if source not in TEMPLATE_SOURCES:
        raise ConfigError(f"template source {source!r}: choose one of {', '.join(TEMPLATE_SOURCES)}")
    make = structure_template if source == "structures" else class_template
    return {cls.label: make(cls.name, voxel_size_nm) for cls in PROTEIN_CLASSES}


# ------------------------------------------------------------------------- the vendored SHREC structures
@functools.lru_cache(maxsize=1)
def _structures() -> tuple[dict, dict[str, np.ndarray]]:
    """The vendored manifest and arrays (``map_<NAME>``, ``atoms_<NAME>``), each ``(s, s, s)`` at 1 nm."""
    manifest = json.loads((STRUCTURES / "shrec2021.json").read_text())
    with np.load(STRUCTURES / "shrec2021_10A.npz") as data:
        arrays = {key: data[key] for key in data.files}
    return manifest, arrays


def molecular_weight_kda(name: str) -> float:
    """The molecular weight of SHREC 2021 protein ``name`` in kDa (source: ``structures/shrec2021.json``)."""
    proteins = _structures()[0]["proteins"]
    key = class_by_name(name).name
    if key not in proteins:
        raise ConfigError(f"{name!r} is not a protein: weights exist for {', '.join(proteins)}")
    return float(proteins[key]["molecular_weight_kda"])


def atomic_model_density(name: str) -> torch.Tensor | None:
    """Our density of ``name`` from its atomic model (``template_from_atoms`` at 1 nm, atoms weighted by Z),
    ``(s, s, s)``; None for the three structures whose model PolNet's snapshot lacks (4V94, 4CR2, 5MRC)."""
    array = _structures()[1].get(f"atoms_{class_by_name(name).name}")
    return None if array is None else torch.from_numpy(array.copy())


@functools.lru_cache(maxsize=1)
def _map_units_per_dalton() -> float:
    """One factor for all 13 maps: the median of (map sum) / (molecular weight in Dalton)."""
    manifest, arrays = _structures()
    ratios = [float(arrays[f"map_{n}"].sum()) / (1e3 * p["molecular_weight_kda"])
              for n, p in manifest["proteins"].items()]
    return float(np.median(ratios))


def _resample(density: torch.Tensor, source_nm: float, target_nm: float) -> torch.Tensor:
    """A centred cube ``(s, s, s)`` at ``source_nm`` voxels resampled to ``target_nm`` voxels, centre kept at
    ``s' // 2`` (trilinear; blurred first when coarsening). Values are intensive (kept, not summed)."""
    if abs(target_nm - source_nm) < 1e-9:
        return density
    if target_nm > source_nm:  # anti-alias: a Gaussian of 0.4 output voxels
        sigma = 0.4 * target_nm / source_nm
        radius = int(math.ceil(3 * sigma))
        kernel = torch.exp(-torch.arange(-radius, radius + 1, dtype=density.dtype) ** 2 / (2 * sigma ** 2))
        kernel = kernel / kernel.sum()
        for axis in range(3):
            shape = [1, 1, 1]
            shape[axis] = -1
            density = torch.nn.functional.conv3d(density[None, None], kernel.view(1, 1, *shape),
                                                 padding=[radius if a == axis else 0 for a in range(3)])[0, 0]
    size = density.shape[0]
    half = int(math.ceil((size // 2) * source_nm / target_nm))
    out = torch.arange(-half, half + 1, dtype=torch.float64) * target_nm / source_nm  # source voxels from centre
    coords = (out + size // 2) * 2.0 / (size - 1) - 1.0  # align_corners=True units
    z, y, x = torch.meshgrid(coords, coords, coords, indexing="ij")
    grid = torch.stack([x, y, z], dim=-1)[None].to(density.dtype)  # (1, s', s', s', 3) as (x, y, z)
    return torch.nn.functional.grid_sample(density[None, None], grid, mode="bilinear", align_corners=True,
                                           padding_mode="zeros")[0, 0]


def mass_threshold(density: torch.Tensor, fraction: float) -> float:
    """The level whose superlevel set ``density >= level`` holds ``fraction`` of the density's sum."""
    values = torch.sort(density.flatten().double(), descending=True).values
    cumulative = torch.cumsum(values, 0) / values.sum()
    return float(values[int(torch.searchsorted(cumulative, torch.tensor([fraction], dtype=torch.float64)))])


@functools.lru_cache(maxsize=64)
def structure_template(name: str, voxel_size_nm: float = 1.0,
                       label_mass_fraction: float = LABEL_MASS_FRACTION) -> Template:
    """The real molecule ``name`` (e.g. ``"3QM1"``) at ``voxel_size_nm``: a ``Template`` whose ``density (s, s, s)``
    is the protein volume fraction, so ``density.sum() * voxel^3`` is about the molecule's volume (1.21 A^3 per
    Dalton), and whose label holds ``label_mass_fraction`` of it."""
    cls = class_by_name(name)
    if cls.kind != "protein":
        raise ConfigError(f"class {name!r} is a {cls.kind}, not a protein: templates exist for "
                          f"{', '.join(c.name for c in PROTEIN_CLASSES)}")
    if voxel_size_nm <= 0 or not 0.5 <= label_mass_fraction < 1.0:
        raise ConfigError(f"voxel_size_nm={voxel_size_nm}, label_mass_fraction={label_mass_fraction}: need a "
                          f"positive voxel size and a fraction in [0.5, 1)")
    manifest, arrays = _structures()
    source_nm = float(manifest["voxel_size_nm"])
    units = torch.from_numpy(arrays[f"map_{cls.name}"].astype(np.float64))
    fraction = units / _map_units_per_dalton() * PROTEIN_NM3_PER_DALTON / source_nm ** 3  # (s, s, s)
    density = _resample(fraction, source_nm, voxel_size_nm).clamp(min=0.0)
    density = density * (float(fraction.sum()) * source_nm ** 3 / (float(density.sum()) * voxel_size_nm ** 3))
    threshold = mass_threshold(density, label_mass_fraction)
    return Template(name=cls.name, density=density.float(), threshold=threshold, voxel_size_nm=voxel_size_nm,
                    envelope=filled_envelope(density >= threshold).float())


def filled_envelope(support: torch.Tensor) -> torch.Tensor:
    """A label ``(s, s, s)`` bool with its cavities filled: those enclosed in 3D and, for a hollow molecule whose
    centre is empty (4V94, the TRiC chaperonin, a barrel open at its ends), the centred ball that reaches its
    walls. Our choice: the label is the molecule's envelope, so the listed centre is always labelled and no
    other particle is packed into the cavity."""
    from scipy import ndimage

    filled = torch.from_numpy(ndimage.binary_fill_holes(support.numpy()))
    centre = support.shape[0] // 2
    if not bool(filled[centre, centre, centre]):
        axis = torch.arange(support.shape[0], dtype=torch.float32) - centre
        z, y, x = torch.meshgrid(axis, axis, axis, indexing="ij")
        radius = (z ** 2 + y ** 2 + x ** 2).sqrt()
        filled |= radius <= float(radius[filled].min())
    return filled
