"""``python -m mvgtutor info DIR``: what a dataset folder holds (tomograms, shapes, voxel size, particles).

Reads MRC headers and ``particle_locations.txt`` only, so it is instant even for 512^3 tomograms.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from mvgtutor.data.classes import CLASSES
from mvgtutor.data.formats import (CLASS_MASK, GRANDMODEL, OCCUPANCY_MASK, PARTICLE_LOCATIONS, RECONSTRUCTION,
                                   list_tomograms, read_mrc_info, read_particle_locations)
from mvgtutor.errors import DataError

OPTIONAL_FILES = (OCCUPANCY_MASK, GRANDMODEL)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset_dir", metavar="DIR", type=Path,
                        help="a dataset folder holding model_N/ tomogram folders (SHREC 2021 layout)")


def dataset_summary(dataset_dir: str | Path) -> str:
    """A plain-text report of a dataset folder: one row per tomogram, then particles per class."""
    folders = list_tomograms(dataset_dir)
    rows, counts, voxel_sizes = [], {}, set()
    for folder in folders:
        image = read_mrc_info(folder / RECONSTRUCTION)
        labels = read_mrc_info(folder / CLASS_MASK)
        if labels.shape != image.shape:
            raise DataError(f"{folder / CLASS_MASK}: shape {labels.shape} does not match the reconstruction's "
                            f"{image.shape}")
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


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    """Left-aligned text columns."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    return ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip()
            for row in (header, *rows)]


def run(args: argparse.Namespace) -> int:
    print(dataset_summary(args.dataset_dir))
    return 0
