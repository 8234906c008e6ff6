"""The sample: proteins, vesicles and gold fiducials packed without overlap in an ice slab.

The scene is the electrostatic potential of everything that is *not* ice, in volts above the ice's own
mean potential (the "solvent-excluded" contrast: a protein displaces ice, so it adds only its excess
potential), with its labels:

* ``potential (Z, Y, X)`` float32, volts above ice (SHREC's *grand model*);
* ``class_mask (Z, Y, X)`` uint8 labels 0-15 (each particle's template support, not a sphere);
* ``occupancy_mask (Z, Y, X)`` int32 instance ids (0 = none);
* ``placements``: class, centre (x, y, z) in voxels and ZXZ Euler angles in degrees.

**Packing without a retry loop.** A coarse grid of cells records each cell's *room* (distance to the slab and
box faces) and *clearance* (distance to the obstacles placed so far: membranes and each particle's core
sphere). For each class, largest first, the cells where the particle may fit are listed once, shuffled, and
visited once each; at a visit the particle gets a random orientation and is pasted only if its real support,
grown by a one-voxel gap, touches nothing labelled yet (so elongated shapes pack as closely as their shapes
allow, not as their bounding spheres). Each class's orientations come from a bank of up to 64 random ones
rendered once per tomogram, so a rejected position costs a lookup, not a rotation. The visits end when the
class has its count, the cells run out or too many visits failed, so packing never stalls; what was asked and
what was placed are both recorded.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from scipy.spatial.transform import Rotation

from mvgtutor.data.classes import CLASSES, class_by_name
from mvgtutor.simulate.templates import Template, protein_templates
from mvgtutor.errors import ConfigError

ORIENTATIONS_PER_CLASS = 64  # random orientations rendered per protein class and tomogram
ENVELOPE_LEVEL = 0.4  # a rotated (trilinear) envelope's label level: keeps its volume within ~5 % and >= 90 % of
# the molecule's density inside it (0.5 thins small labels below that)
VESICLE_LABEL = class_by_name("vesicle").label
FIDUCIAL_LABEL = class_by_name("fiducial").label


@dataclass(frozen=True)
class SceneConfig:
    """What the sample holds. Lengths in nm, potentials in volts above amorphous ice (4.5 V).

    The defaults are the ``dense`` preset (``SCENE_PRESETS``): crowded, for small training sets. ``shrec`` has
    SHREC 2021's statistics. The ice slab's thickness is physical, whatever the tomogram's size: a tomogram
    thinner than the ice is a crop of it, and the counts scale with the share of the slab it holds.
    """

    template_source: str = "structures"  # "structures" (the real molecules) | "cartoon" (templates.class_template)
    ice_thickness_nm: tuple[float, float] = (180.0, 220.0)  # SHREC 2021: 180-220 nm, drawn per tomogram
    ice_roughness_nm: float = 3.0  # std of each slab surface's height (our choice)
    ice_roughness_scale_nm: float = 60.0  # correlation length of the surfaces' undulation (our choice)
    protein_volume_fraction: float | None = 0.1  # of the slab (SHREC 2021 ~1 %, cytoplasm 20-30 %) ...
    proteins_per_um2: tuple[float, float] | None = None  # ... or a count per um^2 of a 200 nm slab, all classes
    vesicle_count: tuple[int, int] = (2, 7)  # inclusive range, as many as fit
    vesicle_radius_nm: tuple[float, float] = (15.0, 60.0)  # outer radius, capped by the slab
    deformed_vesicle_fraction: float = 0.5  # share of vesicles that are not spheres
    membrane_thickness_nm: float = 5.0  # lipid bilayer, two head-group layers 4 nm apart
    fiducials_per_um2: tuple[float, float] = (300.0, 550.0)  # gold beads per um^2 of a 200 nm slab
    fiducial_diameter_nm: tuple[float, float] = (4.0, 10.0)
    protein_contrast_v: float = 2.5  # solid protein's potential (~7 V) above ice (4.5 V)
    headgroup_contrast_v: float = 2.5  # phosphate head groups, dense
    tail_contrast_v: float = -0.5  # hydrocarbon tails are lighter than ice
    gold_contrast_v: float = 25.0  # gold ~30 V against ice 4.5 V
    gap_voxels: float = 1.0  # minimum gap between neighbours' bounding spheres


REFERENCE_SLAB_NM = 200.0  # counts per um^2 are for a slab this thick (SHREC 2021's 180-220 nm)
SCENE_PRESETS: dict[str, SceneConfig] = {
    # dense: about 10 % of the slab is protein, every class equally often: many examples in a small volume
    "dense": SceneConfig(),
    # shrec: SHREC 2021's statistics (notes from its configuration files, our reading): 600-700 particles per
    # 512 x 512 nm tomogram, the 13 classes equally likely; 2-4 vesicles; 30-60 gold beads
    "shrec": SceneConfig(protein_volume_fraction=None, proteins_per_um2=(600 / 0.262144, 700 / 0.262144),
                         vesicle_count=(2, 4), fiducials_per_um2=(30 / 0.262144, 60 / 0.262144)),
}


def scene_preset(name: str) -> SceneConfig:
    """The ``SceneConfig`` called ``name`` (``"dense"`` or ``"shrec"``, see ``SCENE_PRESETS``)."""
    if name not in SCENE_PRESETS:
        raise ConfigError(f"unknown scene preset {name!r}: choose one of {', '.join(SCENE_PRESETS)}")
    return SCENE_PRESETS[name]


def area_count(per_um2: tuple[float, float], area_um2: float, rng: np.random.Generator) -> int:
    """How many objects land on ``area_um2``: Poisson with mean ``uniform(*per_um2) * area_um2``."""
    return int(rng.poisson(rng.uniform(*per_um2) * area_um2))


@dataclass(frozen=True)
class Placement:
    """One placed particle: label, instance id, centre (x, y, z) in voxels, ZXZ Euler angles in degrees."""

    label: int
    instance: int
    x: float
    y: float
    z: float
    phi: float = 0.0
    theta: float = 0.0
    psi: float = 0.0

    @property
    def class_name(self) -> str:
        """The SHREC class name of ``label``."""
        return CLASSES[self.label].name


@dataclass
class Scene:
    """A packed sample (see the module docstring). Volumes are ``(Z, Y, X)`` tensors."""

    potential: torch.Tensor
    class_mask: torch.Tensor
    occupancy_mask: torch.Tensor
    placements: list[Placement]
    slab: tuple[int, int]  # z range [z0, z1) of the box where particles may sit (inside both surfaces)
    voxel_size_nm: float
    ice_thickness_nm: float = 0.0  # the slab's mean physical thickness (it may exceed the box)
    surfaces: torch.Tensor | None = None  # (2, 2N, 2N) z of the bottom and top ice surface, box voxels
    requested: dict[str, int] = field(default_factory=dict)  # class name -> count asked for

    def ice_mask(self) -> torch.Tensor:
        """``(Z, Y, X)`` bool: the voxels of the box inside the ice (between its two surfaces)."""
        size = self.potential.shape[0]
        lo = size // 2
        bottom, top = self.surfaces[:, lo:lo + size, lo:lo + size]  # (Y, X) each
        z = torch.arange(size, dtype=torch.float32)[:, None, None]
        return (z >= bottom[None]) & (z < top[None])


# --------------------------------------------------------------------------------------- clearance map
class ClearanceMap:
    """A coarse grid of cells: the room each has before the slab and box faces, and its clearance (voxels)
    from the obstacles placed so far (membranes, particle cores); see the module docstring."""

    def __init__(self, size: int, slab: tuple[int, int], cell: int):
        self.size, self.cell = size, cell
        centres = torch.arange(0, size, cell, dtype=torch.float32) + (cell - 1) / 2.0  # (C,)
        self.centres = centres
        z, y, x = torch.meshgrid(centres, centres, centres, indexing="ij")  # each (C, C, C)
        faces = [z + 0.5 - slab[0], slab[1] - 0.5 - z, y + 0.5, size - 0.5 - y, x + 0.5, size - 0.5 - x]
        self.room = torch.stack(faces).amin(dim=0)  # (C, C, C)
        self.clearance = torch.full_like(self.room, float(size))  # (C, C, C): nothing placed yet
        self.slack = cell * math.sqrt(3) / 2.0  # a centre may sit anywhere in its cell

    def candidates(self, radius: float, core: float) -> torch.Tensor:
        """Flat indices ``(n,)`` of the cells where a particle of bounding ``radius`` may stay inside the
        slab and box and its ``core`` sphere may miss every obstacle (necessary, not sufficient)."""
        inside = self.room.flatten() > radius - self.slack
        return torch.nonzero(inside & (self.clearance.flatten() > core - self.slack)).flatten()

    def still_free(self, indices: torch.Tensor, core: float) -> torch.Tensor:
        """Which of the cells ``indices (n,)`` a ``core`` sphere may still occupy, ``(n,)`` bool."""
        return self.clearance.view(-1)[indices] > core - self.slack

    def inside(self, centre_xyz, radius: float, slab: tuple[int, int]) -> bool:
        """Whether a sphere of ``radius`` at ``centre_xyz`` lies inside the slab and the box."""
        x, y, z = centre_xyz
        return (min(x, y) + 0.5 >= radius and max(x, y) + 0.5 + radius <= self.size
                and z + 0.5 - slab[0] >= radius and slab[1] - 0.5 - z >= radius)

    def positions(self, indices: torch.Tensor) -> torch.Tensor:
        """The (x, y, z) voxel centres ``(n, 3)`` of cells ``indices (n,)``."""
        count = len(self.centres)
        iz, iy, ix = indices // (count * count), (indices // count) % count, indices % count
        return torch.stack([self.centres[ix], self.centres[iy], self.centres[iz]], dim=-1)

    def position(self, index: int) -> tuple[float, float, float]:
        """The (x, y, z) voxel centre of cell ``index``."""
        return tuple(float(c) for c in self.positions(torch.tensor([index]))[0])

    def _window(self, centre_xyz, reach: float):
        """Slices of the cells within ``reach`` of ``centre_xyz``, and those cells' z, y, x centres (1D)."""
        lo = [max(0, int((c - reach) // self.cell)) for c in reversed(centre_xyz)]  # z, y, x
        hi = [min(len(self.centres), int((c + reach) // self.cell) + 2) for c in reversed(centre_xyz)]
        window = tuple(slice(a, b) for a, b in zip(lo, hi))
        return window, *(self.centres[s] for s in window)

    def add_sphere(self, centre_xyz, radius: float, reach: float) -> None:
        """Lower the clearance around a sphere (cells up to ``reach`` beyond its surface are updated)."""
        window, z, y, x = self._window(centre_xyz, radius + reach)
        cx, cy, cz = centre_xyz
        squared = (z[:, None, None] - cz) ** 2 + (y[None, :, None] - cy) ** 2 + (x[None, None, :] - cx) ** 2
        self.clearance[window] = torch.minimum(self.clearance[window], squared.sqrt_() - radius)

    def add_shell(self, centre_xyz, signed_distance, half_thickness: float, reach: float) -> None:
        """Lower the clearance around a membrane: ``signed_distance(x, y, z)`` to its mid-surface (voxels)."""
        window, z, y, x = self._window(centre_xyz, reach)
        z, y, x = torch.meshgrid(z, y, x, indexing="ij")
        distance = signed_distance(x, y, z).abs() - half_thickness
        self.clearance[window] = torch.minimum(self.clearance[window], distance)


# ------------------------------------------------------------------------------------------- rendering
def _box(centre: int, half: int, size: int) -> tuple[slice, slice]:
    """The slice of the volume and of a ``2*half+1`` box centred at ``centre``, clipped to the volume."""
    lo, hi = centre - half, centre + half + 1
    return slice(max(lo, 0), min(hi, size)), slice(max(lo, 0) - lo, (2 * half + 1) - (hi - min(hi, size)))


def _paste(scene: Scene, density: torch.Tensor, support: torch.Tensor, centre_zyx, label: int, instance: int,
           contrast: float) -> None:
    """Add ``contrast * density`` (a centred cube) to the potential and label its ``support``."""
    half = density.shape[0] // 2
    size = scene.potential.shape[0]
    (vz, bz), (vy, by), (vx, bx) = (_box(c, half, size) for c in centre_zyx)
    scene.potential[vz, vy, vx] += contrast * density[bz, by, bx]
    inside = support[bz, by, bx]
    scene.class_mask[vz, vy, vx].masked_fill_(inside, label)
    scene.occupancy_mask[vz, vy, vx].masked_fill_(inside, instance)


def rotate_template(template: Template, rotation: Rotation, offset_xyz=(0.0, 0.0, 0.0),
                    volume: torch.Tensor | None = None) -> torch.Tensor:
    """The template's density (or another ``volume`` on its grid, e.g. its envelope) rotated by ``rotation``
    about its centre and shifted by a sub-voxel ``offset_xyz``: ``(s, s, s) -> (s, s, s)`` (trilinear)."""
    volume = template.density if volume is None else volume
    size = volume.shape[0]
    inverse = torch.from_numpy(rotation.as_matrix().T).float()  # output point p samples the template at R^T p
    shift = torch.tensor(offset_xyz, dtype=torch.float32) * 2.0 / (size - 1)  # voxels -> [-1, 1] units
    affine = torch.cat([inverse, -(inverse @ shift)[:, None]], dim=1)  # (3, 4) acting on (x, y, z, 1)
    grid = F.affine_grid(affine[None], [1, 1, size, size, size], align_corners=True)  # (1, s, s, s, 3)
    sampled = F.grid_sample(volume[None, None], grid, mode="bilinear", align_corners=True)
    return sampled[0, 0]  # (s, s, s)


def _vesicle_distance(centre_xyz, radius: float, axes, rotation: Rotation, ripples):
    """A function ``(x, y, z) -> signed distance`` (voxels) to a vesicle's mid-membrane surface.

    The surface is an ellipsoid (semi-axes ``radius * axes``, turned by ``rotation``) with smooth ripples
    ``sum a cos(k . n + phase)`` of its radius along the direction ``n``.
    """
    matrix = torch.from_numpy(rotation.as_matrix()).float()

    def distance(x, y, z):
        local = torch.stack([x - centre_xyz[0], y - centre_xyz[1], z - centre_xyz[2]], dim=-1) @ matrix
        rho = local.norm(dim=-1).clamp(min=1e-6)
        n = local / rho[..., None]
        surface = radius / torch.sqrt(((n / torch.tensor(axes, dtype=torch.float32)) ** 2).sum(-1))
        for amplitude, wave, phase in ripples:
            surface = surface * (1.0 + amplitude * torch.cos(n @ torch.tensor(wave, dtype=torch.float32) + phase))
        return rho - surface

    return distance


def _membrane_profile(distance: torch.Tensor, config: SceneConfig, voxel_nm: float) -> torch.Tensor:
    """Potential across a bilayer (volts above ice) at signed ``distance`` (voxels) from its mid-plane."""
    d_nm = distance * voxel_nm
    head = config.membrane_thickness_nm / 2.0 - 0.5  # head-group centres, nm from the mid-plane
    heads = torch.exp(-(d_nm - head) ** 2 / (2 * 0.6 ** 2)) + torch.exp(-(d_nm + head) ** 2 / (2 * 0.6 ** 2))
    tails = torch.exp(-d_nm ** 2 / (2 * 1.0 ** 2))
    return config.headgroup_contrast_v * heads + config.tail_contrast_v * tails


# -------------------------------------------------------------------------------------------- the scene
def build_scene(size: int, voxel_size_nm: float, config: SceneConfig, rng: np.random.Generator,
                templates: dict[int, Template] | None = None) -> Scene:
    """Pack a ``size^3`` scene: slab, vesicles, then proteins and fiducials largest first.

    ``templates`` maps protein labels to templates (default: the code-made ones at ``voxel_size_nm``).
    Deterministic given ``rng``. Returns a ``Scene`` with ``(size, size, size)`` volumes.
    """
    with single_thread():
        return _build_scene(size, voxel_size_nm, config, rng, templates)


@contextlib.contextmanager
def single_thread():
    """Run torch on one thread: packing is thousands of small operations, for which a thread pool's
    start-up costs more than it saves (10x slower with two threads on a busy 2-core machine)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _build_scene(size: int, voxel_size_nm: float, config: SceneConfig, rng: np.random.Generator,
                 templates: dict[int, Template] | None) -> Scene:
    if size < 32:
        raise ConfigError(f"tomogram size {size} is too small: use at least 32 voxels per side")
    templates = protein_templates(voxel_size_nm, config.template_source) if templates is None else templates
    thickness_nm = float(rng.uniform(*config.ice_thickness_nm))
    surfaces = ice_surfaces(size, voxel_size_nm, thickness_nm, config, rng)  # (2, 2N, 2N)
    lo = size // 2
    inner = surfaces[:, lo:lo + size, lo:lo + size]
    z0 = max(0, int(math.ceil(float(inner[0].max()))))
    z1 = min(size, int(math.floor(float(inner[1].min()))))
    if z1 - z0 < 8:
        raise ConfigError(f"the ice ({thickness_nm:.0f} nm, surfaces +-{config.ice_roughness_nm} nm) leaves "
                          f"{z1 - z0} voxels for particles: make the ice thicker or smoother")
    scene = Scene(potential=torch.zeros(size, size, size), class_mask=torch.zeros(size, size, size, dtype=torch.uint8),
                  occupancy_mask=torch.zeros(size, size, size, dtype=torch.int32), placements=[],
                  slab=(z0, z1), voxel_size_nm=voxel_size_nm, ice_thickness_nm=thickness_nm, surfaces=surfaces)
    clearance = ClearanceMap(size, scene.slab, cell=max(1, size // 64))
    largest = max(t.radius_voxels for t in templates.values()) + config.gap_voxels + clearance.slack
    _add_vesicles(scene, clearance, config, rng, reach=largest)
    _add_particles(scene, clearance, config, rng, templates)
    return scene


def ice_surfaces(size: int, voxel_size_nm: float, thickness_nm: float, config: SceneConfig,
                 rng: np.random.Generator) -> torch.Tensor:
    """The ice slab's bottom and top surfaces, ``(2, 2N, 2N)`` heights z in box voxels over the (y, x) plane
    from ``-N/2`` to ``3N/2`` (wider than the box: tilted rays leave it sideways).

    Each surface is the slab's flat face plus a smooth Gaussian random field (std ``ice_roughness_nm``,
    correlation length ``ice_roughness_scale_nm``), so the thickness varies. The slab's middle sits at a random
    height: near the box's middle when the ice is thinner than the box, anywhere inside it when thicker.
    """
    wide = 2 * size
    thickness = thickness_nm / voxel_size_nm
    spare = size - thickness
    middle = size / 2 + (rng.uniform(-spare / 4, spare / 4) if spare > 0 else rng.uniform(-size / 4, size / 4))
    sigma = config.ice_roughness_scale_nm / voxel_size_nm
    k = torch.fft.fftfreq(wide, dtype=torch.float64)
    lowpass = torch.exp(-2 * (math.pi * sigma) ** 2 * (k[:, None] ** 2 + k[None, :] ** 2))  # Gaussian of sigma
    white = torch.from_numpy(rng.standard_normal((2, wide, wide)))
    fields = torch.fft.ifft2(torch.fft.fft2(white) * lowpass).real
    fields = fields - fields.mean(dim=(-2, -1), keepdim=True)
    fields = fields / fields.std(dim=(-2, -1), keepdim=True).clamp(min=1e-12) * config.ice_roughness_nm / voxel_size_nm
    return torch.stack([middle - thickness / 2 + fields[0], middle + thickness / 2 + fields[1]]).float()


def _add_vesicles(scene: Scene, clearance: ClearanceMap, config: SceneConfig, rng: np.random.Generator,
                  reach: float) -> None:
    """Place 2-7 vesicles (as many as fit, never overlapping each other); particles may later sit inside
    them, so only each membrane, grown by the gap, becomes an obstacle."""
    size, voxel = scene.potential.shape[0], scene.voxel_size_nm
    half_membrane = config.membrane_thickness_nm / voxel / 2.0
    slab = scene.slab[1] - scene.slab[0]
    placed: list[tuple[tuple[float, float, float], float]] = []  # (centre, bounding radius)
    asked = int(rng.integers(config.vesicle_count[0], config.vesicle_count[1] + 1))
    for _ in range(asked):
        deformed = bool(rng.random() < config.deformed_vesicle_fraction)
        axes = tuple(rng.uniform(0.8, 1.2, 3)) if deformed else (1.0, 1.0, 1.0)
        ripples = [(rng.uniform(0.02, 0.06), tuple(rng.normal(0, 2.0, 3)), rng.uniform(0, 2 * math.pi))
                   for _ in range(3)] if deformed else []
        stretch = max(axes) * (1.0 + sum(a for a, _, _ in ripples))
        largest_radius = (0.45 * slab - half_membrane - 1) / stretch
        low = config.vesicle_radius_nm[0] / voxel
        if largest_radius < low:
            continue
        radius = float(rng.uniform(low, min(config.vesicle_radius_nm[1] / voxel, largest_radius)))
        bound = radius * stretch + half_membrane + 1.0
        candidates = clearance.candidates(bound + 2 * clearance.slack, core=0.0)  # centred in its cell
        if len(candidates):
            centres = clearance.positions(candidates)  # (n, 3) xyz
            for centre, other in placed:
                away = (centres - torch.tensor(centre)).norm(dim=1) > other + bound
                candidates, centres = candidates[away], centres[away]
        if not len(candidates):
            continue
        centre = tuple(float(c) for c in centres[int(rng.integers(len(candidates)))])
        rotation = Rotation.random(random_state=rng)
        distance = _vesicle_distance(centre, radius, axes, rotation, ripples)
        lo = [max(0, int(c - bound - 2)) for c in reversed(centre)]
        hi = [min(size, int(c + bound + 3)) for c in reversed(centre)]
        window = tuple(slice(a, b) for a, b in zip(lo, hi))
        z, y, x = torch.meshgrid(*(torch.arange(s.start, s.stop, dtype=torch.float32) for s in window),
                                 indexing="ij")
        d = distance(x, y, z)
        instance = len(scene.placements) + 1
        scene.potential[window] += _membrane_profile(d, config, voxel)
        membrane = d.abs() <= half_membrane
        scene.class_mask[window][membrane] = VESICLE_LABEL
        scene.occupancy_mask[window][membrane] = instance
        scene.placements.append(Placement(VESICLE_LABEL, instance, *centre))
        clearance.add_shell(centre, distance, half_membrane + config.gap_voxels, reach=bound + reach)
        placed.append((centre, bound))
    scene.requested["vesicle"] = asked


def _gold_bead(diameter_voxels: float, voxel_size_nm: float, rng: np.random.Generator) -> Template:
    """A gold bead: a slightly irregular ball with a soft edge, as a ``Template`` (support = the ball)."""
    radius = diameter_voxels / 2.0
    size = 2 * math.ceil(radius + 2) + 1
    axis = torch.arange(size, dtype=torch.float32) - size // 2
    z, y, x = torch.meshgrid(axis, axis, axis, indexing="ij")
    stretch = torch.tensor(rng.uniform(0.9, 1.1, 3), dtype=torch.float32)
    rho = torch.sqrt((x / stretch[0]) ** 2 + (y / stretch[1]) ** 2 + (z / stretch[2]) ** 2)
    density = 0.5 * (1.0 - torch.tanh((rho - radius) / 0.5))
    return Template("fiducial", density, 0.5, voxel_size_nm)


def _class_counts(scene: Scene, config: SceneConfig, templates: dict[int, Template],
                  rng: np.random.Generator) -> dict[int, int]:
    """How many of each protein and how many fiducials. Proteins: from the volume fraction (the same number
    per class), or from a count per area spread over the classes at random. Counts per area are for a
    ``REFERENCE_SLAB_NM`` slab and scale with the area and the share of that slab inside the box."""
    size, voxel = scene.potential.shape[0], scene.voxel_size_nm
    area_um2 = (size * voxel / 1000.0) ** 2 * ((scene.slab[1] - scene.slab[0]) * voxel / REFERENCE_SLAB_NM)
    if config.proteins_per_um2 is not None:
        labels = list(templates)
        drawn = rng.multinomial(area_count(config.proteins_per_um2, area_um2, rng), [1 / len(labels)] * len(labels))
        counts = {label: int(n) for label, n in zip(labels, drawn)}
    else:
        slab_voxels = (scene.slab[1] - scene.slab[0]) * scene.potential.shape[1] * scene.potential.shape[2]
        per_class_volume = sum(float(t.support.sum()) for t in templates.values())
        per_class = max(1, round(config.protein_volume_fraction * slab_voxels / per_class_volume))
        counts = {label: per_class for label in templates}
    counts[FIDUCIAL_LABEL] = area_count(config.fiducials_per_um2, area_um2, rng)
    return counts


@dataclass(frozen=True)
class _Oriented:
    """A template rendered in one orientation, with a sub-voxel offset of its centre (x, y, z)."""

    template: Template
    density: torch.Tensor  # (s, s, s)
    support: torch.Tensor  # (s, s, s) bool
    rotation: Rotation
    offset_xyz: tuple[float, float, float]


def _orient(template: Template, rotation: Rotation, rng: np.random.Generator) -> _Oriented:
    offset = tuple(float(o) for o in rng.uniform(-0.5, 0.5, 3))
    density = rotate_template(template, rotation, offset)
    support = (density >= template.threshold if template.envelope is None
               else rotate_template(template, rotation, offset, template.envelope) >= ENVELOPE_LEVEL)
    return _Oriented(template, density, support, rotation, offset)


def _add_particles(scene: Scene, clearance: ClearanceMap, config: SceneConfig, rng: np.random.Generator,
                   templates: dict[int, Template]) -> None:
    """Place proteins and gold beads, largest bounding radius first (see the module docstring).

    Each protein class draws its orientations from a bank of up to ``ORIENTATIONS_PER_CLASS`` random ones
    (rendered once), so a rejected position costs a lookup, not a rotation.
    """
    counts = _class_counts(scene, config, templates, rng)
    gold_diameters = rng.uniform(*config.fiducial_diameter_nm, counts[FIDUCIAL_LABEL]) / scene.voxel_size_nm
    beads = [_orient(_gold_bead(d, scene.voxel_size_nm, rng), Rotation.identity(), rng) for d in gold_diameters]
    groups = []  # (bounding radius, label, how many, orientations to draw from)
    for label, template in templates.items():
        if counts[label] == 0:  # a small tomogram of a sparse preset may hold none of a class
            scene.requested[CLASSES[label].name] = 0
            continue
        bank_size = min(2 * counts[label], ORIENTATIONS_PER_CLASS)
        bank = [_orient(template, Rotation.random(random_state=rng), rng) for _ in range(bank_size)]
        groups.append((template.radius_voxels, label, counts[label], bank))
    if beads:  # one group, sized for the largest bead; each bead is used once, in order
        groups.append((max(b.template.radius_voxels for b in beads), FIDUCIAL_LABEL, len(beads), beads))
    groups.sort(key=lambda g: -g[0])
    forbidden = dilate(scene.class_mask > 0, math.ceil(config.gap_voxels))  # (Z, Y, X): labels grown by the gap
    reach = max((o.template.core_radius_voxels for *_, bank in groups for o in bank), default=0.0) + clearance.slack
    for radius, label, count, bank in groups:
        core = min(o.template.core_radius_voxels for o in bank) + config.gap_voxels
        candidates = clearance.candidates(radius + config.gap_voxels, core)
        order = candidates[torch.from_numpy(rng.permutation(len(candidates)))]
        placed, failures, patience = 0, 0, 20 * count + 50  # bounded: never stalls
        for start in range(0, len(order), 256):  # check the map for a chunk at once, then one by one
            if placed == count or failures > patience:
                break
            chunk = order[start:start + 256]
            for index in chunk[clearance.still_free(chunk, core)].tolist():
                if placed == count or failures > patience:
                    break
                if not bool(clearance.still_free(torch.tensor([index]), core)):
                    continue  # a particle placed from this chunk took the room
                oriented = bank[placed] if label == FIDUCIAL_LABEL else bank[int(rng.integers(len(bank)))]
                centre = _place(scene, forbidden, oriented, label, clearance, index, config, rng)
                if centre is None:  # outside the slab, or its real shape would touch a neighbour
                    failures += 1
                    continue
                clearance.add_sphere(centre, oriented.template.core_radius_voxels, reach=reach)
                placed += 1
        name = CLASSES[label].name
        scene.requested[name] = scene.requested.get(name, 0) + count


def _place(scene: Scene, forbidden: torch.Tensor, oriented: _Oriented, label: int, clearance: ClearanceMap,
           index: int, config: SceneConfig, rng: np.random.Generator) -> tuple[float, float, float] | None:
    """Paste ``oriented`` at a random voxel of cell ``index`` and return its centre (x, y, z), or return None
    (and paste nothing) when it would leave the slab or touch anything placed (``forbidden``)."""
    jitter = rng.integers(0, clearance.cell, 3) - (clearance.cell - 1) // 2 if clearance.cell > 1 else np.zeros(3)
    voxel = tuple(int(round(c + j)) for c, j in zip(clearance.position(index), jitter))  # x, y, z
    centre = tuple(v + o for v, o in zip(voxel, oriented.offset_xyz))
    if not clearance.inside(centre, oriented.template.radius_voxels + config.gap_voxels, scene.slab):
        return None
    if _touches(forbidden, oriented.support, voxel[::-1]):
        return None
    instance = len(scene.placements) + 1
    contrast = config.gold_contrast_v if label == FIDUCIAL_LABEL else config.protein_contrast_v
    _paste(scene, oriented.density, oriented.support, voxel[::-1], label, instance, contrast)
    _mark(forbidden, dilate(oriented.support, math.ceil(config.gap_voxels)), voxel[::-1])
    with warnings.catch_warnings():  # gimbal lock (theta = 0) is harmless: phi + psi is what counts
        warnings.simplefilter("ignore", UserWarning)
        phi, theta, psi = oriented.rotation.as_euler("ZXZ", degrees=True)  # intrinsic z-x'-z'' (SHREC's rot1-3)
    scene.placements.append(Placement(label, instance, *centre, float(phi), float(theta), float(psi)))
    return centre


def dilate(mask: torch.Tensor, steps: int = 1) -> torch.Tensor:
    """Grow a boolean ``(Z, Y, X)`` mask by ``steps`` voxels (a cube's 26 neighbours per step), separably."""
    grown = mask.clone()
    for _ in range(steps):
        for axis in range(3):
            shifted = grown.clone()
            shifted.narrow(axis, 1, grown.shape[axis] - 1).logical_or_(grown.narrow(axis, 0, grown.shape[axis] - 1))
            shifted.narrow(axis, 0, grown.shape[axis] - 1).logical_or_(grown.narrow(axis, 1, grown.shape[axis] - 1))
            grown = shifted
    return grown


def _touches(volume: torch.Tensor, shape: torch.Tensor, centre_zyx) -> bool:
    """Whether a centred cube ``shape (s, s, s)`` at ``centre_zyx`` covers any True voxel of ``volume``."""
    half, size = shape.shape[0] // 2, volume.shape[0]
    (vz, bz), (vy, by), (vx, bx) = (_box(c, half, size) for c in centre_zyx)
    return bool((volume[vz, vy, vx] & shape[bz, by, bx]).any())


def _mark(volume: torch.Tensor, shape: torch.Tensor, centre_zyx) -> None:
    """Set the voxels of ``volume`` covered by the centred cube ``shape`` at ``centre_zyx`` to True."""
    half, size = shape.shape[0] // 2, volume.shape[0]
    (vz, bz), (vy, by), (vx, bx) = (_box(c, half, size) for c in centre_zyx)
    volume[vz, vy, vx] |= shape[bz, by, bx]
