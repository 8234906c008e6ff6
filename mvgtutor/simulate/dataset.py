"""Write a simulated dataset: ``n`` tomograms in the SHREC 2021 layout (``model_0`` ...) plus ``dataset.json``.

The dataset is built in a private folder beside ``out`` and renamed into place at the end, so an interrupted or
failed simulation leaves nothing half-made, and a folder is never a mix of two datasets. ``dataset.json``
records every file's size and SHA-256 (``mvgtutor.data.integrity``), which readers check.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from mvgtutor.data.integrity import FILES_KEY, MANIFEST, file_records, read_manifest, verify_dataset
from mvgtutor.errors import ConfigError, DataError
from mvgtutor.paths import atomic_write, folder_mode
from mvgtutor.simulate.pipeline import SIMULATOR_VERSION, SimulationConfig, simulate_tomogram

MIN_SIZE = 32  # the smallest tomogram the scene packer accepts
# Peak resident memory of simulate_tomogram (ru_maxrss, simulator version 3, oversample 1, one thread): 286 MiB at
# 32^3, 307 MiB at 64^3, 364 MiB at 96^3, 411 MiB at 128^3, of which ~250 MiB is the imports: about 80 bytes per
# voxel at 128^3. The estimate below is deliberately generous (a refusal must never be wrong by much).
PEAK_BYTES_PER_VOXEL = 100
BASE_BYTES = 400 * 2**20
# Bytes on disk per voxel of a tomogram: reconstruction (float32) + class mask (int8) + occupancy (int16 for up to
# 32767 instances) + grand model (float32); the 1 KiB headers and the particle list are noise beside them.
DISK_BYTES_PER_VOXEL = 4 + 1 + 2 + 4


def tomogram_seed(seed: int, index: int) -> int:
    """The seed of tomogram ``index`` of a dataset made with ``seed`` (independent streams)."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1, dtype=np.uint64)[0] % (2 ** 62))


def estimated_peak_bytes(size: int, oversample: int = 1) -> int:
    """Rough peak memory (bytes) of simulating one ``size^3`` tomogram (``oversample`` times finer grid)."""
    return BASE_BYTES + PEAK_BYTES_PER_VOXEL * (size * oversample) ** 3


def available_memory_bytes() -> int | None:
    """Memory this process may still use (Linux ``MemAvailable``; else total physical memory; None unknown)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    with contextlib.suppress(ValueError, OSError, AttributeError):
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return None


def check_settings(n_tomograms: int, size: int, seed: int, snr: float | None, voxel_size_nm: float,
                   oversample: int = 1) -> None:
    """Raise ``ConfigError`` (one line, naming the value) for settings the simulator cannot honour: fewer than one
    tomogram, an odd or too small size, a negative seed, an SNR or voxel size that is not a finite positive
    number, or a size whose estimated memory exceeds what the machine has free."""
    if n_tomograms < 1:
        raise ConfigError(f"n_tomograms={n_tomograms}: ask for at least one tomogram")
    if size < MIN_SIZE or size % 2:
        suggestion = max(MIN_SIZE, size + size % 2)
        raise ConfigError(f"size {size}: the simulator needs an even size >= {MIN_SIZE} (e.g. {suggestion})")
    if seed < 0:
        raise ConfigError(f"seed {seed}: use a whole number >= 0")
    if snr is not None and not (math.isfinite(snr) and snr > 0):
        raise ConfigError(f"snr {snr}: must be a finite number > 0 (e.g. 0.1), or leave it out for the "
                          f"physical default dose")
    if not (math.isfinite(voxel_size_nm) and voxel_size_nm > 0):
        raise ConfigError(f"voxel size {voxel_size_nm} nm: must be a finite number > 0 (e.g. 1.0)")
    need, free = estimated_peak_bytes(size, oversample), available_memory_bytes()
    if free is not None and need > free:
        raise ConfigError(f"size {size} (oversample {oversample}) needs about {need / 2**30:.1f} GiB of memory, "
                          f"{free / 2**30:.1f} GiB is free; choose a smaller size")


def check_disk_space(out: Path, n_tomograms: int, size: int) -> None:
    """Raise ``ConfigError`` when the file system that will hold ``out`` has too little free space for
    ``n_tomograms`` tomograms of ``size^3`` (built beside ``out``, so counted once more while an old one stays)."""
    need = n_tomograms * DISK_BYTES_PER_VOXEL * size ** 3
    existing = out
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    with contextlib.suppress(OSError):
        free = shutil.disk_usage(existing).free
        if need > free:
            raise ConfigError(f"{n_tomograms} tomograms of {size}^3 need about {need / 2**30:.1f} GiB on disk, "
                              f"{free / 2**30:.1f} GiB is free under {existing}; ask for fewer or smaller ones")


def manifest_settings(n_tomograms: int, size: int, seed: int, snr: float | None, voxel_size_nm: float,
                      config: SimulationConfig, extra_manifest: dict | None = None) -> dict:
    """The part of ``dataset.json`` that the request sets (everything but the per-tomogram results)."""
    settings = {"simulator_version": SIMULATOR_VERSION, "n_tomograms": n_tomograms, "size": size, "seed": seed,
                "snr": snr, "voxel_size_nm": voxel_size_nm, "config": dataclasses.asdict(config),
                **(extra_manifest or {})}
    return json.loads(json.dumps(settings, default=str))  # as it reads back from the file


def same_dataset(out: Path, settings: dict) -> bool:
    """True when ``out`` already holds, intact, the dataset that ``settings`` would make."""
    try:
        manifest = read_manifest(out)
        if manifest is None or not manifest.get(FILES_KEY):
            return False
        if any(manifest.get(key) != value for key, value in settings.items()):
            return False
        verify_dataset(out)
    except DataError:
        return False
    return True


def simulate_dataset(out: str | os.PathLike, n_tomograms: int, size: int, seed: int = 0,
                     snr: float | None = None, voxel_size_nm: float = 1.0, config: SimulationConfig | None = None,
                     progress: bool = True, extra_manifest: dict | None = None, overwrite: bool = False,
                     device: str = "cpu") -> Path:
    """Write ``n_tomograms`` tomograms (``model_0`` ...) in the SHREC 2021 layout under ``out``; returns ``out``.

    ``device`` runs each tomogram's imaging there (``"cuda"``: ``simulate_tomogram``); the same seed gives other
    random draws on another device, so a dataset is reproducible on the device that made it.

    ``out`` may be missing or empty. When it already holds this very dataset (same settings, files intact), it
    is returned as it is. Anything else in it raises ``ConfigError`` unless ``overwrite``, which replaces the
    folder whole. The tomograms are written to a private folder beside ``out`` that is renamed into place at the
    end; ``dataset.json`` (settings, simulator version, each tomogram's metadata, each file's size and SHA-256)
    is written last. A tqdm bar shows progress when ``progress``.
    """
    config = config or SimulationConfig()
    check_settings(n_tomograms, size, seed, snr, voxel_size_nm, config.imaging.oversample)
    out = Path(out)
    check_disk_space(out, n_tomograms, size)
    settings = manifest_settings(n_tomograms, size, seed, snr, voxel_size_nm, config, extra_manifest)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: exists and is not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()):
        if same_dataset(out, settings):
            return out
        if not overwrite:
            raise ConfigError(f"{out}: not empty and not this dataset; choose an empty or new folder, or add "
                              f"--overwrite to replace the folder and everything in it")
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.building."))
    try:
        scratch.chmod(folder_mode())  # mkdtemp makes it private; the dataset follows the umask
        _write_tomograms(scratch, n_tomograms, size, seed, snr, voxel_size_nm, config, progress, settings, device)
        _swap_into_place(scratch, out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return out


def _write_tomograms(folder: Path, n_tomograms: int, size: int, seed: int, snr: float | None,
                     voxel_size_nm: float, config: SimulationConfig, progress: bool, settings: dict,
                     device: str = "cpu") -> None:
    from tqdm.auto import tqdm

    from mvgtutor.data.formats import write_shrec_tomogram

    records = []
    for index in tqdm(range(n_tomograms), desc=f"simulating {size}^3 tomograms", unit="tomogram",
                      disable=not progress):
        tomogram = simulate_tomogram(size=size, seed=tomogram_seed(seed, index), snr=snr,
                                     voxel_size_nm=voxel_size_nm, config=config, device=device)
        write_shrec_tomogram(folder / f"model_{index}", reconstruction=tomogram.reconstruction,
                             class_mask=tomogram.class_mask, occupancy_mask=tomogram.occupancy_mask,
                             grandmodel=tomogram.grandmodel, particles=tomogram.particles,
                             voxel_size_nm=voxel_size_nm)
        records.append({"name": f"model_{index}", **tomogram.metadata})
    manifest = {**settings, "tomograms": records, FILES_KEY: file_records(folder)}
    with atomic_write(folder / MANIFEST, "w") as handle:
        json.dump(manifest, handle, indent=1, default=str)


def _swap_into_place(scratch: Path, out: Path) -> None:
    """Rename the finished ``scratch`` folder onto ``out``; an existing ``out`` is moved aside, then deleted."""
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()
    if not out.exists():
        os.rename(scratch, out)
        return
    old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.replaced."))
    os.rename(out, old / "old")
    os.rename(scratch, out)
    shutil.rmtree(old, ignore_errors=True)
