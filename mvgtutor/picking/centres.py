"""From a segmentation to particle centres, one class per pick.

Two methods:

* ``picks_from_labels`` (the default, ours): connected components of each class in the argmax label volume;
  a component of at least ``min_size`` voxels gives one pick at its centre of mass, with its size as the score.
  The minimum size removes specks of noise; a sensible one per class is a fraction of the particle's volume
  (``min_sizes_from_diameters``: ``fraction x`` the volume of the class's equivalent sphere).
* ``picks_from_probabilities`` (the alternative): local maxima of each class's probability map, at least
  ``min_distance`` voxels apart and above ``threshold``; the probability at the peak is the score. It can
  separate two touching particles of one class that a connected component would merge.

Both return ``Picks`` in voxels (``x, y, z``) of the volume they were given.
"""

from __future__ import annotations

import math

import numpy as np

from mvgtutor.data.classes import CLASSES
from mvgtutor.errors import ConfigError, DataError
from mvgtutor.picking.picks import ANGSTROM_PER_NM, Picks

SKIP_LABELS = (0,)  # background never gives picks


def sphere_volume_voxels(diameter_nm: float, voxel_size_nm: float) -> float:
    """The volume in voxels of a sphere of ``diameter_nm``."""
    return math.pi / 6 * (diameter_nm / voxel_size_nm) ** 3


def min_sizes_from_diameters(voxel_size_nm: float = 1.0, fraction: float = 0.1, floor: int = 4,
                             default: int = 20) -> dict[int, int]:
    """``{label: minimum component size in voxels}``: ``fraction`` of each protein's equivalent-sphere volume
    (``CLASSES[label].diameter_nm``), at least ``floor``; classes without a diameter (vesicle, fiducial) get
    ``default``."""
    sizes = {}
    for c in CLASSES[1:]:
        if c.diameter_nm is None:
            sizes[c.label] = default
        else:
            sizes[c.label] = max(floor, int(round(fraction * sphere_volume_voxels(c.diameter_nm, voxel_size_nm))))
    return sizes


def picks_from_labels(labels, *, min_size: int | dict[int, int] = 10, classes=None, connectivity: int = 1,
                      tomogram: str = "tomogram", voxel_size_nm: float | None = None,
                      names=None) -> Picks:
    """Particle centres from a label volume ``(Z, Y, X)`` (integers, 0 = background).

    Each connected component (``connectivity`` 1: faces, 2: edges, 3: corners) of one class with at least
    ``min_size`` voxels (an int, or ``{label: size}``) becomes a pick at its centre of mass, scored by its size
    in voxels. ``classes``: the labels to pick (default every label present but 0). ``names``: label -> class
    name (default ``CLASSES[label].name``). Returns voxel ``Picks`` sorted by class, then z, y, x.
    """
    from scipy import ndimage

    labels = _as_numpy(labels)
    if labels.ndim != 3 or labels.dtype.kind not in "iub":
        raise DataError(f"labels must be an integer (Z, Y, X) volume, got shape {labels.shape} {labels.dtype}")
    if connectivity not in (1, 2, 3):
        raise ConfigError(f"connectivity must be 1, 2 or 3, got {connectivity}")
    present = [int(v) for v in np.unique(labels) if int(v) not in SKIP_LABELS]
    chosen = present if classes is None else [c for c in present if c in set(int(c) for c in classes)]
    structure = ndimage.generate_binary_structure(3, connectivity)
    xyz, out_names, scores = [], [], []
    for label in chosen:
        components, count = ndimage.label(labels == label, structure=structure)
        if count == 0:
            continue
        sizes = np.bincount(components.ravel(), minlength=count + 1)[1:]  # (count,)
        keep = np.flatnonzero(sizes >= _min_size(min_size, label)) + 1
        if len(keep) == 0:
            continue
        centres = np.array(ndimage.center_of_mass(np.ones_like(components, dtype=np.float32), components, keep))
        centres = centres.reshape(-1, 3)[:, ::-1]  # (k, 3) z y x -> x y z
        order = np.lexsort((centres[:, 0], centres[:, 1], centres[:, 2]))
        xyz.append(centres[order])
        out_names += [_name(label, names)] * len(keep)
        scores.append(sizes[keep - 1][order].astype(np.float64))
    return _picks(xyz, out_names, scores, tomogram, voxel_size_nm)


def picks_from_probabilities(probabilities, *, min_distance: int | dict[int, int] = 3, threshold: float = 0.5,
                             classes=None, tomogram: str = "tomogram", voxel_size_nm: float | None = None,
                             names=None) -> Picks:
    """Particle centres as local maxima of class probabilities ``(C, Z, Y, X)`` (e.g. ``predict_volume(...,
    output="probabilities")``).

    A voxel is a pick of class ``c`` when its probability is above ``threshold``, is the largest within a cube
    of side ``2 min_distance + 1`` (an int or ``{label: voxels}``; about a particle's radius) and class ``c``
    wins the argmax there. Plateaus give one pick (the first voxel in z, y, x order). Scores are the peak
    probabilities. ``classes`` default to every channel but 0.
    """
    from scipy import ndimage

    probabilities = _as_numpy(probabilities)
    if probabilities.ndim != 4 or probabilities.dtype.kind != "f":
        raise DataError(f"probabilities must be a float (C, Z, Y, X) array, got shape {probabilities.shape}")
    winner = probabilities.argmax(0)  # (Z, Y, X)
    chosen = range(1, probabilities.shape[0]) if classes is None else [int(c) for c in classes]
    xyz, out_names, scores = [], [], []
    for label in chosen:
        p = probabilities[label]
        size = 2 * _min_size(min_distance, label) + 1
        peaks = (p == ndimage.maximum_filter(p, size=size, mode="constant", cval=-1.0)) & (p > threshold)
        peaks &= winner == label
        zyx = np.argwhere(peaks)  # (k, 3) in z, y, x order
        zyx = _one_per_plateau(zyx, size)
        xyz.append(zyx[:, ::-1].astype(np.float64))
        out_names += [_name(label, names)] * len(zyx)
        scores.append(p[tuple(zyx.T)].astype(np.float64) if len(zyx) else np.zeros(0))
    return _picks(xyz, out_names, scores, tomogram, voxel_size_nm)


def _one_per_plateau(zyx: np.ndarray, size: int) -> np.ndarray:
    """Drop peaks closer than the filter's reach to an earlier one (equal maxima on a plateau)."""
    if len(zyx) < 2:
        return zyx
    from scipy.spatial import cKDTree

    keep = np.ones(len(zyx), dtype=bool)
    tree = cKDTree(zyx)
    for i, j in sorted(tree.query_pairs(r=(size // 2) * math.sqrt(3))):
        if keep[i] and np.max(np.abs(zyx[i] - zyx[j])) <= size // 2:
            keep[j] = False
    return zyx[keep]


def _picks(xyz, names, scores, tomogram, voxel_size_nm) -> Picks:
    size = None if voxel_size_nm is None else voxel_size_nm * ANGSTROM_PER_NM
    if not names:
        return Picks.empty("voxel", size).with_tomogram(tomogram)
    return Picks.create(np.concatenate(xyz), names, unit="voxel", tomogram=tomogram, scores=np.concatenate(scores),
                        voxel_size_angstrom=size)


def _min_size(value, label: int) -> int:
    if isinstance(value, dict):
        return int(value.get(label, 1))
    return int(value)


def _name(label: int, names) -> str:
    if names is not None:
        return str(names[label])
    if not 0 <= label < len(CLASSES):
        raise DataError(f"label {label} is not a SHREC class; pass names={{label: name}}")
    return CLASSES[label].name


def _as_numpy(array) -> np.ndarray:
    if hasattr(array, "detach"):
        array = array.detach().cpu().numpy()
    return np.asarray(array)
