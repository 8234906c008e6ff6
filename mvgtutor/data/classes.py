"""The 16 labels of SHREC 2021: background, 13 proteins, vesicle and gold fiducial.

Label ``i`` is ``CLASSES[i]``. Sizes are equivalent-sphere diameters in nm (SHREC 2021 paper, Gubins et al.).
Colours are one shared map for every figure and 3D scene of the course.
"""

from __future__ import annotations

from dataclasses import dataclass

from mvgtutor.errors import DataError


@dataclass(frozen=True)
class ParticleClass:
    """One label: its integer id, SHREC name (PDB id for proteins), size and display colour."""

    label: int
    name: str
    kind: str  # "background" | "protein" | "vesicle" | "fiducial"
    diameter_nm: float | None  # equivalent-sphere diameter (proteins); None where it varies
    color: str  # hex RGB used by every plot


CLASSES: tuple[ParticleClass, ...] = (
    ParticleClass(0, "background", "background", None, "#000000"),
    ParticleClass(1, "4V94", "protein", 16.6, "#e6194b"),
    ParticleClass(2, "4CR2", "protein", 18.5, "#3cb44b"),
    ParticleClass(3, "1QVR", "protein", 12.0, "#ffe119"),
    ParticleClass(4, "1BXN", "protein", 11.1, "#f58231"),
    ParticleClass(5, "3CF3", "protein", 11.3, "#911eb4"),
    ParticleClass(6, "1U6G", "protein", 11.0, "#42d4f4"),
    ParticleClass(7, "3D2F", "protein", 11.0, "#f032e6"),
    ParticleClass(8, "2CG9", "protein", 10.1, "#bfef45"),
    ParticleClass(9, "3H84", "protein", 7.8, "#fabed4"),
    ParticleClass(10, "3GL1", "protein", 8.0, "#469990"),
    ParticleClass(11, "3QM1", "protein", 5.7, "#dcbeff"),
    ParticleClass(12, "1S3X", "protein", 6.5, "#9a6324"),
    ParticleClass(13, "5MRC", "protein", 24.0, "#4363d8"),
    ParticleClass(14, "vesicle", "vesicle", None, "#aaffc3"),
    ParticleClass(15, "fiducial", "fiducial", None, "#ffd8b1"),
)

NUM_CLASSES = len(CLASSES)
CLASS_NAMES: tuple[str, ...] = tuple(c.name for c in CLASSES)
PROTEIN_CLASSES: tuple[ParticleClass, ...] = tuple(c for c in CLASSES if c.kind == "protein")
FOREGROUND_LABELS: tuple[int, ...] = tuple(range(1, NUM_CLASSES))
_BY_NAME = {c.name.lower(): c for c in CLASSES}


def class_by_name(name: str) -> ParticleClass:
    """The class called ``name`` (case-insensitive: ``"5mrc"``, ``"vesicle"``, ``"fiducial"``)."""
    try:
        return _BY_NAME[name.strip().lower()]
    except KeyError:
        raise DataError(
            f"unknown class name {name!r}: expected one of {', '.join(CLASS_NAMES[1:])}"
        ) from None


def largest_proteins(n: int = 5) -> tuple[ParticleClass, ...]:
    """The ``n`` largest proteins by diameter (5MRC, 4CR2, 4V94, 1QVR, 3CF3 for n=5)."""
    return tuple(sorted(PROTEIN_CLASSES, key=lambda c: -c.diameter_nm)[:n])
