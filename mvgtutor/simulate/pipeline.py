"""The SHREC-2021-like simulator: from templates to a reconstructed, labelled tomogram.

``simulate_tomogram`` runs the whole chain once (``make_scene`` for step 1, ``image_scene`` for 2-4, so a
chapter can image one scene several ways):

1. pack a **scene** (``scene``): proteins from their templates (``templates``), vesicles,
   gold fiducials, in an ice slab; its potential is the *grand model*, its labels the class and
   occupancy masks;
2. add the amorphous **ice** texture and **project** it at every tilt (``tomography``), with the ice
   slab's own varying thickness along each tilted ray;
3. **image** each projection through the microscope (``imaging``: structural noise, damage, CTF with
   envelopes and a defocus gradient, inelastic loss, detector, shot noise);
4. **reconstruct** at the *nominal* angles (the stage's errors stay in): real-space weighted
   back-projection by default, direct Fourier inversion as an option (``ImagingConfig.reconstruction``).

Everything after the packing runs on ``device`` (a GPU when given; the packing is thousands of small steps and
stays on the CPU). The same seed gives the same tomogram on one device; across devices the random draws differ.

``simulate.dataset.simulate_dataset`` writes ``n`` such tomograms in the SHREC 2021 layout.

Axes: volumes ``(Z, Y, X)``; a particle listed at ``X Y Z`` sits at ``class_mask[Z, Y, X]``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from mvgtutor.errors import ConfigError
from mvgtutor.simulate.imaging import (ICE_POTENTIAL_V, Acquisition, ImagingConfig, TiltSeries, form_images,
                                      fourier_crop, ice_path_lengths, ice_texture, robust_std, sample_acquisition)
from mvgtutor.simulate.scene import Scene, SceneConfig, build_scene, scene_preset, single_thread
from mvgtutor.simulate.templates import Template
from mvgtutor.simulate.tomography import project_tilt_series, reconstruct

SIMULATOR_VERSION = 4  # bump when the output of a given seed changes (default datasets are rebuilt)
SINGLE_THREAD_MAX_SIZE = 192  # volumes up to this side are imaged on one thread (see image_scene)


@dataclass(frozen=True)
class SimulationConfig:
    """Everything that shapes a simulated tomogram except its size, voxel size and seed."""

    scene: SceneConfig = field(default_factory=SceneConfig)
    imaging: ImagingConfig = field(default_factory=ImagingConfig)

    def without(self, *effects: str) -> "SimulationConfig":
        """A copy with the named physical effects switched off (see ``imaging.EFFECTS``)."""
        return dataclasses.replace(self, imaging=self.imaging.without(*effects))

    @classmethod
    def preset(cls, scene: str = "dense") -> "SimulationConfig":
        """The default microscope with the scene preset ``scene`` ("dense" or "shrec", ``scene.SCENE_PRESETS``)."""
        return cls(scene=scene_preset(scene))


@dataclass
class SimulatedTomogram:
    """One simulated tomogram. Volumes are ``(Z, Y, X)`` tensors; ``particles`` are ``formats.Particle``.

    ``reconstruction`` float32 (WBP of the noisy tilt series, protein dark as in real data),
    ``class_mask`` uint8 (0-15), ``occupancy_mask`` int32 (instance ids), ``grandmodel`` float32
    (noise-free potential in volts above ice). ``metadata`` holds dose, measured SNR and switches.
    ``scene``, ``acquisition`` and ``tilt_series`` are kept when ``keep_intermediates=True`` (chapter 1).
    """

    reconstruction: torch.Tensor
    class_mask: torch.Tensor
    occupancy_mask: torch.Tensor
    grandmodel: torch.Tensor
    particles: list
    voxel_size_nm: float
    metadata: dict
    scene: Scene | None = None
    acquisition: Acquisition | None = None
    tilt_series: TiltSeries | None = None


def simulate_tomogram(size: int = 64, seed: int = 0, snr: float | None = None, voxel_size_nm: float = 1.0,
                      config: SimulationConfig | None = None, templates: dict[int, Template] | None = None,
                      keep_intermediates: bool = False, device: str | torch.device = "cpu") -> SimulatedTomogram:
    """Simulate one ``size^3`` tomogram at ``voxel_size_nm``; deterministic given ``seed`` (and device).

    ``snr`` (if given) overrides ``config.imaging.snr``: the dose is chosen to reach it. ``templates``
    replaces the real protein templates (label -> ``Template``, e.g. from ``template_from_atoms``).
    ``device`` runs the imaging there (``"cuda"``); the outputs come back on the CPU.
    Equivalent to ``image_scene(make_scene(...), ...)`` with seeds drawn from ``seed``.
    """
    config = config or SimulationConfig()
    _check_even(size)
    imaging = dataclasses.replace(config.imaging, snr=snr) if snr is not None else config.imaging
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    scene = make_scene(size, rng, voxel_size_nm, config.scene, templates, oversample=imaging.oversample)
    scene_seconds = time.perf_counter() - started
    tomogram = image_scene(scene, size, int(rng.integers(2 ** 62)), imaging, keep_intermediates, device)
    tomogram.metadata["seed"] = seed
    tomogram.metadata["timings_s"] = {"scene": round(scene_seconds, 3), **tomogram.metadata["timings_s"]}
    return tomogram


def make_scene(size: int, rng: np.random.Generator, voxel_size_nm: float = 1.0, config: SceneConfig | None = None,
               templates: dict[int, Template] | None = None, oversample: int = 1) -> Scene:
    """Pack the sample of a ``size^3`` tomogram (``oversample`` times finer when asked); see ``build_scene``."""
    if size < 32 or voxel_size_nm <= 0:
        raise ConfigError(f"size {size} and voxel size {voxel_size_nm} nm: need size >= 32 and a positive "
                          f"voxel size")
    _check_even(size)
    if oversample not in (1, 2):
        raise ConfigError(f"oversample={oversample}: choose 1 (off) or 2 (SHREC's 5 A -> 10 A)")
    if templates is not None and oversample != 1:
        raise ConfigError("custom templates are given at the tomogram's voxel size: use oversample=1 with them")
    return build_scene(size * oversample, voxel_size_nm / oversample, config or SceneConfig(), rng, templates)


def _check_even(size: int) -> None:
    if size % 2:
        raise ConfigError(f"size {size} is odd: use an even size (the tilt axis sits at voxel N // 2 and the "
                          f"Fourier steps assume it), e.g. {size + 1}")


def image_scene(scene: Scene, size: int, seed: int, imaging: ImagingConfig | None = None,
                keep_intermediates: bool = False, device: str | torch.device = "cpu") -> SimulatedTomogram:
    """Image a packed ``scene`` into a ``size^3`` tomogram: ice, tilt series, microscope, WBP.

    The same ``scene`` and ``seed`` with a different ``imaging`` config show what one effect does (chapter 1).
    ``scene`` must be ``imaging.oversample`` times finer than ``size``.
    """
    imaging = imaging or ImagingConfig()
    _check_even(size)
    factor = imaging.oversample
    fine = scene.potential.shape[0]
    if fine != size * factor:
        raise ConfigError(f"the scene is {fine}^3 but size {size} x oversample {factor} = {size * factor}: "
                          f"make the scene with make_scene(size, ..., oversample={factor})")
    # small volumes: a thread pool costs more than it saves (2-10x slower on a busy 2-core machine)
    with single_thread() if fine <= SINGLE_THREAD_MAX_SIZE else contextlib.nullcontext():
        return _image_scene(scene, size, seed, imaging, keep_intermediates, torch.device(device))


def _image_scene(scene: Scene, size: int, seed: int, imaging: ImagingConfig, keep_intermediates: bool,
                 device: torch.device) -> SimulatedTomogram:
    from mvgtutor.data.formats import Particle

    factor = imaging.oversample
    fine = scene.potential.shape[0]
    voxel_size_nm = scene.voxel_size_nm * factor
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 3)
        clock = now

    rng = np.random.default_rng(seed)
    generator = torch.Generator(device=device).manual_seed(int(rng.integers(2 ** 62)))
    acquisition = sample_acquisition(imaging, rng)
    volume = scene.potential.to(device)
    # the structural noise's scale: the sample's own spread in its 0-degree projection, without ice (robust,
    # so that gold beads do not set it), for every tilt
    sample_std = robust_std(volume.sum(dim=0)[None]).expand(len(acquisition.actual_deg))  # (T,)
    if imaging.ice:
        volume = volume + ice_texture(scene, imaging, generator)
    projections = project_tilt_series(volume, acquisition.actual_deg)  # (T, n, n) volt * voxel
    del volume
    path = ice_path_lengths(scene.surfaces.to(device), acquisition.actual_deg, fine)  # (T, fine, fine) voxels
    if imaging.ice_slab:  # the slab's own potential: only its variation across the field shows
        projections += ICE_POTENTIAL_V * (path - path.mean(dim=(-2, -1), keepdim=True))
    if imaging.ice:  # texture of the ice the box does not hold (a tomogram thinner than the slab)
        projections += _outside_texture(scene, path, acquisition.actual_deg, imaging, generator)
    lap("projection")
    series = form_images(projections, acquisition, imaging, scene.voxel_size_nm, path * scene.voxel_size_nm,
                         generator, sample_std)
    del projections
    lap("imaging")
    if factor != 1:
        series = dataclasses.replace(series, noisy=fourier_crop(series.noisy, size),
                                     clean=fourier_crop(series.clean, size))
    # on a CPU the real-space WBP runs best on one thread: its small, cache-sized steps gain nothing from a pool
    with single_thread() if device.type == "cpu" else contextlib.nullcontext():
        reconstruction = reconstruct(series.noisy, acquisition.nominal_deg, imaging.reconstruction).cpu()  # (Z, Y, X)
    if keep_intermediates:
        series = dataclasses.replace(series, noisy=series.noisy.cpu(), clean=series.clean.cpu())
    lap("reconstruction")
    class_mask, occupancy, grandmodel = _to_tomogram_grid(scene, size, factor)
    particles = [Particle(p.class_name, p.x / factor, p.y / factor, p.z / factor, p.phi, p.theta, p.psi)
                 for p in scene.placements]
    metadata = {
        "seed": seed, "size": size, "voxel_size_nm": voxel_size_nm,
        "requested_snr": imaging.snr, "measured_snr": series.measured_snr,
        "total_dose_e_per_a2": series.dose_e_per_a2,
        "defocus_um": float(acquisition.defocus_um.mean()), "ice_thickness_nm": round(scene.ice_thickness_nm, 2),
        "reconstruction": imaging.reconstruction, "device": str(device),
        "slab_z": [int(z // factor) for z in scene.slab], "oversample": factor,
        "tilt_range_deg": [imaging.tilt_min_deg, imaging.tilt_max_deg, imaging.tilt_step_deg],
        "physics": imaging.switches(), "requested_counts": dict(scene.requested),
        "placed_counts": _count(particles), "timings_s": timings,
    }
    return SimulatedTomogram(
        reconstruction=reconstruction, class_mask=class_mask, occupancy_mask=occupancy, grandmodel=grandmodel,
        particles=particles, voxel_size_nm=voxel_size_nm, metadata=metadata,
        scene=scene if keep_intermediates else None, acquisition=acquisition if keep_intermediates else None,
        tilt_series=series if keep_intermediates else None,
    )


def _outside_texture(scene: Scene, path: torch.Tensor, angles_deg: torch.Tensor, imaging: ImagingConfig,
                     generator: torch.Generator) -> torch.Tensor:
    """Projected texture ``(T, N, N)`` (volt * voxel) of the ice beyond the box's z range: white, with the
    variance of the voxels each ray crosses there (its ice path minus the box's height ``N / cos theta``)."""
    size = scene.potential.shape[0]
    cos_tilt = torch.cos(torch.deg2rad(angles_deg.to(device=path.device, dtype=torch.float64))).float()
    outside = (path - size / cos_tilt[:, None, None]).clamp(min=0.0)  # (T, N, N) voxels
    if not bool((outside > 0).any()):
        return torch.zeros_like(path)
    std = imaging.ice_texture_v * scene.voxel_size_nm ** -1.5
    return std * outside.sqrt() * torch.randn(path.shape, generator=generator, device=path.device)


def _to_tomogram_grid(scene: Scene, size: int, factor: int):
    """Labels and grand model on the tomogram's grid (every ``factor``-th voxel; the potential Fourier-cropped)."""
    if factor == 1:
        return scene.class_mask, scene.occupancy_mask, scene.potential
    pick = slice(0, None, factor)
    spectrum = torch.fft.fftshift(torch.fft.fftn(scene.potential), dim=(0, 1, 2))
    lo = scene.potential.shape[0] // 2 - size // 2
    cropped = spectrum[lo:lo + size, lo:lo + size, lo:lo + size]
    grandmodel = torch.fft.ifftn(torch.fft.ifftshift(cropped, dim=(0, 1, 2))).real / factor ** 3
    return scene.class_mask[pick, pick, pick], scene.occupancy_mask[pick, pick, pick], grandmodel.float()


def _count(particles) -> dict[str, int]:
    counts: dict[str, int] = {}
    for particle in particles:
        counts[particle.class_name] = counts.get(particle.class_name, 0) + 1
    return counts
