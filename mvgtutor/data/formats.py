"""Real file formats: MRC volumes, the SHREC 2021 folder layout, and copick / CZII particle picks.

Conventions (see CONTRIBUTING.md):

* An MRC array is indexed ``[z, y, x]``. Headers store the voxel size in Angstrom (mrcfile's convention); the
  code speaks nm (``voxel_size_nm``). Every write sets it, every read can check it; a mismatch is a
  ``DataError``, never a silent resample.
* ``particle_locations.txt`` lists ``CLASSNAME X Y Z rot1 rot2 rot3`` with X Y Z in voxels and ZXZ Euler
  angles in degrees, so a particle at ``X Y Z`` sits at ``class_mask[Z, Y, X]``.

The SHREC 2021 layout of one tomogram (``model_N/``)::

    reconstruction.mrc      the noisy tomogram (float32)                      required
    class_mask.mrc          labels 0-15 (stored as 8-bit MRC mode 0)          required
    particle_locations.txt  one line per particle                             required
    occupancy_mask.mrc      instance ids, 0 = background                      optional (None when absent)
    grandmodel.mrc          the noise-free density                            optional (None when absent)

Large MRC files (``MMAP_MIN_BYTES`` and up) are memory-mapped read-only: nothing is read until it is used.
gzip- and bzip2-compressed MRC files (whatever their name) are read whole into memory. A header whose axis
order (MAPC, MAPR, MAPS) is not the standard 1, 2, 3 is honoured: the volume comes back as ``[z, y, x]``.
Density maps must hold finite numbers: NaN or inf voxels are refused on write and on read.
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import mrcfile
import mrcfile.utils
import numpy as np

from mvgtutor.data.classes import NUM_CLASSES, class_by_name
from mvgtutor.data.integrity import verify_tomogram
from mvgtutor.errors import DataError
from mvgtutor.paths import atomic_path, atomic_write

ANGSTROM_PER_NM = 10.0
MMAP_MIN_BYTES = 64 * 2**20  # MRC files this large or larger are memory-mapped instead of read
FINITE_CHECK_VOXELS = 1 << 22  # voxels per chunk of the NaN / inf check (bounds its temporary memory)
_COMPRESSION_MAGIC = {b"\x1f\x8b": "gzip", b"BZh": "bzip2"}
VOXEL_SIZE_RTOL = 1e-3  # relative tolerance of the voxel-size check (headers store float32 Angstrom)

RECONSTRUCTION = "reconstruction.mrc"
CLASS_MASK = "class_mask.mrc"
OCCUPANCY_MASK = "occupancy_mask.mrc"
GRANDMODEL = "grandmodel.mrc"
PARTICLE_LOCATIONS = "particle_locations.txt"
_MAKE_DATA_HINT = "run `python -m mvgtutor simulate --out DIR` or `make data`"


# ----------------------------------------------------------------------------------------------- MRC volumes
# The header's first label. mrcfile writes "Created by mrcfile.py <date and time>", which made two simulations of
# the same data differ in two bytes, and so in their SHA-256 and their dataset fingerprint.
MRC_LABEL = b"Created by mvgtutor with mrcfile.py"

def write_mrc(path: str | os.PathLike, array, voxel_size_nm: float) -> Path:
    """Write a 3D volume ``(Z, Y, X)`` to ``path`` atomically, with the voxel size in the header (and no date:
    the same volume always gives the same bytes).

    ``array`` is a numpy array or a torch tensor of an MRC dtype (float32, float16, int8, int16, uint16;
    uint8 is stored as uint16 by mrcfile). float64 is stored as float32. Returns the path.
    """
    path = Path(path)
    volume = _as_numpy(array)
    if volume.ndim != 3:
        raise DataError(f"{path}: expected a 3D volume (Z, Y, X), got shape {tuple(volume.shape)}")
    if volume.dtype == np.float64:
        volume = volume.astype(np.float32)
    try:
        mrcfile.utils.mode_from_dtype(volume.dtype)
    except ValueError:
        raise DataError(
            f"{path}: dtype {volume.dtype} cannot be stored in an MRC file; "
            f"convert to float32, int16 or int8 first"
        ) from None
    _check_voxel_size_value(voxel_size_nm, path)
    check_finite(volume, path, "refusing to write it; find where the NaN / inf came from")
    with atomic_path(path) as tmp:
        with mrcfile.new(tmp, overwrite=True) as mrc:
            mrc.set_data(np.ascontiguousarray(volume))
            mrc.voxel_size = float(voxel_size_nm) * ANGSTROM_PER_NM
            mrc.header.label[0] = MRC_LABEL  # mrcfile's default label carries the time of writing
    return path


@dataclass(frozen=True)
class MrcInfo:
    """What an MRC header says: shape ``(Z, Y, X)``, dtype and voxel size in nm (no data is read)."""

    shape: tuple[int, ...]
    dtype: np.dtype
    voxel_size_nm: float


def read_mrc_info(path: str | os.PathLike) -> MrcInfo:
    """Shape, dtype and voxel size of the MRC file at ``path``, from its header alone."""
    path = Path(path)
    header, _ = _read_header(path)
    shape = tuple(int(n) for n in mrcfile.utils.data_shape_from_header(header))
    order = _axis_order(header, path)
    if len(shape) == 3 and order is not None:
        shape = tuple(shape[axis] for axis in order)
    return MrcInfo(shape=shape, dtype=mrcfile.utils.data_dtype_from_header(header),
                   voxel_size_nm=_header_voxel_size_nm(header, path))


def mrc_voxel_size_nm(path: str | os.PathLike) -> float:
    """The (isotropic) voxel size in nm stored in the header of the MRC file at ``path``."""
    header, _ = _read_header(Path(path))
    return _header_voxel_size_nm(header, Path(path))


def mrc_voxel_size_nm_or_none(path: str | os.PathLike) -> float | None:
    """Like ``mrc_voxel_size_nm``, but None when the header holds none (cell size 0, as many tools write)."""
    header, _ = _read_header(Path(path))
    return _header_voxel_size_nm(header, Path(path), required=False)


def read_mrc(path: str | os.PathLike, expected_voxel_size_nm: float | None = None,
             mmap: bool | None = None) -> np.ndarray:
    """Read the 3D volume at ``path`` as an array ``(Z, Y, X)`` in the file's dtype.

    With ``expected_voxel_size_nm`` the header's voxel size must match it (else ``DataError``; never a
    resample). ``mmap=None`` memory-maps files of ``MMAP_MIN_BYTES`` or more (a read-only ``np.memmap``);
    ``True`` / ``False`` force it. Truncated files, non-3D data and unreadable headers raise ``DataError``.
    Compressed files (gzip, bzip2) are decompressed into memory; a non-standard axis order is re-ordered to
    ``[z, y, x]`` (read whole into memory).
    """
    path = Path(path)
    header, data_offset = _read_header(path)
    if expected_voxel_size_nm is not None:
        check_voxel_size(path, expected_voxel_size_nm, header=header)
    dtype = mrcfile.utils.data_dtype_from_header(header)
    shape = mrcfile.utils.data_shape_from_header(header)
    if len(shape) != 3:
        raise DataError(f"{path}: expected a 3D volume, the header describes shape {shape}")
    order = _axis_order(header, path)
    if compression(path) is not None:
        volume = _read_compressed(path)
    else:
        volume = _map_data(path, header, data_offset, dtype, shape, mmap)
    return volume if order is None else np.ascontiguousarray(volume.transpose(order))


def compression(path: str | os.PathLike) -> str | None:
    """``"gzip"`` or ``"bzip2"`` when the file at ``path`` is compressed (from its first bytes), else None."""
    with open(path, "rb") as handle:
        start = handle.read(3)
    return next((name for magic, name in _COMPRESSION_MAGIC.items() if start.startswith(magic)), None)


def _read_compressed(path: Path) -> np.ndarray:
    """The whole data block of a gzip / bzip2 MRC file, decompressed into memory (file axis order)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # mrcfile warns about a data block of the wrong size
            with mrcfile.open(path, mode="r", permissive=False) as mrc:
                return np.array(mrc.data)
    except (ValueError, OSError, EOFError, RuntimeWarning) as error:
        raise DataError(f"{path}: compressed MRC file that cannot be read whole ({error}); re-copy it, or "
                        f"decompress it (gunzip / bunzip2) and check the result") from None


def _map_data(path: Path, header, data_offset: int, dtype, shape, mmap: bool | None) -> np.ndarray:
    """The data block of an uncompressed MRC file: a read-only memory map, or an in-memory copy."""
    expected_bytes = data_offset + int(np.prod(shape)) * dtype.itemsize
    actual_bytes = path.stat().st_size
    if actual_bytes < expected_bytes:
        raise DataError(
            f"{path}: truncated MRC file ({actual_bytes} bytes, the header promises {expected_bytes}); "
            f"re-copy or regenerate it"
        )
    volume = np.memmap(path, dtype=dtype, mode="r", offset=data_offset, shape=shape)
    use_mmap = actual_bytes >= MMAP_MIN_BYTES if mmap is None else mmap
    return volume if use_mmap else np.array(volume)


def _axis_order(header, path: Path) -> tuple[int, int, int] | None:
    """The transpose that turns the file's (section, row, column) array into ``[z, y, x]``, or None when the
    header's MAPC, MAPR, MAPS are the standard 1, 2, 3 (column = x, row = y, section = z)."""
    mapc, mapr, maps = int(header.mapc), int(header.mapr), int(header.maps)
    if (mapc, mapr, maps) == (1, 2, 3):
        return None
    if sorted((mapc, mapr, maps)) != [1, 2, 3]:
        raise DataError(f"{path}: axis order MAPC, MAPR, MAPS = {mapc}, {mapr}, {maps} in the header is not a "
                        f"permutation of 1, 2, 3; fix the header (e.g. with mrcfile) or re-export the volume")
    file_axes = (maps, mapr, mapc)  # the physical axis (1 = x, 2 = y, 3 = z) of each array axis
    return tuple(file_axes.index(axis) for axis in (3, 2, 1))


def check_voxel_size(path: str | os.PathLike, expected_voxel_size_nm: float, header=None) -> float:
    """Raise ``DataError`` unless the MRC header of ``path`` stores ``expected_voxel_size_nm``; return it."""
    path = Path(path)
    if header is None:
        header, _ = _read_header(path)
    found = _header_voxel_size_nm(header, path)
    if not math.isclose(found, expected_voxel_size_nm, rel_tol=VOXEL_SIZE_RTOL):
        raise DataError(
            f"{path}: voxel size {found:g} nm in the header, expected {expected_voxel_size_nm:g} nm; "
            f"rescale the volume with a tool of your choice or pass the matching voxel size (mvgtutor never "
            f"resamples silently)"
        )
    return found


def _read_header(path: Path):
    """The header of an MRC file and the byte offset of its data block."""
    if not path.is_file():
        raise DataError(f"{path}: file not found; {_MAKE_DATA_HINT} or check the path")
    try:
        with mrcfile.open(path, mode="r", header_only=True, permissive=False) as mrc:
            header = mrc.header.copy()
    except PermissionError:
        raise DataError(f"{path}: no permission to read it; check the file's permissions") from None
    except (ValueError, OSError, EOFError) as error:
        packed = compression(path)
        what = f"{packed}-compressed MRC file that cannot be read" if packed else "not a readable MRC file"
        raise DataError(f"{path}: {what} ({error}); re-copy or regenerate it") from None
    return header, 1024 + int(header.nsymbt)


def _header_voxel_size_nm(header, path: Path, required: bool = True) -> float | None:
    mx, my, mz = (int(header.mx), int(header.my), int(header.mz))
    cella = header.cella
    sizes = [float(cella.x) / mx if mx else 0.0, float(cella.y) / my if my else 0.0,
             float(cella.z) / mz if mz else 0.0]
    if not all(math.isfinite(s) for s in sizes):
        raise DataError(f"{path}: the MRC header's cell size {sizes} A is not a number; set the voxel size "
                        f"(mrcfile: mrc.voxel_size = A)")
    if min(sizes) <= 0 and not required:
        return None
    if min(sizes) <= 0:
        raise DataError(f"{path}: the MRC header holds no voxel size; set it (mrcfile: mrc.voxel_size = A)")
    if not all(math.isclose(s, sizes[0], rel_tol=VOXEL_SIZE_RTOL) for s in sizes):
        raise DataError(
            f"{path}: anisotropic voxel size {sizes} A; mvgtutor expects cubic voxels, resample the volume first"
        )
    return sizes[0] / ANGSTROM_PER_NM


def check_finite(volume: np.ndarray, path: str | os.PathLike, advice: str) -> None:
    """Raise ``DataError`` naming ``path`` when the float volume ``(Z, Y, X)`` holds NaN or inf (checked in
    chunks, so a memory map is not copied whole); integer volumes pass at once."""
    if volume.dtype.kind not in "fc":
        return
    step = max(1, FINITE_CHECK_VOXELS // max(1, int(np.prod(volume.shape[1:]))))
    for start in range(0, volume.shape[0], step):
        chunk = np.asarray(volume[start:start + step])
        if not np.isfinite(chunk).all():
            bad = int(np.size(chunk) - np.count_nonzero(np.isfinite(chunk)))
            raise DataError(f"{path}: holds NaN or inf voxels ({bad} or more); {advice}")


def _check_voxel_size_value(voxel_size_nm: float, path: Path) -> None:
    if not (isinstance(voxel_size_nm, (int, float)) and math.isfinite(voxel_size_nm) and voxel_size_nm > 0):
        raise DataError(f"{path}: voxel_size_nm must be a positive number of nm, got {voxel_size_nm!r}")


def _as_numpy(array) -> np.ndarray:
    """A numpy view of a numpy array or a (possibly CUDA) torch tensor."""
    if hasattr(array, "detach"):
        array = array.detach().cpu().numpy()
    return np.asarray(array)


# ---------------------------------------------------------------------------------------------- particles
@dataclass(frozen=True)
class Particle:
    """One particle: class name, centre in voxels (x, y, z) and ZXZ Euler angles in degrees.

    The centre sits at ``class_mask[round(z), round(y), round(x)]``.
    """

    class_name: str
    x: float
    y: float
    z: float
    phi: float = 0.0
    theta: float = 0.0
    psi: float = 0.0

    @property
    def label(self) -> int:
        """The class's integer label (``CLASSES[label].name == class_name``)."""
        return class_by_name(self.class_name).label

    @property
    def zyx_index(self) -> tuple[int, int, int]:
        """The nearest voxel ``(z, y, x)``, an index into a ``[z, y, x]`` array."""
        return (int(round(self.z)), int(round(self.y)), int(round(self.x)))


def format_particle_line(particle: Particle) -> str:
    """One ``particle_locations.txt`` line: ``CLASSNAME X Y Z rot1 rot2 rot3``."""
    p = particle
    values = " ".join(f"{v:.10g}" for v in (p.x, p.y, p.z, p.phi, p.theta, p.psi))
    return f"{p.class_name} {values}"


def write_particle_locations(path: str | os.PathLike, particles) -> Path:
    """Write ``particles`` (``Particle``s) as a SHREC ``particle_locations.txt``, atomically."""
    path = Path(path)
    for particle in particles:
        class_by_name(particle.class_name)  # unknown names fail here, not at read time
    with atomic_write(path, "w") as handle:
        handle.writelines(format_particle_line(p) + "\n" for p in particles)
    return path


def read_particle_locations(path: str | os.PathLike) -> list[Particle]:
    """Parse a SHREC ``particle_locations.txt`` (``CLASSNAME X Y Z [rot1 rot2 rot3]`` per line).

    Blank lines and ``#`` comments are skipped. A bad line (unknown class, not 4 or 7 fields, non-numbers)
    raises ``DataError`` naming the file and the line.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found; {_MAKE_DATA_HINT} or check the path")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text (byte {error.start} is {error.object[error.start]:#04x}); "
                        f"save the particle list as plain UTF-8 / ASCII text") from None
    particles = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        where = f"{path}, line {number}"
        if len(fields) not in (4, 7):
            raise DataError(f"{where}: expected 'CLASSNAME X Y Z rot1 rot2 rot3', got {line.strip()!r}")
        try:
            name = class_by_name(fields[0]).name
        except DataError as error:
            raise DataError(f"{where}: {error}") from None
        try:
            values = [float(v) for v in fields[1:]]
        except ValueError:
            raise DataError(f"{where}: coordinates and angles must be numbers, got {line.strip()!r}") from None
        if not all(math.isfinite(v) for v in values):
            raise DataError(f"{where}: coordinates and angles must be finite numbers (no nan / inf), got "
                            f"{line.strip()!r}")
        particles.append(Particle(name, *values))
    return particles


# ------------------------------------------------------------------------------------------ SHREC layout
@dataclass(frozen=True)
class ShrecTomogram:
    """One SHREC 2021 ``model_N`` folder in memory. Volumes are ``(Z, Y, X)`` numpy arrays.

    ``reconstruction`` is float32, ``class_mask`` uint8 (0-15), ``occupancy_mask`` integer instance ids
    (uint8, or int32 beyond 255; None when the file is absent), ``grandmodel`` float32 (None when absent).
    Large reconstructions and grand models come back as read-only memory maps (see ``read_mrc``).
    """

    name: str
    reconstruction: np.ndarray
    class_mask: np.ndarray
    occupancy_mask: np.ndarray | None
    grandmodel: np.ndarray | None
    particles: list[Particle]
    voxel_size_nm: float
    path: Path | None = None  # the model_N folder it was read from

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(Z, Y, X)`` of every volume of the tomogram."""
        return tuple(self.reconstruction.shape)


def write_shrec_tomogram(folder: str | os.PathLike, *, reconstruction, class_mask, occupancy_mask,
                         grandmodel, particles, voxel_size_nm: float) -> Path:
    """Write one tomogram in the SHREC 2021 layout into ``folder`` (created); returns the folder.

    Volumes are ``(Z, Y, X)`` arrays or tensors of one shape. ``class_mask`` holds labels 0-15;
    ``occupancy_mask`` (instance ids) and ``grandmodel`` may be None to skip those files. Each file is
    written atomically; ``particle_locations.txt`` is written last.
    """
    folder = Path(folder)
    reconstruction = _as_numpy(reconstruction)
    volumes = {RECONSTRUCTION: reconstruction, CLASS_MASK: _as_numpy(class_mask)}
    if occupancy_mask is not None:
        volumes[OCCUPANCY_MASK] = _as_numpy(occupancy_mask)
    if grandmodel is not None:
        volumes[GRANDMODEL] = _as_numpy(grandmodel)
    for name, volume in volumes.items():
        if volume.shape != reconstruction.shape:
            raise DataError(f"{folder / name}: shape {volume.shape} differs from the reconstruction's "
                            f"{reconstruction.shape}; all volumes of a tomogram share one grid")
    labels = volumes[CLASS_MASK]
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise DataError(f"{folder / CLASS_MASK}: labels must lie in 0..{NUM_CLASSES - 1}, "
                        f"got {labels.min()}..{labels.max()}")
    _check_particles_inside(particles, reconstruction.shape, folder / PARTICLE_LOCATIONS)
    write_mrc(folder / RECONSTRUCTION, reconstruction.astype(np.float32, copy=False), voxel_size_nm)
    write_mrc(folder / CLASS_MASK, labels.astype(np.int8), voxel_size_nm)  # mode 0: one byte per voxel
    if occupancy_mask is not None:
        write_mrc(folder / OCCUPANCY_MASK, _instance_ids_for_mrc(volumes[OCCUPANCY_MASK], folder),
                  voxel_size_nm)
    if grandmodel is not None:
        write_mrc(folder / GRANDMODEL, volumes[GRANDMODEL].astype(np.float32, copy=False), voxel_size_nm)
    write_particle_locations(folder / PARTICLE_LOCATIONS, particles)
    return folder


def read_shrec_tomogram(folder: str | os.PathLike, expected_voxel_size_nm: float | None = None,
                        mmap: bool | None = None, with_extras: bool = True) -> ShrecTomogram:
    """Read one SHREC 2021 ``model_N`` folder (see the module docstring for its files).

    ``with_extras=False`` skips ``occupancy_mask.mrc`` and ``grandmodel.mrc`` (both None then), which
    training does not need.

    Every MRC header must agree on the voxel size (and with ``expected_voxel_size_nm`` when given).
    In a simulated dataset every file must still match the size and SHA-256 that ``dataset.json`` recorded.
    Raises ``DataError`` naming the file for: a missing required file, a truncated MRC, a wrong dtype
    (complex data, non-integer labels), labels outside 0-15, a shape mismatch, an unknown class name or a
    particle outside the volume.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: tomogram folder not found; {_MAKE_DATA_HINT}")
    verify_tomogram(folder)  # unchanged since simulated (when the dataset's manifest records its files)
    voxel_size_nm = mrc_voxel_size_nm(folder / RECONSTRUCTION)
    if expected_voxel_size_nm is not None:
        check_voxel_size(folder / RECONSTRUCTION, expected_voxel_size_nm)
    reconstruction = _read_image(folder / RECONSTRUCTION, voxel_size_nm, mmap)
    class_mask = _read_labels(folder / CLASS_MASK, voxel_size_nm, reconstruction.shape, mmap)
    if class_mask.size and class_mask.max() >= NUM_CLASSES:
        raise DataError(f"{folder / CLASS_MASK}: labels must lie in 0..{NUM_CLASSES - 1}, "
                        f"found {class_mask.max()}")
    occupancy = None
    if with_extras and (folder / OCCUPANCY_MASK).is_file():
        occupancy = _read_labels(folder / OCCUPANCY_MASK, voxel_size_nm, reconstruction.shape, mmap)
    grandmodel = None
    if with_extras and (folder / GRANDMODEL).is_file():
        grandmodel = _read_image(folder / GRANDMODEL, voxel_size_nm, mmap, shape=reconstruction.shape)
    particles = read_particle_locations(folder / PARTICLE_LOCATIONS)
    _check_particles_inside(particles, reconstruction.shape, folder / PARTICLE_LOCATIONS)
    return ShrecTomogram(name=folder.name, path=folder, reconstruction=reconstruction, class_mask=class_mask,
                         occupancy_mask=occupancy, grandmodel=grandmodel, particles=particles,
                         voxel_size_nm=voxel_size_nm)


def list_tomograms(dataset_dir: str | os.PathLike) -> list[Path]:
    """The ``model_N`` folders of a dataset, in numeric order (``model_2`` before ``model_10``).

    A missing folder, or one without ``model_N`` sub-folders, raises ``DataError`` saying how to make data.
    """
    dataset_dir = Path(dataset_dir)
    if not dataset_dir.is_dir():
        raise DataError(f"{dataset_dir}: dataset folder not found; {_MAKE_DATA_HINT}")
    folders = [p for p in dataset_dir.iterdir() if p.is_dir() and re.fullmatch(r"model_\d+", p.name)]
    if not folders:
        raise DataError(f"{dataset_dir}: no model_N tomogram folders inside; {_MAKE_DATA_HINT}")
    return sorted(folders, key=lambda p: int(p.name.split("_")[1]))


def _read_image(path: Path, voxel_size_nm: float, mmap: bool | None,
                shape: tuple[int, ...] | None = None) -> np.ndarray:
    volume = read_mrc(path, voxel_size_nm, mmap=mmap)
    if volume.dtype.kind not in "fiu":
        raise DataError(f"{path}: wrong dtype {volume.dtype} for a density map; expected real values (float32)")
    _check_shape(path, volume.shape, shape)
    check_finite(volume, path, "re-simulate or re-export the tomogram")
    return volume if volume.dtype == np.float32 else volume.astype(np.float32)


def _read_labels(path: Path, voxel_size_nm: float, shape: tuple[int, ...], mmap: bool | None) -> np.ndarray:
    """An integer volume (labels or instance ids), as uint8 when every value fits, else int32."""
    volume = read_mrc(path, voxel_size_nm, mmap=mmap)
    _check_shape(path, volume.shape, shape)
    if volume.dtype.kind == "f":
        if not np.array_equal(volume, np.round(volume)):
            raise DataError(f"{path}: wrong dtype: holds non-integer values ({volume.dtype}); "
                            f"a mask must hold integer labels")
    elif volume.dtype.kind not in "iu":
        raise DataError(f"{path}: wrong dtype {volume.dtype} for a mask; expected integers")
    if volume.size and volume.min() < 0:
        raise DataError(f"{path}: negative values ({volume.min()}) in a mask; labels and ids start at 0")
    if volume.size == 0 or volume.max() <= np.iinfo(np.uint8).max:
        return volume.astype(np.uint8)
    return volume.astype(np.int32)


def _check_shape(path: Path, shape, expected) -> None:
    if expected is not None and tuple(shape) != tuple(expected):
        raise DataError(f"{path}: shape {tuple(shape)} does not match the reconstruction's {tuple(expected)}; "
                        f"all volumes of a tomogram share one grid")


def _check_particles_inside(particles, shape, path: Path) -> None:
    for particle in particles:
        z, y, x = particle.zyx_index
        if not (0 <= z < shape[0] and 0 <= y < shape[1] and 0 <= x < shape[2]):
            raise DataError(
                f"{path}: {particle.class_name} at X Y Z = {particle.x:g} {particle.y:g} {particle.z:g} lies "
                f"outside the volume (Z, Y, X) = {tuple(shape)}; coordinates must be voxels, not Angstrom"
            )


def _instance_ids_for_mrc(ids: np.ndarray, folder: Path) -> np.ndarray:
    """The smallest MRC dtype that holds the instance ids exactly (int16, uint16 or float32)."""
    top = int(ids.max()) if ids.size else 0
    if ids.size and ids.min() < 0:
        raise DataError(f"{folder / OCCUPANCY_MASK}: instance ids must be >= 0, got {ids.min()}")
    if top <= np.iinfo(np.int16).max:
        return ids.astype(np.int16)
    if top <= np.iinfo(np.uint16).max:
        return ids.astype(np.uint16)
    if top <= 2**24:
        return ids.astype(np.float32)  # exact for integers up to 2^24
    raise DataError(f"{folder / OCCUPANCY_MASK}: {top} instances do not fit an MRC file exactly (max 2^24)")


# ------------------------------------------------------------------------------------------- copick picks
def read_copick_picks(path: str | os.PathLike, voxel_size_nm: float) -> list[Particle]:
    """Read a copick / CZII cryoET-data-portal picks file (JSON, locations in Angstrom) as voxel ``Particle``s.

    The file holds ``{"pickable_object_name": NAME, "unit": "angstrom", "points": [{"location": {"x", "y",
    "z"}, "transformation_": 4x4}, ...], ...}``. Locations are divided by the voxel size (``voxel_size_nm``
    x 10 A). The rotation of ``transformation_`` (identity when absent) becomes ZXZ Euler angles. The class
    name is kept as written (CZII names such as ``apo-ferritin`` are not SHREC classes).
    """
    from scipy.spatial.transform import Rotation

    path = Path(path)
    _check_voxel_size_value(voxel_size_nm, path)
    if not path.is_file():
        raise DataError(f"{path}: picks file not found; check the path")
    try:
        document = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not valid JSON ({error}); expected a copick picks file") from None
    if not isinstance(document, dict) or "points" not in document or "pickable_object_name" not in document:
        raise DataError(f"{path}: not a copick picks file (needs 'pickable_object_name' and 'points')")
    unit = (document.get("unit") or "angstrom").lower()
    if unit != "angstrom":
        raise DataError(f"{path}: unit {unit!r} is not supported; copick picks are stored in 'angstrom'")
    name = str(document["pickable_object_name"])
    angstrom_per_voxel = voxel_size_nm * ANGSTROM_PER_NM
    particles = []
    for index, point in enumerate(document["points"] or []):
        try:
            location = point["location"]
            x, y, z = (float(location[k]) / angstrom_per_voxel for k in ("x", "y", "z"))
            matrix = np.asarray(point.get("transformation_") or np.eye(4), dtype=float)[:3, :3]
            with warnings.catch_warnings():  # theta = 0 is a gimbal lock: psi is set to 0, which is exact
                warnings.simplefilter("ignore", UserWarning)
                phi, theta, psi = Rotation.from_matrix(matrix).as_euler("ZXZ", degrees=True)
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise DataError(f"{path}: point {index} is malformed ({error!r}); each point needs "
                            f"location.x/y/z (Angstrom) and an optional 4x4 transformation_") from None
        if not all(math.isfinite(v) for v in (x, y, z, phi, theta, psi)):
            raise DataError(f"{path}: point {index} has a location or rotation that is not a finite number "
                            f"(nan / inf); fix or drop that point")
        particles.append(Particle(name, x, y, z, float(phi), float(theta), float(psi)))
    return particles


def write_copick_picks(path: str | os.PathLike, particles, voxel_size_nm: float, *, object_name: str,
                       user_id: str = "mvgtutor", session_id: str = "0", run_name: str | None = None) -> Path:
    """Write voxel ``particles`` as a copick picks JSON file (Angstrom), atomically; returns the path."""
    from scipy.spatial.transform import Rotation

    path = Path(path)
    _check_voxel_size_value(voxel_size_nm, path)
    angstrom_per_voxel = voxel_size_nm * ANGSTROM_PER_NM
    points = []
    for instance_id, p in enumerate(particles, start=1):
        transform = np.eye(4)
        transform[:3, :3] = Rotation.from_euler("ZXZ", [p.phi, p.theta, p.psi], degrees=True).as_matrix()
        points.append({
            "location": {"x": p.x * angstrom_per_voxel, "y": p.y * angstrom_per_voxel,
                         "z": p.z * angstrom_per_voxel},
            "transformation_": transform.tolist(),
            "instance_id": instance_id,
            "score": 1.0,
        })
    document = {"pickable_object_name": object_name, "user_id": user_id, "session_id": session_id,
                "run_name": run_name, "voxel_spacing": angstrom_per_voxel, "unit": "angstrom",
                "trust_orientation": True, "points": points}
    with atomic_write(path, "w") as handle:
        json.dump(document, handle, indent=2)
    return path


__all__ = [
    "Particle", "ShrecTomogram", "MrcInfo", "write_mrc", "read_mrc", "read_mrc_info", "mrc_voxel_size_nm",
    "check_voxel_size",
    "write_particle_locations", "read_particle_locations", "format_particle_line",
    "write_shrec_tomogram", "read_shrec_tomogram", "list_tomograms", "read_copick_picks",
    "write_copick_picks",
]
