"""The microscope: from projected potential to a noisy tilt series, one physical effect at a time.

For each tilt ``i`` (angle ``theta_i``, exposed ``rank_i``-th in the dose-symmetric order):

1. **phase**: ``phi = sigma * integral(V dz)``, the projected potential times the interaction constant
   (0.65 mrad per volt-Angstrom at 300 kV); the ice's own mean potential only shifts the phase by a
   constant and is left out;
2. **misalignment** (``misalignment``): the real stage is off by a small tilt-angle error (applied while
   projecting), an in-plane rotation and a shift, which the reconstruction does not know about;
3. **radiation damage** (``exposure_filter``): high frequencies fade with the dose received before and
   during the tilt, ``exp(-dose / (2 Ne(k)))``, ``Ne(k) = 0.245 k^-1.665 + 2.81`` (Grant & Grigorieff 2015);
4. **CTF** (``ctf``): the weak-phase image ``I = 1 - 2 F^-1[CTF * F(phi)]`` with the tomogram's defocus,
   per-tilt jitter and astigmatism (``torch-ctf``); switched off, ``CTF = 1`` (perfect phase contrast);
5. **inelastic loss** (``attenuation``): the energy filter removes electrons that lost energy in the ice,
   ``exp(-t / (lambda cos theta))``, so high tilts get fewer electrons (and more noise);
6. **detector** (``detector``): counting-detector MTF on the signal, noise shaped by ``MTF / sqrt(DQE)``;
7. **shot noise** (``noise``): Poisson counts at the dose per tilt.

Images come out as *contrast*, ``counts / (electrons per pixel) - 1``. ``snr`` sets the dose that gives
that signal-to-noise ratio, ``var(noise-free image) / var(noisy - noise-free)`` over the whole tilt series,
measured rather than predicted.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch_ctf

from mvgtutor.simulate.tomography import dose_symmetric_order, tilt_angles
from mvgtutor.errors import ConfigError

EFFECTS = ("ice", "misalignment", "exposure_filter", "ctf", "attenuation", "detector", "noise")
ELECTRON_REST_ENERGY_KEV = 510.99895


@dataclass(frozen=True)
class ImagingConfig:
    """The microscope and the acquisition (SHREC 2021-like defaults). Each effect in ``EFFECTS`` switches off."""

    voltage_kv: float = 300.0
    spherical_aberration_mm: float = 2.7
    amplitude_contrast: float = 0.07
    defocus_um: tuple[float, float] = (2.0, 5.0)  # per tomogram, drawn uniformly (underfocus)
    defocus_jitter_um: float = 0.2  # per tilt, standard deviation
    astigmatism_um: float = 0.1  # half the difference of the two principal defoci
    tilt_min_deg: float = -60.0
    tilt_max_deg: float = 60.0
    tilt_step_deg: float = 2.0
    dose_symmetric_group: int = 2  # tilts per side before switching (Hagen scheme)
    total_dose_e_per_a2: float = 110.0  # SHREC 2021: 100-120 e/A^2 over the series
    snr: float | None = None  # if set, the dose is chosen to give this SNR (see module docstring)
    inelastic_mean_free_path_nm: float = 350.0  # 300 kV electrons in vitreous ice
    ice_texture_v: float = 0.3  # std of amorphous-ice potential in a 1 nm^3 voxel (scales as voxel^-1.5)
    shift_sigma_nm: float = 0.5  # residual per-tilt alignment error (SHREC: 0.5-1 nm)
    angle_sigma_deg: float = 0.2  # per-tilt tilt-angle error
    rotation_sigma_deg: float = 0.3  # per-tilt in-plane rotation error
    dqe_zero: float = 0.85  # detector DQE at zero frequency ...
    dqe_nyquist: float = 0.45  # ... and at Nyquist (linear in between)
    oversample: int = 1  # 2: simulate at half the voxel size and Fourier-crop (SHREC: 5 A -> 10 A), 8x memory
    ice: bool = True
    misalignment: bool = True
    exposure_filter: bool = True
    ctf: bool = True
    attenuation: bool = True
    detector: bool = True
    noise: bool = True

    def without(self, *effects: str) -> "ImagingConfig":
        """A copy with the named ``effects`` (from ``EFFECTS``) switched off."""
        unknown = [e for e in effects if e not in EFFECTS]
        if unknown:
            raise ConfigError(f"unknown physical effect(s) {', '.join(unknown)}: choose from {', '.join(EFFECTS)}")
        return dataclasses.replace(self, **{e: False for e in effects})

    def switches(self) -> dict[str, bool]:
        """Each effect of ``EFFECTS`` and whether it is on."""
        return {e: bool(getattr(self, e)) for e in EFFECTS}


@dataclass(frozen=True)
class Acquisition:
    """One tilt series' geometry and optics, all ``(T,)`` tensors (float64) except ``rank`` (long)."""

    nominal_deg: torch.Tensor  # what the reconstruction assumes
    actual_deg: torch.Tensor  # what the stage did (nominal + error)
    rotation_deg: torch.Tensor  # in-plane rotation error
    shift_nm: torch.Tensor  # (T, 2) shift error (x, y)
    rank: torch.Tensor  # acquisition order, 0 = first exposure
    defocus_um: torch.Tensor
    astigmatism_um: float
    astigmatism_angle_deg: float


def interaction_constant(voltage_kv: float) -> float:
    """The electron's interaction constant sigma in rad per (volt * Angstrom) at ``voltage_kv``."""
    wavelength_a = float(torch_ctf.calculate_relativistic_electron_wavelength(voltage_kv * 1e3)) * 1e10
    rest, energy = ELECTRON_REST_ENERGY_KEV, voltage_kv
    return 2 * math.pi / (wavelength_a * voltage_kv * 1e3) * (rest + energy) / (2 * rest + energy)


def sample_acquisition(config: ImagingConfig, rng: np.random.Generator) -> Acquisition:
    """Draw one tilt series' defocus, astigmatism and (if ``misalignment``) its geometric errors."""
    nominal = tilt_angles(config.tilt_min_deg, config.tilt_max_deg, config.tilt_step_deg)
    count = len(nominal)
    errors = config.misalignment
    draw = (lambda sigma, *shape: torch.from_numpy(rng.normal(0.0, sigma, shape)) if errors
            else torch.zeros(shape, dtype=torch.float64))
    base = rng.uniform(*config.defocus_um)
    return Acquisition(
        nominal_deg=nominal,
        actual_deg=nominal + draw(config.angle_sigma_deg, count),
        rotation_deg=draw(config.rotation_sigma_deg, count),
        shift_nm=draw(config.shift_sigma_nm, count, 2),
        rank=dose_symmetric_order(nominal, config.dose_symmetric_group),
        defocus_um=base + torch.from_numpy(rng.normal(0.0, config.defocus_jitter_um, count)),
        astigmatism_um=config.astigmatism_um,
        astigmatism_angle_deg=float(rng.uniform(0.0, 180.0)),
    )


def ice_texture(size: int, slab: tuple[int, int], config: ImagingConfig, voxel_size_nm: float,
                generator: torch.Generator) -> torch.Tensor:
    """Amorphous-ice fluctuations ``(Z, Y, X)`` in volts: white noise inside the slab, zero outside."""
    texture = torch.zeros(size, size, size)
    std = config.ice_texture_v * voxel_size_nm ** -1.5
    texture[slab[0]:slab[1]] = std * torch.randn(slab[1] - slab[0], size, size, generator=generator)
    return texture


# ---------------------------------------------------------------------------------- Fourier-space filters
def _frequencies(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ky (N, 1), kx (1, N//2+1))`` in cycles per pixel, for ``rfft2`` of an ``(N, N)`` image."""
    return torch.fft.fftfreq(size)[:, None], torch.fft.rfftfreq(size)[None, :]


def exposure_filter(size: int, pixel_a: float, dose_e_per_a2: torch.Tensor) -> torch.Tensor:
    """Radiation-damage attenuation ``(T, N, N//2+1)`` for an accumulated ``dose_e_per_a2 (T,)``."""
    ky, kx = _frequencies(size)
    k = torch.sqrt(kx ** 2 + ky ** 2) / pixel_a  # (N, K) in 1/A
    critical = 0.245 * k.clamp(min=1e-6) ** -1.665 + 2.81  # Ne(k), e/A^2 (Grant & Grigorieff 2015)
    return torch.exp(-dose_e_per_a2.float()[:, None, None] / (2 * critical[None]))


def ctf_images(size: int, pixel_a: float, acquisition: Acquisition, config: ImagingConfig) -> torch.Tensor:
    """The CTF of each tilt, ``(T, N, N//2+1)`` (rfft layout), from ``torch-ctf``."""
    return torch_ctf.calculate_ctf_2d(
        defocus=acquisition.defocus_um.float(), astigmatism=acquisition.astigmatism_um,
        astigmatism_angle=acquisition.astigmatism_angle_deg, voltage=config.voltage_kv,
        spherical_aberration=config.spherical_aberration_mm, amplitude_contrast=config.amplitude_contrast,
        phase_shift=0.0, pixel_size=pixel_a, image_shape=(size, size), rfft=True, fftshift=False,
    ).float()


def detector_response(size: int, config: ImagingConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """``(MTF, DQE)``, each ``(N, N//2+1)``: a counting detector's pixel-aperture MTF and a linear DQE."""
    ky, kx = _frequencies(size)
    k = torch.sqrt(kx ** 2 + ky ** 2)  # cycles per pixel, 0.5 at Nyquist
    mtf = torch.sinc(kx) * torch.sinc(ky)  # a square pixel's aperture
    dqe = (config.dqe_zero + (config.dqe_nyquist - config.dqe_zero) * k / 0.5).clamp(min=0.05)
    return mtf, dqe


def misalign(images: torch.Tensor, acquisition: Acquisition, pixel_nm: float) -> torch.Tensor:
    """Rotate each image ``(T, N, N)`` in plane and shift it by the acquisition's errors (bilinear)."""
    count, size, _ = images.shape
    angle = torch.deg2rad(acquisition.rotation_deg).float()
    shift = acquisition.shift_nm.float() / pixel_nm * 2.0 / size  # (T, 2) in grid_sample units
    theta = torch.zeros(count, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1], theta[:, 1, 0], theta[:, 1, 1] = angle.cos(), -angle.sin(), angle.sin(), angle.cos()
    theta[:, :, 2] = -shift
    grid = torch.nn.functional.affine_grid(theta, [count, 1, size, size], align_corners=False)
    return torch.nn.functional.grid_sample(images[:, None], grid, mode="bilinear", padding_mode="border",
                                           align_corners=False)[:, 0]


# --------------------------------------------------------------------------------------- image formation
@dataclass
class TiltSeries:
    """Images ``(T, N, N)`` as contrast, with and without noise, and how they were made."""

    noisy: torch.Tensor
    clean: torch.Tensor
    dose_e_per_a2: float  # total over the series
    measured_snr: float  # var(clean) / var(noisy - clean); inf without noise
    electrons_per_pixel: torch.Tensor  # (T,) reaching the detector after inelastic loss


def form_images(projected_potential: torch.Tensor, acquisition: Acquisition, config: ImagingConfig,
                pixel_nm: float, ice_thickness_nm: float, generator: torch.Generator) -> TiltSeries:
    """Turn projections ``(T, N, N)`` (volt * pixel) into a noisy tilt series (see the module docstring)."""
    count, size, _ = projected_potential.shape
    pixel_a = pixel_nm * 10.0
    phase = interaction_constant(config.voltage_kv) * projected_potential * pixel_a  # (T, N, N) radians
    if config.misalignment:
        phase = misalign(phase, acquisition, pixel_nm)
    phase_spectrum = torch.fft.rfft2(phase)  # (T, N, K)
    transfer = ctf_images(size, pixel_a, acquisition, config) if config.ctf else torch.ones(1, 1, 1)
    cos_tilt = torch.cos(torch.deg2rad(acquisition.actual_deg)).float()  # (T,)
    transmitted = (torch.exp(-ice_thickness_nm / (config.inelastic_mean_free_path_nm * cos_tilt))
                   if config.attenuation else torch.ones(count))  # (T,)
    mtf, dqe = detector_response(size, config) if config.detector else (torch.ones(1, 1), torch.ones(1, 1))

    def clean_images(dose_per_tilt: float) -> torch.Tensor:
        spectrum = phase_spectrum * transfer
        if config.exposure_filter:
            received = dose_per_tilt * (acquisition.rank.double() + 0.5)  # (T,) mid-exposure dose
            spectrum = spectrum * exposure_filter(size, pixel_a, received)
        intensity_spectrum = -2.0 * spectrum * mtf  # eq. I = 1 - 2 CTF * phi, seen through the MTF
        return torch.fft.irfft2(intensity_spectrum, s=(size, size))  # (T, N, N) contrast, mean ~0

    def noisy_images(clean: torch.Tensor, dose_per_tilt: float) -> torch.Tensor:
        if not config.noise:
            return clean.clone()
        electrons = dose_per_tilt * pixel_a ** 2 * transmitted  # (T,) per pixel
        seed = int(torch.randint(0, 2 ** 62, (1,), generator=generator))
        local = torch.Generator().manual_seed(seed)
        expected = (electrons[:, None, None] * (1.0 + clean)).clamp(min=0.0)  # (T, N, N)
        shot = torch.poisson(expected, generator=local) - expected
        shaped = torch.fft.irfft2(torch.fft.rfft2(shot) * mtf / dqe.sqrt(), s=(size, size))
        return clean + shaped / electrons[:, None, None]

    dose_per_tilt = config.total_dose_e_per_a2 / count
    if config.snr is not None and not config.noise:
        raise ConfigError(f"snr={config.snr} needs shot noise: switch the 'noise' effect back on or drop snr")
    state = generator.get_state()
    for _ in range(4 if config.snr is not None else 1):  # SNR grows ~linearly with dose: fixed point
        generator.set_state(state)  # the same noise draw at every step, so the last one is what we measure
        clean = clean_images(dose_per_tilt)
        noisy = noisy_images(clean, dose_per_tilt)
        snr = measure_snr(clean, noisy)
        if config.snr is not None:
            dose_per_tilt *= config.snr / snr
    if config.snr is not None:  # the dose just updated: draw at the final dose
        generator.set_state(state)
        clean = clean_images(dose_per_tilt)
        noisy = noisy_images(clean, dose_per_tilt)
        snr = measure_snr(clean, noisy)
    return TiltSeries(noisy=noisy, clean=clean, dose_e_per_a2=dose_per_tilt * count, measured_snr=snr,
                      electrons_per_pixel=dose_per_tilt * pixel_a ** 2 * transmitted)


def measure_snr(clean: torch.Tensor, noisy: torch.Tensor) -> float:
    """``var(clean) / var(noisy - clean)`` over a tilt series ``(T, N, N)`` (per-image means removed)."""
    signal = clean - clean.mean(dim=(-2, -1), keepdim=True)
    noise = noisy - clean
    noise = noise - noise.mean(dim=(-2, -1), keepdim=True)
    noise_power = float((noise.double() ** 2).mean())
    return float((signal.double() ** 2).mean()) / noise_power if noise_power > 0 else math.inf
