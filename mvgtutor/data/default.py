"""The course's embedded default dataset: simulated on first use, reused afterwards.

``default_dataset()`` returns ``data_root() / "shrec-sim-<profile>"``, a SHREC 2021-layout folder made by
``simulate_dataset`` with the active profile's ``DataConfig`` (tomogram size, count, SNR, seed, voxel size).

Safe under concurrency (pytest-xdist runs two workers): a builder holds a lock file beside the target (the
others wait for it, then find the dataset complete), builds in a private temporary folder beside the target
and renames it into place in one step, so a reader never sees a half-written dataset; if the target appeared
meanwhile (no lock on this system), the late copy is thrown away. A folder is *complete* when its
``dataset.json`` (written last) matches the profile's settings and the simulator's version and every
``model_N`` holds its files. A stale or broken folder is never used: it is moved aside and rebuilt (with a
warning).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

from mvgtutor.config import DataConfig, Profile, get_profile
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
            "size": data.tomogram_size, "seed": data.seed, "snr": data.snr, "voxel_size_nm": data.voxel_size_nm}


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
    return None


def _build(target: Path, profile: Profile, progress: bool) -> None:
    """Simulate into a temporary folder beside ``target`` and rename it into place (atomic)."""
    from mvgtutor.simulate import simulate_dataset

    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.building."))
    scratch.chmod(0o755)  # mkdtemp makes it private; the dataset is not
    try:
        data = profile.data
        simulate_dataset(scratch, n_tomograms=data.n_tomograms, size=data.tomogram_size, seed=data.seed,
                         snr=data.snr, voxel_size_nm=data.voxel_size_nm, progress=progress,
                         extra_manifest={"profile": profile.name})
        try:
            os.rename(scratch, target)
        except OSError:
            if not target.exists():
                raise
            # another process finished first: its copy is as good as ours
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _move_aside(target: Path) -> None:
    """Rename a stale ``target`` out of the way and delete it (tolerates a concurrent mover)."""
    trash = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.stale."))
    with contextlib.suppress(FileNotFoundError):  # someone else moved it already
        os.rename(target, trash / "old")
    shutil.rmtree(trash, ignore_errors=True)
