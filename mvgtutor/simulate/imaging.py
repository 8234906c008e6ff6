"""The microscope: from projected potential to a noisy tilt series, one physical effect at a time.

For each tilt ``i`` (angle ``theta_i``, exposed ``rank_i``-th in the dose-symmetric order):

1. **phase**: ``phi = sigma * integral(V dz)``, the projected potential times the interaction constant
   (0.65 mrad per volt-Angstrom at 300 kV). The sample is imaged in ice; three effects make the ice visible:
   ``ice`` (the amorphous texture inside the slab, correlated over ``ice_correlation_nm``), ``ice_slab`` (the
   slab's own 4.53 V over a thickness that varies across the field, with its two surfaces, projected along
   each tilted ray: only its variation shows, a constant phase is invisible) and ``structural_noise``
   (MicrographModeller's extra Gaussian noise in each projection, at an SNR of 0.6-1.4 against it, before the
   CTF, so that it looks like structure, not like shot noise);
2. **misalignment** (``misalignment``): the real stage is off by a small tilt-angle error (applied while
   projecting), an in-plane rotation and a shift, which the reconstruction does not know about;
3. **radiation damage** (``exposure_filter``): high frequencies fade with the dose received before and
   during the tilt, ``exp(-dose / (2 Ne(k)))``, ``Ne(k) = 0.245 k^-1.665 + 2.81`` (Grant & Grigorieff 2015);
4. **CTF** (``ctf``): the weak-phase image ``I = 1 - 2 F^-1[CTF * F(phi)]`` with the tomogram's defocus,
   per-tilt jitter and astigmatism (``torch-ctf``); switched off, ``CTF = 1`` (perfect phase contrast).
   ``envelopes`` multiplies it by the spatial- and temporal-coherence envelopes (illumination aperture,
   chromatic aberration times energy spread); ``defocus_gradient`` lets the defocus change across a tilted
   image (``x tan(theta)``: +-0.44 um at 60 degrees over 512 nm), applied in strips blended linearly;
5. **inelastic loss** (``attenuation``): the energy filter removes electrons that lost energy in the ice,
   ``exp(-t / lambda)`` along each ray (``t`` grows as ``1 / cos theta`` and with the local thickness);
6. **detector** (``detector``): counting-detector MTF on the signal, noise shaped by ``MTF / sqrt(DQE)``;
7. **shot noise** (``noise``): Poisson counts at the dose per tilt.

Images come out as *contrast*, ``counts / (electrons per pixel) - 1``. ``snr`` sets the dose that gives that
signal-to-noise ratio, ``var(noise-free image) / var(noisy - noise-free)`` over the whole tilt series,
measured rather than predicted, **in a fixed band**: both images are first Fourier-cropped to the reference
pixel ``snr_reference_nm`` (1 nm), so the same sample at the same dose has the same SNR whatever the pixel
size (white shot noise per pixel grows as the pixel shrinks; the band-limited SNR does not). Pixels coarser
than the reference are measured as they are.
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

EFFECTS = ("ice", "ice_slab", "structural_noise", "misalignment", "exposure_filter", "ctf", "envelopes",
           "defocus_gradient", "attenuation", "detector", "noise")
ICE_POTENTIAL_V = 4.5301  # mean inner potential of vitreous ice (MicrographModeller's value)
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
    ice_texture_v: float = 0.3  # std of amorphous-ice potential in a 1 nm^3 voxel before the correlation blur
    ice_correlation_nm: float = 0.5  # Gaussian correlation length of that texture (our choice)
    structural_snr: tuple[float, float] = (0.6, 1.4)  # per projection, drawn uniformly (MicrographModeller)
    illumination_semiangle_mrad: float = 0.02  # spatial coherence (a field-emission gun)
    chromatic_aberration_mm: float = 2.7
    energy_spread_ev: float = 0.7  # field-emission gun
    defocus_strip_nm: float = 100.0  # strip spacing of the defocus gradient (blended linearly between strips)
    snr_reference_nm: float = 1.0  # the SNR is measured at this pixel size (see the module docstring)
    reconstruction: str = "wbp"  # "wbp" (real-space, ramp-filtered) | "fourier" (direct Fourier inversion)
    shift_sigma_nm: float = 0.5  # residual per-tilt alignment error (SHREC: 0.5-1 nm)
    angle_sigma_deg: float = 0.2  # per-tilt tilt-angle error
    rotation_sigma_deg: float = 0.3  # per-tilt in-plane rotation error
    dqe_zero: float = 0.85  # detector DQE at zero frequency ...
    dqe_nyquist: float = 0.45  # ... and at Nyquist (linear in between)
    oversample: int = 1  # 2: simulate at half the voxel size and Fourier-crop (SHREC: 5 A -> 10 A), 8x memory
    ice: bool = True
    ice_slab: bool = True
    structural_noise: bool = True
    misalignment: bool = True
    exposure_filter: bool = True
    ctf: bool = True
    envelopes: bool = True
    defocus_gradient: bool = True
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


def ice_texture(scene, config: ImagingConfig, generator: torch.Generator) -> torch.Tensor:
    """Amorphous-ice fluctuations ``(Z, Y, X)`` in volts inside the scene's ice (zero outside): white noise of
    ``ice_texture_v * voxel^-1.5`` per voxel (the same power per unit volume at any voxel size) blurred by a
    unit-sum Gaussian of ``ice_correlation_nm``. Made on the ``generator``'s device."""
    size, voxel = scene.potential.shape[0], scene.voxel_size_nm
    device = generator.device
    texture = torch.randn(size, size, size, generator=generator, device=device)
    sigma = config.ice_correlation_nm / voxel
    if sigma > 0.05:
        radius = max(1, int(math.ceil(3 * sigma)))
        taps = torch.arange(-radius, radius + 1, dtype=torch.float32, device=device)
        kernel = torch.exp(-taps ** 2 / (2 * sigma ** 2))
        kernel = kernel / kernel.sum()  # keeps the power at low frequencies, whatever the voxel size
        for axis in range(3):
            shape = [1, 1, 1]
            shape[axis] = -1
            texture = torch.nn.functional.conv3d(texture[None, None], kernel.view(1, 1, *shape),
                                                 padding=[radius if a == axis else 0 for a in range(3)])[0, 0]
    return texture.mul_(config.ice_texture_v * voxel ** -1.5).mul_(scene.ice_mask().to(device))


def ice_path_lengths(surfaces: torch.Tensor, angles_deg: torch.Tensor, size: int) -> torch.Tensor:
    """How far each ray crosses the ice: ``(T, N, N)`` in voxels, for the tilts ``angles_deg (T,)``.

    ``surfaces (2, 2N, 2N)`` are the slab's bottom and top heights (``scene.Scene.surfaces``). A ray at tilt
    ``theta`` through detector pixel ``(y, x')`` meets the slab's middle plane ``z_m`` at
    ``x = (x' - z_m sin theta) / cos theta`` (the projector's convention); its path is the local thickness there
    over ``cos theta`` (the surfaces are smooth on the scale of one crossing: our approximation).
    """
    device = surfaces.device
    wide = surfaces.shape[-1]
    thickness = (surfaces[1] - surfaces[0]).clamp(min=0.0)  # (2N, 2N) over (y, x)
    middle = float((surfaces[0] + surfaces[1]).mean()) / 2 - size // 2  # slab middle, from the box centre
    theta = torch.deg2rad(angles_deg.to(device=device, dtype=torch.float64)).float()  # (T,)
    axis = torch.arange(size, dtype=torch.float32, device=device) - size // 2  # (N,)
    x = (axis[None] - middle * theta.sin()[:, None]) / theta.cos()[:, None]  # (T, N) from the box centre
    # the wide grid's index i holds x = i - N: align_corners=True units over (2N - 1)
    gx = (x + size) * 2.0 / (wide - 1) - 1.0
    gy = (axis + size) * 2.0 / (wide - 1) - 1.0
    grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[None, :, None]), dim=-1)  # (T, N, N, 2)
    sampled = torch.nn.functional.grid_sample(thickness.expand(len(theta), 1, wide, wide), grid, mode="bilinear",
                                              padding_mode="border", align_corners=True)[:, 0]  # (T, N, N)
    return sampled / theta.cos()[:, None, None]


# ---------------------------------------------------------------------------------- Fourier-space filters
def _frequencies(size: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ky (N, 1), kx (1, N//2+1))`` in cycles per pixel, for ``rfft2`` of an ``(N, N)`` image."""
    return torch.fft.fftfreq(size, device=device)[:, None], torch.fft.rfftfreq(size, device=device)[None, :]


def exposure_filter(size: int, pixel_a: float, dose_e_per_a2: torch.Tensor) -> torch.Tensor:
    """Radiation-damage attenuation ``(T, N, N//2+1)`` for an accumulated ``dose_e_per_a2 (T,)``."""
    ky, kx = _frequencies(size, dose_e_per_a2.device)
    k = torch.sqrt(kx ** 2 + ky ** 2) / pixel_a  # (N, K) in 1/A
    critical = 0.245 * k.clamp(min=1e-6) ** -1.665 + 2.81  # Ne(k), e/A^2 (Grant & Grigorieff 2015)
    return torch.exp(-dose_e_per_a2.float()[:, None, None] / (2 * critical[None]))


def ctf_images(size: int, pixel_a: float, acquisition: Acquisition, config: ImagingConfig,
               defocus_um: torch.Tensor | None = None) -> torch.Tensor:
    """The CTF of each tilt, ``(T, N, N//2+1)`` (rfft layout), from ``torch-ctf``; with the coherence
    envelopes when ``config.envelopes``. ``defocus_um (T,)`` replaces the acquisition's (a strip's defocus)."""
    defocus = (acquisition.defocus_um if defocus_um is None else defocus_um).float()
    ctf = torch_ctf.calculate_ctf_2d(
        defocus=defocus.cpu(), astigmatism=acquisition.astigmatism_um,
        astigmatism_angle=acquisition.astigmatism_angle_deg, voltage=config.voltage_kv,
        spherical_aberration=config.spherical_aberration_mm, amplitude_contrast=config.amplitude_contrast,
        phase_shift=0.0, pixel_size=pixel_a, image_shape=(size, size), rfft=True, fftshift=False,
    ).float()
    if config.envelopes:
        ctf = ctf * coherence_envelopes(size, pixel_a, defocus.cpu(), config)
    return ctf.to(defocus.device)


def coherence_envelopes(size: int, pixel_a: float, defocus_um: torch.Tensor, config: ImagingConfig) -> torch.Tensor:
    """Spatial times temporal coherence envelope ``(T, N, N//2+1)`` for defoci ``defocus_um (T,)``.

    Spatial: ``exp(-(pi alpha)^2 (df k - Cs lambda^2 k^3)^2)`` for an illumination semi-angle ``alpha``;
    temporal: ``exp(-(pi lambda k^2 Delta)^2 / 2)`` with the focal spread ``Delta = Cc dE / E``. At 1 nm pixels
    both stay above 0.9; they matter at finer sampling (``oversample``).
    """
    ky, kx = _frequencies(size, defocus_um.device)
    k = torch.sqrt(kx ** 2 + ky ** 2).double() / pixel_a  # (N, K) 1/A
    wavelength = float(torch_ctf.calculate_relativistic_electron_wavelength(config.voltage_kv * 1e3)) * 1e10  # A
    alpha = config.illumination_semiangle_mrad * 1e-3
    cs = config.spherical_aberration_mm * 1e7  # A
    defocus = defocus_um.double()[:, None, None] * 1e4  # (T, 1, 1) A
    spatial = torch.exp(-(math.pi * alpha) ** 2 * (defocus * k - cs * wavelength ** 2 * k ** 3) ** 2)
    spread = config.chromatic_aberration_mm * 1e7 * config.energy_spread_ev / (config.voltage_kv * 1e3)  # A
    temporal = torch.exp(-0.5 * (math.pi * wavelength * k ** 2 * spread) ** 2)
    return (spatial * temporal).float()


def detector_response(size: int, config: ImagingConfig, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(MTF, DQE)``, each ``(N, N//2+1)``: a counting detector's pixel-aperture MTF and a linear DQE."""
    ky, kx = _frequencies(size, device)
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
    grid = torch.nn.functional.affine_grid(theta, [count, 1, size, size], align_corners=False).to(images.device)
    return torch.nn.functional.grid_sample(images[:, None], grid, mode="bilinear", padding_mode="border",
                                           align_corners=False)[:, 0]


def defocus_strips(size: int, pixel_nm: float, acquisition: Acquisition, config: ImagingConfig):
    """The defocus gradient across tilted images, as strips along x: ``[(defocus_um (T,), weight (N,))]``.

    A point at ``x`` (nm from the tilt axis, on the image) of a flat specimen tilted by ``theta`` sits
    ``x tan(theta)`` further from the lens (our sign: positive ``x`` is more underfocused at positive tilts).
    Each strip's CTF is blended linearly into its neighbours' (weights are hat functions that sum to one).
    """
    count = max(2, int(math.ceil(size * pixel_nm / config.defocus_strip_nm)) + 1)
    centres = torch.linspace(-(size // 2), size - 1 - size // 2, count, dtype=torch.float64)  # (S,) pixels
    x = torch.arange(size, dtype=torch.float64) - size // 2  # (N,)
    spacing = float(centres[1] - centres[0])
    tangent = torch.tan(torch.deg2rad(acquisition.actual_deg))  # (T,)
    strips = []
    for centre in centres:
        weight = (1.0 - (x - centre).abs() / spacing).clamp(min=0.0).float()  # (N,)
        strips.append((acquisition.defocus_um + float(centre) * pixel_nm * 1e-3 * tangent, weight))
    return strips


def fourier_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    """Bin images ``(..., M, M)`` to ``(..., size, size)`` by keeping the central frequencies (mean kept)."""
    big = images.shape[-1]
    spectrum = torch.fft.fftshift(torch.fft.fft2(images), dim=(-2, -1))
    lo = big // 2 - size // 2
    cropped = spectrum[..., lo:lo + size, lo:lo + size]
    return torch.fft.ifft2(torch.fft.ifftshift(cropped, dim=(-2, -1))).real * (size / big) ** 2


# --------------------------------------------------------------------------------------- image formation
@dataclass
class TiltSeries:
    """Images ``(T, N, N)`` as contrast, with and without noise, and how they were made."""

    noisy: torch.Tensor
    clean: torch.Tensor
    dose_e_per_a2: float  # total over the series
    measured_snr: float  # band-limited var(clean) / var(noisy - clean); inf without noise
    electrons_per_pixel: torch.Tensor  # (T,) mean per image reaching the detector after inelastic loss


def robust_std(images: torch.Tensor, fraction: float = 0.005) -> torch.Tensor:
    """The standard deviation of each image ``(T, N, N) -> (T,)`` with its values clamped to their
    ``fraction`` and ``1 - fraction`` quantiles, so that a few gold beads do not set it (a median absolute
    deviation would not do: it is zero when most pixels see no particle)."""
    flat = images.flatten(1).float()
    bounds = torch.quantile(flat, torch.tensor([fraction, 1.0 - fraction], device=flat.device), dim=1)  # (2, T)
    return torch.maximum(torch.minimum(flat, bounds[1][:, None]), bounds[0][:, None]).std(dim=1)


def structural_noise(signal_std: torch.Tensor, size: int, config: ImagingConfig,
                     generator: torch.Generator) -> torch.Tensor:
    """MicrographModeller's structural noise: Gaussian noise ``(T, N, N)`` with, per projection, the variance
    ``signal_std (T,)**2`` over an SNR drawn from ``config.structural_snr`` (added before the CTF)."""
    count, device = len(signal_std), signal_std.device
    snr = config.structural_snr[0] + (config.structural_snr[1] - config.structural_snr[0]) * torch.rand(
        count, generator=generator, device=device)
    std = signal_std / snr.sqrt()  # (T,)
    return std[:, None, None] * torch.randn(count, size, size, generator=generator, device=device)


def form_images(projected_potential: torch.Tensor, acquisition: Acquisition, config: ImagingConfig,
                pixel_nm: float, ice_path_nm: torch.Tensor | float, generator: torch.Generator,
                sample_std: torch.Tensor | None = None) -> TiltSeries:
    """Turn projections ``(T, N, N)`` (volt * pixel) into a noisy tilt series (see the module docstring).

    ``ice_path_nm`` is the ice each ray crosses: ``(T, N, N)`` (``ice_path_lengths`` times the pixel size), or
    the slab's thickness (a float, stretched here as ``1 / cos theta``). ``sample_std (T,)`` is the (robust)
    standard deviation of the sample's own projection (without ice), which the structural noise is scaled to
    (default: that of ``projected_potential``).
    """
    count, size, _ = projected_potential.shape
    device = projected_potential.device
    pixel_a = pixel_nm * 10.0
    sigma = interaction_constant(config.voltage_kv) * pixel_a
    phase = sigma * projected_potential  # (T, N, N) radians
    if config.structural_noise:  # white per pixel: finer pixels get more of it, so that the same share of it
        # falls in the reference band (where the SNR is measured) whatever the pixel size
        std = robust_std(projected_potential) if sample_std is None else sample_std.to(device)
        finer = max(1.0, config.snr_reference_nm / pixel_nm)
        phase = phase + structural_noise(sigma * std * finer, size, config, generator)
    if config.misalignment:
        phase = misalign(phase, acquisition, pixel_nm)
    phase_spectrum = torch.fft.rfft2(phase)  # (T, N, K)
    del phase
    cos_tilt = torch.cos(torch.deg2rad(acquisition.actual_deg)).float().to(device)  # (T,)
    if not torch.is_tensor(ice_path_nm):
        ice_path_nm = torch.full((count, 1, 1), float(ice_path_nm), device=device) / cos_tilt[:, None, None]
    transmitted = (torch.exp(-ice_path_nm / config.inelastic_mean_free_path_nm) if config.attenuation
                   else torch.ones(count, 1, 1, device=device))  # (T, N, N) or (T, 1, 1)
    mtf, dqe = (detector_response(size, config, device) if config.detector
                else (torch.ones(1, 1, device=device), torch.ones(1, 1, device=device)))
    if not config.ctf:
        strips = [(None, None)]
    elif config.defocus_gradient:
        strips = defocus_strips(size, pixel_nm, acquisition, config)
    else:
        strips = [(acquisition.defocus_um, None)]

    def clean_images(dose_per_tilt: float) -> torch.Tensor:
        spectrum = phase_spectrum * mtf
        if config.exposure_filter:
            received = dose_per_tilt * (acquisition.rank.double().to(device) + 0.5)  # (T,) mid-exposure dose
            spectrum = spectrum * exposure_filter(size, pixel_a, received)
        images = torch.zeros(count, size, size, device=device)
        for defocus, weight in strips:  # eq. I = 1 - 2 CTF * phi, seen through the MTF
            transfer = 1.0 if defocus is None else ctf_images(size, pixel_a, acquisition, config, defocus.to(device))
            image = torch.fft.irfft2(-2.0 * spectrum * transfer, s=(size, size))  # (T, N, N) contrast, mean ~0
            images += image if weight is None else image * weight.to(device)
        return images

    def noisy_images(clean: torch.Tensor, dose_per_tilt: float) -> torch.Tensor:
        if not config.noise:
            return clean.clone()
        electrons = dose_per_tilt * pixel_a ** 2 * transmitted  # (T, N, N) or (T, 1, 1) per pixel
        seed = int(torch.randint(0, 2 ** 62, (1,), generator=generator, device=generator.device))
        local = torch.Generator(device=device).manual_seed(seed)
        expected = (electrons * (1.0 + clean)).clamp(min=0.0)  # (T, N, N)
        shot = torch.poisson(expected, generator=local) - expected
        shaped = torch.fft.irfft2(torch.fft.rfft2(shot) * mtf / dqe.sqrt(), s=(size, size))
        return clean + shaped / electrons

    dose_per_tilt = config.total_dose_e_per_a2 / count
    if config.snr is not None and not config.noise:
        raise ConfigError(f"snr={config.snr} needs shot noise: switch the 'noise' effect back on or drop snr")
    measure = lambda clean, noisy: measure_snr(clean, noisy, pixel_nm, config.snr_reference_nm)
    clean = clean_images(dose_per_tilt)
    state = generator.get_state()
    for step in range(8 if config.snr is not None else 1):  # SNR grows ~linearly with dose: fixed point
        generator.set_state(state)  # the same noise draw at every step, so the last one is what we measure
        if step:
            clean = clean_images(dose_per_tilt)
        noisy = noisy_images(clean, dose_per_tilt)
        snr = measure(clean, noisy)
        if config.snr is None or abs(snr / config.snr - 1.0) < 0.005:
            break
        dose_per_tilt *= config.snr / snr
    else:  # the dose just updated: draw at the final dose
        generator.set_state(state)
        clean = clean_images(dose_per_tilt)
        noisy = noisy_images(clean, dose_per_tilt)
        snr = measure(clean, noisy)
    electrons = (dose_per_tilt * pixel_a ** 2 * transmitted).mean(dim=(-2, -1)).cpu()
    return TiltSeries(noisy=noisy, clean=clean, dose_e_per_a2=dose_per_tilt * count, measured_snr=snr,
                      electrons_per_pixel=electrons)


def measure_snr(clean: torch.Tensor, noisy: torch.Tensor, pixel_nm: float | None = None,
                reference_nm: float = 1.0) -> float:
    """``var(clean) / var(noisy - clean)`` over a tilt series ``(T, N, N)`` (per-image means removed).

    With ``pixel_nm`` finer than ``reference_nm``, both are first Fourier-cropped to the reference pixel, so
    the SNR is that of a fixed band of frequencies, whatever the pixel size.
    """
    noise = noisy - clean
    if pixel_nm is not None and pixel_nm < reference_nm:
        band = max(2, int(round(clean.shape[-1] * pixel_nm / reference_nm)))
        clean, noise = fourier_crop(clean, band), fourier_crop(noise, band)
    signal = clean - clean.mean(dim=(-2, -1), keepdim=True)
    noise = noise - noise.mean(dim=(-2, -1), keepdim=True)
    noise_power = float((noise.double() ** 2).mean())
    return float((signal.double() ** 2).mean()) / noise_power if noise_power > 0 else math.inf
