"""The course's embedded default dataset: simulated on first use, reused afterwards.

``default_dataset()`` returns ``data_root() / "shrec-sim-<profile>"``, a SHREC 2021-layout folder made by
``simulate_dataset`` with the active profile's ``DataConfig`` (tomogram size, count, SNR, seed, voxel size).

Safe under concurrency (pytest-xdist runs two workers): a builder holds a lock file beside the target (the
others wait for it, then find the dataset complete), builds in a private temporary folder beside the target
and renames it into place in one step (``simulate_dataset``), so a reader never sees a half-written dataset; if
the target appeared meanwhile (no lock on this system), the identical late copy takes its place. A folder is
*complete* when its ``dataset.json`` (written last) matches the profile's settings and the simulator's version and
every ``model_N`` holds its files, unchanged since they were written (``mvgtutor.data.integrity``). A stale or broken
folder is never used: it is deleted and rebuilt (with a warning), but only when it holds nothing but files the
course writes; a folder with anything else in it (a user's notes, another dataset) is left alone and reported.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import warnings
from pathlib import Path

from mvgtutor.config import DataConfig, Profile, get_profile
from mvgtutor.data.integrity import FILES_KEY, verify_dataset
from mvgtutor.errors import DataError
from mvgtutor.paths import data_root, exclusive_lock

SHREC_FILES = ("reconstruction.mrc", "class_mask.mrc", "occupancy_mask.mrc", "grandmodel.mrc",
               "particle_locations.txt")


def default_dataset_path(profile: Profile | str | None = None) -> Path:
    """Where the default dataset of ``profile`` (default: the active one) lives; it may not exist yet."""
    profile = profile if isinstance(profile, Profile) else get_profile(profile)
    return data_root() / f"shrec-sim-{profile.name}"


def default_dataset(profile: Profile | str | None = None, progress: bool = False) -> Path:
    """The active profile's default dataset folder, simulated deterministically on first use.

    ``profile`` is a ``Profile``, a profile name or None (``MVGTUTOR_PROFILE``). Returns the folder
    (``model_0 ... model_{n-1}`` and ``dataset.json``). ``progress`` shows a tqdm bar while it builds.
    """
    profile = profile if isinstance(profile, Profile) else get_profile(profile)
    target = default_dataset_path(profile)
    if target.exists() and dataset_problem(target, profile.data) is None:
        return target  # the common case: no lock needed
    with exclusive_lock(target):  # one builder at a time; the others wait, then find it complete
        if target.exists():
            problem = dataset_problem(target, profile.data)
            if problem is None:
                return target
            foreign = foreign_files(target)
            if foreign:
                shown = ", ".join(str(p) for p in foreign[:3]) + (" ..." if len(foreign) > 3 else "")
                raise DataError(f"{target}: {problem}, and it holds files mvgtutor did not write ({shown}); move "
                                f"them (or the whole folder) elsewhere, then run again")
            warnings.warn(f"{target}: {problem}; rebuilding the default dataset", stacklevel=2)
            _move_aside(target)
        _build(target, profile, progress)
    problem = dataset_problem(target, profile.data)
    if problem is not None:  # another process put something broken there in the meantime
        raise DataError(f"{target}: {problem}; delete the folder and run `python -m mvgtutor simulate --default`")
    return target


def expected_manifest(data: DataConfig) -> dict:
    """The manifest fields a default dataset made from ``data`` must carry."""
    from mvgtutor.simulate import SIMULATOR_VERSION

    return {"simulator_version": SIMULATOR_VERSION, "n_tomograms": data.n_tomograms,
            "size": data.tomogram_size, "seed": data.seed, "snr": data.snr, "voxel_size_nm": data.voxel_size_nm,
            "scene_preset": data.scene_preset}


def dataset_problem(folder: Path, data: DataConfig) -> str | None:
    """Why ``folder`` is not a complete default dataset for ``data`` (None when it is)."""
    from mvgtutor.simulate import MANIFEST

    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        return f"no {MANIFEST} (an interrupted or foreign folder)"
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        return f"unreadable {MANIFEST} ({error})"
    for key, value in expected_manifest(data).items():
        if manifest.get(key) != value:
            return f"{MANIFEST} has {key}={manifest.get(key)!r}, the profile wants {value!r}"
    for index in range(data.n_tomograms):
        missing = [name for name in SHREC_FILES if not (folder / f"model_{index}" / name).is_file()]
        if missing:
            return f"model_{index} lacks {', '.join(missing)}"
    if not manifest.get(FILES_KEY):
        return f"{MANIFEST} records no file checksums (made by an older mvgtutor)"
    try:
        verify_dataset(folder)
    except DataError as error:
        return str(error).split(": ", 1)[-1]
    return None


def foreign_files(folder: Path) -> list[Path]:
    """Files (and links) under ``folder`` that the course does not write into a default dataset, relative to it:
    anything but ``dataset.json``, ``model_N/<SHREC file>`` and the temporaries of an interrupted write."""
    from mvgtutor.simulate import MANIFEST

    foreign = []
    for root, folders, files in os.walk(folder):
        here = Path(root).relative_to(folder)
        for name in files + [d for d in folders if (Path(root) / d).is_symlink()]:
            parts = (here / name).parts
            ours = (parts == (MANIFEST,) or (name.startswith(".") and name.endswith(".tmp"))
                    or (len(parts) == 2 and re.fullmatch(r"model_\d+", parts[0]) and name in SHREC_FILES))
            if not ours or (Path(root) / name).is_symlink():
                foreign.append(here / name)
    return sorted(foreign)


def _build(target: Path, profile: Profile, progress: bool) -> None:
    """Simulate into a temporary folder beside ``target`` and rename it into place (atomic)."""
    from mvgtutor.runtime.device import choose_device
    from mvgtutor.simulate import SimulationConfig, simulate_dataset

    data = profile.data  # simulate_dataset builds beside target and renames into place (atomic)
    device = str(choose_device())  # the GPU when there is one (MVGTUTOR_DEVICE=cpu keeps it on the CPU)
    simulate_dataset(target, n_tomograms=data.n_tomograms, size=data.tomogram_size, seed=data.seed,
                     snr=data.snr, voxel_size_nm=data.voxel_size_nm, config=SimulationConfig.preset(data.scene_preset),
                     progress=progress, device=device,
                     extra_manifest={"profile": profile.name, "scene_preset": data.scene_preset,
                                     "simulated_on": device})


def _move_aside(target: Path) -> None:
    """Rename a stale ``target`` out of the way and delete it (tolerates a concurrent mover)."""
    trash = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.stale."))
    with contextlib.suppress(FileNotFoundError):  # someone else moved it already
        os.rename(target, trash / "old")
    shutil.rmtree(trash, ignore_errors=True)
