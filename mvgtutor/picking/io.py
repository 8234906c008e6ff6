"""Coordinate lists on disk: SHREC particle lists, plain text, CSV, the CZII submission CSV and STAR files.

Every reader returns ``Picks`` in a unit it states; none guesses a unit the file does not state:

| format | file | unit on disk |
| --- | --- | --- |
| SHREC particle list | ``CLASSNAME X Y Z [rot1 rot2 rot3]`` per line (``particle_locations.txt``) | voxels |
| plain text | ``X Y Z`` or ``NAME X Y Z`` per line | the caller says (``unit=``) |
| CSV | a header with ``x, y, z`` and optional ``particle_type`` / ``class``, ``experiment`` / ``tomogram``, ``score`` | the caller says |
| CZII submission | ``[id,] experiment, particle_type, x, y, z``, several experiments in one file | Angstrom (the challenge's) |
| STAR (RELION) | ``rlnCoordinateX/Y/Z`` (minus ``rlnOriginX/Y/ZAngst`` when present), ``rlnTomoName`` | voxels |
| copick picks | ``{"points": [{"location": {"x", "y", "z"}}]}`` JSON (see ``copick_project``) | Angstrom |

SHREC lists and copick JSON go through ``mvgtutor.data.formats`` (``read_particle_locations``,
``read_copick_picks``). Writers are atomic (``mvgtutor.paths.atomic_write``).
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np

from mvgtutor.data.classes import CLASS_NAMES
from mvgtutor.errors import DataError, check_choice
from mvgtutor.paths import atomic_path, atomic_write
from mvgtutor.picking.picks import UNITS, Picks, concat

CZII_COLUMNS = ("experiment", "particle_type", "x", "y", "z")
_NAME_COLUMNS = ("particle_type", "class", "class_name", "name")
_TOMOGRAM_COLUMNS = ("experiment", "tomogram", "run", "run_name")
_SHREC_NAMES = {n.lower() for n in CLASS_NAMES[1:]}


# ------------------------------------------------------------------------------------- SHREC / plain text
def read_text_picks(path: str | os.PathLike, *, unit: str | None = None, tomogram: str | None = None,
                    voxel_size_angstrom: float | None = None, name: str = "particle") -> Picks:
    """A whitespace-separated list: ``X Y Z`` or ``NAME X Y Z [rot1 rot2 rot3]`` per line (``#`` comments).

    A list whose names are all SHREC classes is a SHREC particle list: voxels by definition, read by
    ``formats.read_particle_locations`` whatever ``unit`` says. Any other list needs ``unit`` ("voxel" or
    "angstrom"). Lines
    without a name get ``name``. ``tomogram`` defaults to the file's folder name (``model_9``).
    """
    from mvgtutor.data.formats import read_particle_locations

    path = _existing(path)
    rows = [line.split("#", 1)[0].split() for line in path.read_text().splitlines()]
    rows = [r for r in rows if r]
    tomogram = tomogram or path.parent.name or "tomogram"
    if rows and all(r[0].lower() in _SHREC_NAMES | {"vesicle", "fiducial"} for r in rows):
        particles = read_particle_locations(path)
        return Picks.create(np.array([[p.x, p.y, p.z] for p in particles]).reshape(-1, 3),
                            [p.class_name for p in particles], unit="voxel", tomogram=tomogram,
                            voxel_size_angstrom=voxel_size_angstrom)
    if unit is None:
        raise DataError(f"{path}: not a SHREC particle list, so its unit is unknown; pass unit='voxel' or "
                        f"unit='angstrom'")
    check_choice("unit", unit, UNITS)
    xyz, names = [], []
    for number, fields in enumerate(rows, start=1):
        has_name = _not_number(fields[0])
        values = fields[1:] if has_name else fields
        if len(values) not in (3, 6):
            raise DataError(f"{path}, line {number}: expected 'X Y Z' or 'NAME X Y Z [rot1 rot2 rot3]', got "
                            f"{' '.join(fields)!r}")
        try:
            xyz.append([float(v) for v in values[:3]])
        except ValueError:
            raise DataError(f"{path}, line {number}: coordinates must be numbers, got {' '.join(fields)!r}") from None
        names.append(fields[0] if has_name else name)
    return Picks.create(np.array(xyz).reshape(-1, 3), names, unit=unit, tomogram=tomogram,
                        voxel_size_angstrom=voxel_size_angstrom)


def write_text_picks(path: str | os.PathLike, picks: Picks) -> Path:
    """Write ``NAME X Y Z`` lines (in the picks' own unit, stated in a first ``#`` line; a voxel list of SHREC
    classes is written by ``formats.write_particle_locations``, as ``particle_locations.txt``)."""
    from mvgtutor.data.formats import write_particle_locations

    path = Path(path)
    if picks.unit == "voxel" and all(n.lower() in _SHREC_NAMES | {"vesicle", "fiducial"} for n in picks.names):
        return write_particle_locations(path, picks.to_particles())
    with atomic_write(path, "w") as handle:
        handle.write(f"# NAME X Y Z in {picks.unit}s\n")
        for n, (x, y, z) in zip(picks.names, picks.xyz):
            handle.write(f"{n} {x:.6g} {y:.6g} {z:.6g}\n")
    return path


# ------------------------------------------------------------------------------------------------- CSV
def read_csv_picks(path: str | os.PathLike, *, unit: str | None = None, tomogram: str | None = None,
                   voxel_size_angstrom: float | None = None, name: str = "particle") -> Picks:
    """A CSV with a header naming ``x, y, z`` and optionally a class (``particle_type``), a tomogram
    (``experiment``) and a ``score``; extra columns such as ``id`` are ignored.

    A file with the CZII submission's columns (``experiment, particle_type, x, y, z``) is in Angstrom, the
    challenge's unit; any other needs ``unit``.
    """
    path = _existing(path)
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
        rows = [{k.strip().lower(): (v or "").strip() for k, v in row.items() if k is not None} for row in reader]
    if not {"x", "y", "z"} <= set(header):
        raise DataError(f"{path}: a picks CSV needs a header with columns x, y, z; found {header}")
    czii = set(CZII_COLUMNS) <= set(header)
    if unit is None:
        if not czii:
            raise DataError(f"{path}: the CSV does not say its unit; pass unit='voxel' or unit='angstrom' (only the "
                            f"CZII layout {', '.join(CZII_COLUMNS)} is Angstrom by definition)")
        unit = "angstrom"
    check_choice("unit", unit, UNITS)
    name_column = next((c for c in _NAME_COLUMNS if c in header), None)
    tomogram_column = next((c for c in _TOMOGRAM_COLUMNS if c in header), None)
    default_tomogram = tomogram or path.stem
    try:
        xyz = np.array([[float(r["x"]), float(r["y"]), float(r["z"])] for r in rows]).reshape(-1, 3)
        scores = np.array([float(r["score"]) if r.get("score") else 1.0 for r in rows])
    except ValueError as error:
        raise DataError(f"{path}: x, y, z and score must be numbers ({error})") from None
    names = [r[name_column] if name_column else name for r in rows]
    tomograms = [r[tomogram_column] if tomogram_column else default_tomogram for r in rows]
    return Picks(xyz, names, tomograms, scores, unit, voxel_size_angstrom)


def write_csv_picks(path: str | os.PathLike, picks: Picks) -> Path:
    """Write ``tomogram, particle_type, x, y, z, score`` in the picks' own unit (named in the file name by the
    caller; the CSV itself cannot say it). For the challenge's layout use ``write_czii_submission``."""
    rows = [[t, n, *(f"{v:.6g}" for v in p), f"{s:.6g}"]
            for t, n, p, s in zip(picks.tomograms, picks.names, picks.xyz, picks.scores)]
    return _write_csv(path, ["tomogram", "particle_type", "x", "y", "z", "score"], rows)


def write_czii_submission(path: str | os.PathLike, picks: Picks, voxel_size_angstrom: float | None = None) -> Path:
    """Write the CZII submission CSV ``id, experiment, particle_type, x, y, z`` (Angstrom; voxel picks are
    converted with ``voxel_size_angstrom`` or their own voxel size). ``experiment`` is the picks' tomogram."""
    picks = picks.to_angstrom(voxel_size_angstrom)
    rows = [[i, t, n, *(f"{v:.3f}" for v in p)]
            for i, (t, n, p) in enumerate(zip(picks.tomograms, picks.names, picks.xyz))]
    return _write_csv(path, ["id", *CZII_COLUMNS], rows)


def read_czii_submission(path: str | os.PathLike) -> Picks:
    """Read a CZII submission / solution CSV (Angstrom); the ``experiment`` column names each tomogram."""
    picks = read_csv_picks(path)
    with _existing(path).open(newline="") as handle:
        header = {h.strip().lower() for h in next(csv.reader(handle), [])}
    if not set(CZII_COLUMNS) <= header:
        raise DataError(f"{path}: a CZII submission needs the columns {', '.join(CZII_COLUMNS)} (and optionally "
                        f"id); found {sorted(header)}")
    return picks


def _write_csv(path, header, rows) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    with atomic_write(path, "w") as handle:
        handle.write(buffer.getvalue())
    return Path(path)


# ------------------------------------------------------------------------------------------------- STAR
def read_star_picks(path: str | os.PathLike, *, particle_type: str | None = None,
                    voxel_size_angstrom: float | None = None) -> Picks:
    """A RELION STAR particle file (``starfile``): voxel picks from ``rlnCoordinateX/Y/Z``, less the shifts
    ``rlnOriginX/Y/ZAngst`` (RELION's convention: position = coordinate - origin) when present, which need
    ``voxel_size_angstrom``. The tomogram comes from ``rlnTomoName`` (or ``rlnMicrographName``), the class from
    ``particle_type`` (default: the file's stem: one particle type per STAR file, as RELION and Warp write them).
    """
    import starfile

    path = _existing(path)
    try:
        data = starfile.read(path, always_dict=True)
    except Exception as error:  # starfile raises several kinds for malformed files
        raise DataError(f"{path}: not a readable STAR file ({error})") from None
    table = next((t for t in data.values() if hasattr(t, "columns") and "rlnCoordinateX" in t.columns), None)
    if table is None:
        raise DataError(f"{path}: no data block with rlnCoordinateX/Y/Z; expected a RELION particle STAR file")
    xyz = table[["rlnCoordinateX", "rlnCoordinateY", "rlnCoordinateZ"]].to_numpy(dtype=np.float64)
    origins = [f"rlnOrigin{a}Angst" for a in "XYZ"]
    if any(c in table.columns for c in origins):
        if voxel_size_angstrom is None:
            raise DataError(f"{path}: holds rlnOrigin*Angst shifts; pass voxel_size_angstrom to apply them")
        shift = np.stack([table[c].to_numpy(dtype=np.float64) if c in table.columns else np.zeros(len(table))
                          for c in origins], axis=1)
        xyz = xyz - shift / voxel_size_angstrom
    tomogram_column = next((c for c in ("rlnTomoName", "rlnMicrographName") if c in table.columns), None)
    tomograms = table[tomogram_column].astype(str).to_numpy() if tomogram_column else [path.stem] * len(table)
    names = [particle_type or path.stem] * len(table)
    return Picks(xyz, names, tomograms, np.ones(len(table)), "voxel", voxel_size_angstrom)


def write_star_picks(path: str | os.PathLike, picks: Picks, voxel_size_angstrom: float | None = None) -> Path:
    """Write one particle type's picks as a RELION STAR file (``rlnCoordinateX/Y/Z`` in voxels,
    ``rlnTomoName``, zero angles). Angstrom picks are converted with ``voxel_size_angstrom``."""
    import pandas as pd
    import starfile

    if len(set(picks.names)) > 1:
        raise DataError(f"write_star_picks: {len(set(picks.names))} particle types; a STAR file holds one (write "
                        f"picks.of_class(name) to one file per type)")
    if picks.unit != "voxel" or voxel_size_angstrom is not None:
        picks = picks.to_voxels(voxel_size_angstrom)
    table = pd.DataFrame({"rlnCoordinateX": picks.xyz[:, 0], "rlnCoordinateY": picks.xyz[:, 1],
                          "rlnCoordinateZ": picks.xyz[:, 2], "rlnAngleRot": 0.0, "rlnAngleTilt": 0.0,
                          "rlnAnglePsi": 0.0, "rlnTomoName": list(picks.tomograms)})
    path = Path(path)
    with atomic_path(path) as tmp:
        starfile.write({"particles": table}, tmp, overwrite=True)
    return path


# ------------------------------------------------------------------------------------------ any of these
def read_picks(path: str | os.PathLike, *, unit: str | None = None, voxel_size_angstrom: float | None = None,
               tomogram: str | None = None, particle_type: str | None = None) -> Picks:
    """Read picks from any supported file, chosen by its form: a copick project (a folder with
    ``copick_config.json``, or the config itself), a copick picks ``.json``, ``.star``, ``.csv`` or a text list.
    See each reader for the unit it returns.
    """
    from mvgtutor.picking.copick_project import CONFIG_FILE, read_copick_project_picks

    path = Path(path)
    if path.is_dir() or path.name == CONFIG_FILE:
        return read_copick_project_picks(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        from mvgtutor.picking.copick_project import read_copick_picks_file

        return read_copick_picks_file(path, tomogram=tomogram)
    if suffix == ".star":
        return read_star_picks(path, particle_type=particle_type, voxel_size_angstrom=voxel_size_angstrom)
    if suffix == ".csv":
        return read_csv_picks(path, unit=unit, tomogram=tomogram, voxel_size_angstrom=voxel_size_angstrom)
    return read_text_picks(path, unit=unit, tomogram=tomogram, voxel_size_angstrom=voxel_size_angstrom,
                           name=particle_type or "particle")


def write_picks(path: str | os.PathLike, picks: Picks, *, czii: bool = False,
                voxel_size_angstrom: float | None = None) -> Path:
    """Write picks in the format the file name says: ``.csv`` (the CZII submission with ``czii=True``),
    ``.star`` (one particle type), anything else a text list (see ``write_text_picks``)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return write_czii_submission(path, picks, voxel_size_angstrom) if czii else write_csv_picks(path, picks)
    if suffix == ".star":
        return write_star_picks(path, picks, voxel_size_angstrom)
    return write_text_picks(path, picks)


def split_by_tomogram(picks: Picks) -> dict[str, Picks]:
    """``{tomogram: its picks}``."""
    return {t: picks.of_tomogram(t) for t in sorted(set(picks.tomograms))}


def _existing(path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found; check the path")
    return path


def _not_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return True
    return False


__all__ = ["read_picks", "write_picks", "read_text_picks", "write_text_picks", "read_csv_picks", "write_csv_picks",
           "read_czii_submission", "write_czii_submission", "read_star_picks", "write_star_picks",
           "split_by_tomogram", "concat"]
