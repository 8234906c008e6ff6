"""Write a simulated dataset: ``n`` tomograms in the SHREC 2021 layout (``model_0`` ...) plus ``dataset.json``."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np

from mvgtutor.errors import ConfigError
from mvgtutor.paths import atomic_write
from mvgtutor.simulate.pipeline import SIMULATOR_VERSION, SimulationConfig, simulate_tomogram

MANIFEST = "dataset.json"


def tomogram_seed(seed: int, index: int) -> int:
    """The seed of tomogram ``index`` of a dataset made with ``seed`` (independent streams)."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1, dtype=np.uint64)[0] % (2 ** 62))


def simulate_dataset(out: str | os.PathLike, n_tomograms: int, size: int, seed: int = 0,
                     snr: float | None = None, voxel_size_nm: float = 1.0, config: SimulationConfig | None = None,
                     progress: bool = True, extra_manifest: dict | None = None) -> Path:
    """Write ``n_tomograms`` tomograms (``model_0`` ...) in the SHREC 2021 layout under ``out``.

    ``dataset.json`` (settings, simulator version, each tomogram's metadata) is written last, atomically:
    a folder without it is incomplete. Returns ``out``. A tqdm bar shows progress when ``progress``.
    """
    from tqdm.auto import tqdm

    from mvgtutor.data.formats import write_shrec_tomogram

    if n_tomograms < 1:
        raise ConfigError(f"n_tomograms={n_tomograms}: ask for at least one tomogram")
    config = config or SimulationConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for index in tqdm(range(n_tomograms), desc=f"simulating {size}^3 tomograms", unit="tomogram",
                      disable=not progress):
        tomogram = simulate_tomogram(size=size, seed=tomogram_seed(seed, index), snr=snr,
                                     voxel_size_nm=voxel_size_nm, config=config)
        write_shrec_tomogram(out / f"model_{index}", reconstruction=tomogram.reconstruction,
                             class_mask=tomogram.class_mask, occupancy_mask=tomogram.occupancy_mask,
                             grandmodel=tomogram.grandmodel, particles=tomogram.particles,
                             voxel_size_nm=voxel_size_nm)
        records.append({"name": f"model_{index}", **tomogram.metadata})
    manifest = {
        "simulator_version": SIMULATOR_VERSION, "n_tomograms": n_tomograms, "size": size, "seed": seed,
        "snr": snr, "voxel_size_nm": voxel_size_nm, "config": dataclasses.asdict(config),
        **(extra_manifest or {}), "tomograms": records,
    }
    with atomic_write(out / MANIFEST, "w") as handle:
        json.dump(manifest, handle, indent=1, default=str)
    return out
