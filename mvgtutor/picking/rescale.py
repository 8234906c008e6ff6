"""Tomograms at any voxel size, brought to the model's grid explicitly (never silently).

The course's models were trained on 1 nm voxels (SHREC 2021's). A tomogram at another voxel size is resampled
by **Fourier cropping or zero-padding**: its spectrum is cut (or padded) to the frequencies that the target grid
holds, so that down-sampling removes the frequencies the coarser grid cannot represent (no aliasing) instead of
skipping voxels. Voxel ``i`` of either grid sits at ``i x voxel size`` from the same origin, so a position in
Angstrom is the same in both; voxel coordinates scale by ``source / target``.
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch

from mvgtutor.errors import DataError


def rescaled_shape(shape, source_voxel_size_nm: float, target_voxel_size_nm: float) -> tuple[int, int, int]:
    """The ``(Z, Y, X)`` shape that covers the same field of view at the target voxel size (rounded)."""
    factor = source_voxel_size_nm / target_voxel_size_nm
    return tuple(max(1, int(round(s * factor))) for s in shape)


def rescale_volume(volume, source_voxel_size_nm: float, target_voxel_size_nm: float = 1.0) -> np.ndarray:
    """Resample a ``(Z, Y, X)`` volume from ``source_voxel_size_nm`` to ``target_voxel_size_nm`` by Fourier
    cropping (coarser target) or zero-padding (finer); the mean density is kept. Returns float32 ``(Z', Y', X')``
    with ``Z' = round(Z x source / target)`` (``rescaled_shape``)."""
    for value, name in ((source_voxel_size_nm, "source_voxel_size_nm"), (target_voxel_size_nm, "target_voxel_size_nm")):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise DataError(f"{name} must be a positive number of nm, got {value!r}")
    array = np.asarray(volume.detach().cpu().numpy() if hasattr(volume, "detach") else volume, dtype=np.float32)
    if array.ndim != 3:
        raise DataError(f"rescale_volume: expected a (Z, Y, X) volume, got shape {array.shape}")
    new_shape = rescaled_shape(array.shape, source_voxel_size_nm, target_voxel_size_nm)
    if new_shape == array.shape:
        return array.copy()
    spectrum = torch.fft.fftshift(torch.fft.fftn(torch.from_numpy(array).double()))  # (Z, Y, X), centred
    out = torch.zeros(new_shape, dtype=spectrum.dtype)
    src, dst = [], []
    for old, new in zip(array.shape, new_shape):
        keep = min(old, new)
        src.append(slice(old // 2 - keep // 2, old // 2 - keep // 2 + keep))
        dst.append(slice(new // 2 - keep // 2, new // 2 - keep // 2 + keep))
    out[tuple(dst)] = spectrum[tuple(src)]
    result = torch.fft.ifftn(torch.fft.ifftshift(out)).real * (np.prod(new_shape) / np.prod(array.shape))
    return result.float().numpy()


def read_mrc_at(path: str | os.PathLike, target_voxel_size_nm: float = 1.0, *,
                expected_voxel_size_nm: float | None = None) -> tuple[np.ndarray, float]:
    """Read an MRC tomogram at whatever voxel size its header states and resample it to
    ``target_voxel_size_nm``; returns ``(volume (Z', Y', X') float32, the file's voxel size in nm)``.

    The header's voxel size is always read and checked (a header without one is a ``DataError``, as is a
    mismatch with ``expected_voxel_size_nm`` when given).
    """
    from mvgtutor.data.formats import mrc_voxel_size_nm, read_mrc

    source = mrc_voxel_size_nm(path)
    volume = read_mrc(path, expected_voxel_size_nm=expected_voxel_size_nm, mmap=False)
    if volume.dtype.kind not in "fiu":
        raise DataError(f"{path}: dtype {volume.dtype} is not a density map; expected real values")
    if math.isclose(source, target_voxel_size_nm, rel_tol=1e-3):
        return np.asarray(volume, dtype=np.float32), source
    return rescale_volume(volume, source, target_voxel_size_nm), source
