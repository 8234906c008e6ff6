"""``python -m mvgtutor info DIR``: what a dataset folder holds (tomograms, shapes, voxel size, particles).

Reads MRC headers and ``particle_locations.txt`` only, so it is instant even for 512^3 tomograms. It checks
what those tell: every volume of a tomogram shares the reconstruction's shape and voxel size, the reconstruction
holds real numbers and the masks integers, and (for a simulated dataset) every file has the size that
``dataset.json`` recorded and no unlisted ``model_N`` folder sits beside them.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from mvgtutor.data.classes import CLASSES
from mvgtutor.data.formats import (CLASS_MASK, GRANDMODEL, OCCUPANCY_MASK, PARTICLE_LOCATIONS, RECONSTRUCTION,
                                   list_tomograms, read_mrc_info, read_particle_locations)
from mvgtutor.data.integrity import verify_dataset
from mvgtutor.errors import DataError

OPTIONAL_FILES = (OCCUPANCY_MASK, GRANDMODEL)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset_dir", metavar="DIR", type=Path,
                        help="a dataset folder holding model_N/ tomogram folders (SHREC 2021 layout)")


def dataset_summary(dataset_dir: str | Path) -> str:
    """A plain-text report of a dataset folder: one row per tomogram, then particles per class."""
    folders = list_tomograms(dataset_dir)
    verify_dataset(dataset_dir, hashes=False)  # sizes against dataset.json, no left-over model_N folders
    rows, counts, voxel_sizes = [], {}, set()
    for folder in folders:
        image = _checked_header(folder, RECONSTRUCTION, "fiu", None)
        _checked_header(folder, CLASS_MASK, "iuf", image)
        for name in OPTIONAL_FILES:
            if (folder / name).is_file():
                _checked_header(folder, name, "fiu", image)
        particles = read_particle_locations(folder / PARTICLE_LOCATIONS)
        counts[folder.name] = Counter(p.class_name for p in particles)
        voxel_sizes.add(round(image.voxel_size_nm, 4))
        extras = [name.removesuffix(".mrc") for name in OPTIONAL_FILES if (folder / name).is_file()]
        rows.append((folder.name, " x ".join(str(n) for n in image.shape), f"{image.voxel_size_nm:g}",
                     str(len(particles)), ", ".join(extras) or "-"))
    lines = [f"Dataset {Path(dataset_dir)}: {len(folders)} tomograms, voxel size "
             f"{', '.join(f'{v:g}' for v in sorted(voxel_sizes))} nm",
             ""]
    lines += _table(("tomogram", "shape (Z x Y x X)", "voxel nm", "particles", "optional volumes"), rows)
    names = [f.name for f in folders]
    class_rows = []
    for particle_class in CLASSES[1:]:
        per_tomogram = [counts[name][particle_class.name] for name in names]
        if sum(per_tomogram):
            class_rows.append((f"{particle_class.label}", particle_class.name,
                               *(str(n) for n in per_tomogram), str(sum(per_tomogram))))
    lines += ["", "Particles per class:"]
    lines += _table(("label", "class", *names, "total"), class_rows)
    return "\n".join(lines)


def _checked_header(folder: Path, name: str, kinds: str, reference):
    """The ``MrcInfo`` of ``folder / name``; its dtype kind must be one of ``kinds`` and, given the
    reconstruction's ``reference``, its shape and voxel size must match it (else ``DataError``)."""
    from mvgtutor.data.formats import VOXEL_SIZE_RTOL

    path = folder / name
    info = read_mrc_info(path)
    if info.dtype.kind not in kinds:
        wanted = "real numbers (float32)" if "f" in kinds and name == RECONSTRUCTION else "integers"
        raise DataError(f"{path}: dtype {info.dtype} in the header, expected {wanted}; re-export the volume")
    if reference is not None:
        if info.shape != reference.shape:
            raise DataError(f"{path}: shape {info.shape} does not match the reconstruction's {reference.shape}")
        if abs(info.voxel_size_nm - reference.voxel_size_nm) > VOXEL_SIZE_RTOL * reference.voxel_size_nm:
            raise DataError(f"{path}: voxel size {info.voxel_size_nm:g} nm, but the reconstruction's is "
                            f"{reference.voxel_size_nm:g} nm; all volumes of a tomogram share one grid")
    return info


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    """Left-aligned text columns."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    return ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip()
            for row in (header, *rows)]


def run(args: argparse.Namespace) -> int:
    print(dataset_summary(args.dataset_dir))
    return 0
