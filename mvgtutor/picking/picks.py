"""A table of particle picks: centres, class names, tomogram names and scores, in one stated unit.

Every table says its unit (``"voxel"`` or ``"angstrom"``) and, when it is in voxels, the voxel size in
Angstrom that relates the two, so that ``to_angstrom`` / ``to_voxels`` never guess. Columns are parallel numpy
arrays; coordinates are ``(N, 3)`` as ``x, y, z`` (the order of ``particle_locations.txt``, STAR and copick),
so a voxel pick at ``x, y, z`` sits at ``volume[round(z), round(y), round(x)]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mvgtutor.errors import DataError, check_choice

UNITS = ("voxel", "angstrom")
ANGSTROM_PER_NM = 10.0


@dataclass(frozen=True)
class Picks:
    """``N`` particle centres. ``xyz (N, 3)`` float64 in ``unit``; ``names (N,)`` class names (str);
    ``tomograms (N,)`` the tomogram (CZII: experiment, copick: run) of each pick; ``scores (N,)`` float
    (1.0 when the source has none). ``voxel_size_angstrom`` relates voxels and Angstrom (None when unknown)."""

    xyz: np.ndarray
    names: np.ndarray
    tomograms: np.ndarray
    scores: np.ndarray
    unit: str
    voxel_size_angstrom: float | None = None

    def __post_init__(self):
        check_choice("unit", self.unit, UNITS)
        xyz = np.asarray(self.xyz, dtype=np.float64).reshape(-1, 3)
        n = len(xyz)
        object.__setattr__(self, "xyz", xyz)
        for column in ("names", "tomograms"):
            values = np.asarray(getattr(self, column), dtype=object).reshape(-1)
            values = np.array([str(v) for v in values], dtype=object)
            object.__setattr__(self, column, values)
        object.__setattr__(self, "scores", np.asarray(self.scores, dtype=np.float64).reshape(-1))
        for column in ("names", "tomograms", "scores"):
            if len(getattr(self, column)) != n:
                raise DataError(f"Picks: {column} has {len(getattr(self, column))} entries for {n} coordinates; "
                                f"give one per pick")
        if not np.all(np.isfinite(xyz)):
            raise DataError("Picks: coordinates must be finite numbers (found NaN or inf)")
        if self.voxel_size_angstrom is not None and not (math.isfinite(self.voxel_size_angstrom)
                                                         and self.voxel_size_angstrom > 0):
            raise DataError(f"Picks: voxel_size_angstrom must be a positive number, got {self.voxel_size_angstrom!r}")

    def __len__(self) -> int:
        return len(self.xyz)

    @classmethod
    def create(cls, xyz, names, *, unit: str, tomogram: str = "tomogram", scores=None,
               voxel_size_angstrom: float | None = None) -> "Picks":
        """Picks of one tomogram: ``xyz (N, 3)`` in ``unit``, ``names`` one per pick or one for all."""
        xyz = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
        n = len(xyz)
        names = [names] * n if isinstance(names, str) else list(names)
        scores = np.ones(n) if scores is None else scores
        return cls(xyz, np.array(names, dtype=object), np.array([tomogram] * n, dtype=object), scores, unit,
                   voxel_size_angstrom)

    @classmethod
    def empty(cls, unit: str, voxel_size_angstrom: float | None = None) -> "Picks":
        """A table with no picks."""
        return cls(np.zeros((0, 3)), [], [], [], unit, voxel_size_angstrom)

    @classmethod
    def from_particles(cls, particles, *, tomogram: str = "tomogram", voxel_size_nm: float | None = None) -> "Picks":
        """Voxel picks from ``mvgtutor.data.formats.Particle`` s (a SHREC ``particle_locations.txt``)."""
        xyz = [[p.x, p.y, p.z] for p in particles]
        size = None if voxel_size_nm is None else voxel_size_nm * ANGSTROM_PER_NM
        return cls.create(np.array(xyz).reshape(-1, 3), [p.class_name for p in particles], unit="voxel",
                          tomogram=tomogram, voxel_size_angstrom=size)

    def to_particles(self) -> list:
        """The voxel picks as ``Particle`` s (angles 0), e.g. for ``write_particle_locations`` or a 3D scene."""
        from mvgtutor.data.formats import Particle

        self._require_unit("voxel", "to_particles")
        return [Particle(str(n), *map(float, p)) for n, p in zip(self.names, self.xyz)]

    def to_angstrom(self, voxel_size_angstrom: float | None = None) -> "Picks":
        """The same picks in Angstrom (``voxel_size_angstrom`` overrides the stored voxel size)."""
        if self.unit == "angstrom":
            return self
        size = self._voxel_size(voxel_size_angstrom, "to_angstrom")
        return Picks(self.xyz * size, self.names, self.tomograms, self.scores, "angstrom", size)

    def to_voxels(self, voxel_size_angstrom: float | None = None) -> "Picks":
        """The same picks in voxels of ``voxel_size_angstrom`` (default: the stored voxel size)."""
        size = self._voxel_size(voxel_size_angstrom, "to_voxels")
        xyz = self.xyz / size if self.unit == "angstrom" else self.xyz * (self.voxel_size_angstrom / size)
        return Picks(xyz, self.names, self.tomograms, self.scores, "voxel", size)

    def select(self, mask) -> "Picks":
        """The picks where the boolean ``mask (N,)`` is true."""
        mask = np.asarray(mask, dtype=bool)
        return Picks(self.xyz[mask], self.names[mask], self.tomograms[mask], self.scores[mask], self.unit,
                     self.voxel_size_angstrom)

    def of_class(self, name: str) -> "Picks":
        """The picks of class ``name``."""
        return self.select(self.names == name)

    def of_tomogram(self, tomogram: str) -> "Picks":
        """The picks of tomogram ``tomogram``."""
        return self.select(self.tomograms == tomogram)

    def renamed(self, mapping: dict[str, str]) -> "Picks":
        """Class names mapped through ``mapping`` (names not in it are kept)."""
        names = np.array([mapping.get(n, n) for n in self.names], dtype=object)
        return Picks(self.xyz, names, self.tomograms, self.scores, self.unit, self.voxel_size_angstrom)

    def with_tomogram(self, tomogram: str) -> "Picks":
        """Every pick assigned to tomogram ``tomogram``."""
        return Picks(self.xyz, self.names, np.array([tomogram] * len(self), dtype=object), self.scores,
                     self.unit, self.voxel_size_angstrom)

    def class_names(self) -> list[str]:
        """The distinct class names, sorted."""
        return sorted(set(self.names))

    def _voxel_size(self, override, what: str) -> float:
        size = override if override is not None else self.voxel_size_angstrom
        if size is None:
            raise DataError(f"Picks.{what}: the voxel size is unknown; pass voxel_size_angstrom (e.g. 10.0 for "
                            f"1 nm voxels)")
        if not (math.isfinite(size) and size > 0):
            raise DataError(f"Picks.{what}: voxel_size_angstrom must be a positive number, got {size!r}")
        return float(size)

    def _require_unit(self, unit: str, what: str) -> None:
        if self.unit != unit:
            raise DataError(f"Picks.{what} needs picks in {unit}s, these are in {self.unit}; convert with "
                            f"to_voxels() / to_angstrom() first")


def concat(tables) -> Picks:
    """One table from several of the same unit (and voxel size, if any)."""
    tables = list(tables)
    if not tables:
        raise DataError("concat: no tables given")
    units = {t.unit for t in tables}
    if len(units) != 1:
        raise DataError(f"concat: tables in different units {sorted(units)}; convert them to one first")
    sizes = {t.voxel_size_angstrom for t in tables if t.voxel_size_angstrom is not None}
    if len(sizes) > 1 and tables[0].unit == "voxel":
        raise DataError(f"concat: voxel tables with different voxel sizes {sorted(sizes)} A; convert to angstrom")
    return Picks(np.concatenate([t.xyz for t in tables]), np.concatenate([t.names for t in tables]),
                 np.concatenate([t.tomograms for t in tables]), np.concatenate([t.scores for t in tables]),
                 tables[0].unit, next(iter(sizes)) if len(sizes) == 1 else None)
