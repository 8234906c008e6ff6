"""A copick project on the local filesystem: the layout the ``copick`` library and the CZII challenge use.

::

    ROOT/copick_config.json                                   pickable objects, overlay_root / static_root
    ROOT/ExperimentRuns/RUN/Picks/USER_SESSION_OBJECT.json    picks, locations in Angstrom
    ROOT/ExperimentRuns/RUN/VoxelSpacingVS.000/TYPE.zarr      tomogram, OME-Zarr (scale "0" is full size)

This module writes and reads that layout with ``zarr`` and JSON (picks through
``mvgtutor.data.formats.write_copick_picks`` / ``read_copick_picks``), so that the course needs no ``copick``
install; a project written here opens with ``copick.from_file(ROOT / "copick_config.json")``. Coordinates in
picks files are Angstrom; tomograms carry their voxel size in the folder name and in the OME-Zarr scale, and
every read checks that the two agree (and match the caller's expectation when given).
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import numpy as np

from mvgtutor.errors import DataError
from mvgtutor.paths import atomic_write
from mvgtutor.picking.picks import ANGSTROM_PER_NM, Picks, concat

CONFIG_FILE = "copick_config.json"
RUNS = "ExperimentRuns"


def write_copick_config(root: str | os.PathLike, objects: dict[str, float], *, name: str = "mvgtutor",
                        description: str = "written by mvgtutor") -> Path:
    """Write ``ROOT/copick_config.json`` with one particle object per ``{name: radius in Angstrom}``."""
    root = Path(root).resolve()
    pickable = [{"name": n, "is_particle": True, "label": i, "radius": float(r), "color": [128, 128, 128, 255]}
                for i, (n, r) in enumerate(sorted(objects.items()), start=1)]
    config = {"config_type": "filesystem", "name": name, "description": description, "version": "1.0.0",
              "pickable_objects": pickable, "overlay_root": f"local://{root}", "static_root": f"local://{root}",
              "overlay_fs_args": {"auto_mkdir": True}}
    with atomic_write(root / CONFIG_FILE, "w") as handle:
        json.dump(config, handle, indent=2)
    return root / CONFIG_FILE


def write_copick_picks(root: str | os.PathLike, picks: Picks, *, user_id: str = "mvgtutor",
                       session_id: str = "0") -> list[Path]:
    """Write ``picks`` (Angstrom, or voxels with a voxel size) into the project: one JSON file per run and
    object, ``ExperimentRuns/RUN/Picks/USER_SESSION_OBJECT.json``. Returns the files written."""
    from mvgtutor.data.formats import Particle, write_copick_picks as write_file

    angstrom = picks.to_angstrom()
    written = []
    for run in sorted(set(angstrom.tomograms)):
        for name in sorted(set(angstrom.of_tomogram(run).names)):
            mine = angstrom.of_tomogram(run).of_class(name)
            path = Path(root) / RUNS / run / "Picks" / f"{user_id}_{session_id}_{name}.json"
            # formats speaks voxels: 0.1 nm voxels are 1 A, so the voxel coordinates written are Angstrom
            points = [Particle(name, *map(float, xyz)) for xyz in mine.xyz]
            written.append(write_file(path, points, 0.1, object_name=name, user_id=user_id, session_id=session_id,
                                      run_name=run))
    return written


def read_copick_picks_file(path: str | os.PathLike, *, tomogram: str | None = None) -> Picks:
    """One copick picks JSON file as ``Picks`` in Angstrom (the run is its ``run_name``, else its run folder)."""
    from mvgtutor.data.formats import read_copick_picks

    path = Path(path)
    particles = read_copick_picks(path, 0.1)  # 0.1 nm voxels: the "voxel" coordinates are Angstrom
    run = tomogram
    if run is None:
        document = json.loads(path.read_text())
        run = document.get("run_name") or (path.parent.parent.name if path.parent.name == "Picks" else path.stem)
    return Picks.create(np.array([[p.x, p.y, p.z] for p in particles]).reshape(-1, 3),
                        [p.class_name for p in particles], unit="angstrom", tomogram=str(run))


def read_copick_project_picks(root: str | os.PathLike, *, user_id: str | None = None,
                              session_id: str | None = None, objects=None) -> Picks:
    """Every pick of a copick project (ROOT or its ``copick_config.json``), in Angstrom, optionally only those
    of one ``user_id`` / ``session_id`` or of some ``objects`` (names)."""
    root = _project_root(root)
    tables = []
    for path in sorted((root / RUNS).glob("*/Picks/*.json")):
        table = read_copick_picks_file(path, tomogram=path.parent.parent.name)
        meta = json.loads(path.read_text())
        if user_id is not None and meta.get("user_id") != user_id:
            continue
        if session_id is not None and str(meta.get("session_id")) != str(session_id):
            continue
        if objects is not None and meta.get("pickable_object_name") not in set(objects):
            continue
        tables.append(table)
    return concat(tables) if tables else Picks.empty("angstrom")


def write_copick_tomogram(root: str | os.PathLike, run: str, volume, voxel_size_angstrom: float,
                          tomo_type: str = "wbp") -> Path:
    """Write a ``(Z, Y, X)`` tomogram as ``ExperimentRuns/RUN/VoxelSpacingVS/TYPE.zarr`` (OME-Zarr, one scale)."""
    import zarr

    _check_spacing(voxel_size_angstrom)
    volume = np.asarray(volume, dtype=np.float32)
    if volume.ndim != 3:
        raise DataError(f"write_copick_tomogram: expected a (Z, Y, X) volume, got shape {volume.shape}")
    path = Path(root) / RUNS / run / f"VoxelSpacing{voxel_size_angstrom:.3f}" / f"{tomo_type}.zarr"
    group = zarr.open_group(str(path), mode="w")
    # OME-Zarr 0.4 nests chunk keys ("0/0/0/0"): copick's store reads them so and finds only fill values otherwise
    group.create_dataset("0", data=volume, chunks=tuple(min(64, s) for s in volume.shape), overwrite=True,
                         dimension_separator="/")
    group.attrs["multiscales"] = [{
        "version": "0.4", "name": tomo_type,
        "axes": [{"name": a, "type": "space", "unit": "angstrom"} for a in "zyx"],
        "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [voxel_size_angstrom] * 3}]}],
    }]
    return path


def read_copick_tomogram(root: str | os.PathLike, run: str, *, voxel_size_angstrom: float | None = None,
                         tomo_type: str | None = None) -> tuple[np.ndarray, float]:
    """A project's tomogram ``(Z, Y, X)`` float32 and its voxel size in Angstrom (the full-size scale "0").

    Without ``voxel_size_angstrom`` the run must hold one voxel spacing; without ``tomo_type``, one tomogram
    there. The folder's voxel spacing and the OME-Zarr scale must agree (else ``DataError``).
    """
    import zarr

    run_dir = _project_root(root) / RUNS / run
    spacings = sorted(run_dir.glob("VoxelSpacing*"))
    if voxel_size_angstrom is not None:
        spacings = [s for s in spacings if math.isclose(_spacing_of(s), voxel_size_angstrom, rel_tol=1e-3)]
    if len(spacings) != 1:
        raise DataError(f"{run_dir}: found voxel spacings {[s.name for s in sorted(run_dir.glob('VoxelSpacing*'))]}; "
                        f"pass voxel_size_angstrom to choose one")
    tomograms = sorted(spacings[0].glob(f"{tomo_type or '*'}.zarr"))
    tomograms = [t for t in tomograms if "_features" not in t.name]
    if len(tomograms) != 1:
        raise DataError(f"{spacings[0]}: found tomograms {[t.stem for t in tomograms]}; pass tomo_type to choose one")
    group = zarr.open_group(str(tomograms[0]), mode="r")
    spacing = _spacing_of(spacings[0])
    scale = _ome_scale(group, tomograms[0])
    if scale is not None and not math.isclose(scale, spacing, rel_tol=1e-3):
        raise DataError(f"{tomograms[0]}: OME-Zarr scale {scale} A disagrees with its folder {spacings[0].name}; "
                        f"fix the file's metadata")
    return np.asarray(group["0"][:], dtype=np.float32), spacing


def project_runs(root: str | os.PathLike) -> list[str]:
    """The run names of a copick project."""
    return sorted(p.name for p in (_project_root(root) / RUNS).iterdir() if p.is_dir())


def _project_root(root) -> Path:
    root = Path(root)
    config = root if root.name == CONFIG_FILE else root / CONFIG_FILE
    if not config.is_file():
        raise DataError(f"{root}: not a copick project (no {CONFIG_FILE}); point to the project folder")
    document = json.loads(config.read_text())
    overlay = str(document.get("overlay_root", ""))
    if overlay.startswith("local://"):
        candidate = Path(overlay[len("local://"):])
        if (candidate / RUNS).is_dir():
            return candidate
    return config.parent


def _spacing_of(folder: Path) -> float:
    match = re.fullmatch(r"VoxelSpacing(\d+(?:\.\d+)?)", folder.name)
    if not match:
        raise DataError(f"{folder}: not a VoxelSpacingN.NNN folder")
    return float(match.group(1))


def _ome_scale(group, path: Path) -> float | None:
    try:
        datasets = group.attrs["multiscales"][0]["datasets"]
        full = next(d for d in datasets if d["path"] == "0")
        scale = next(t["scale"] for t in full["coordinateTransformations"] if t["type"] == "scale")
    except (KeyError, IndexError, StopIteration, TypeError):
        return None
    if not all(math.isclose(s, scale[-1], rel_tol=1e-3) for s in scale[-3:]):
        raise DataError(f"{path}: anisotropic voxels {scale} A; mvgtutor expects cubic voxels")
    return float(scale[-1])


def _check_spacing(voxel_size_angstrom: float) -> None:
    if not (isinstance(voxel_size_angstrom, (int, float)) and math.isfinite(voxel_size_angstrom)
            and voxel_size_angstrom > 0):
        raise DataError(f"voxel_size_angstrom must be a positive number, got {voxel_size_angstrom!r}")


__all__ = ["CONFIG_FILE", "write_copick_config", "write_copick_picks", "read_copick_picks_file",
           "read_copick_project_picks", "write_copick_tomogram", "read_copick_tomogram", "project_runs",
           "ANGSTROM_PER_NM"]
