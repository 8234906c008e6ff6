"""From tomograms to training data: normalisation, 32^3 patches, the split by tomogram, augmentation, datasets.

The pipeline of the paper (Sec. 5.1.1): cut each tomogram into non-overlapping ``patch_size^3`` cubes
(``512^3 -> 16^3 = 4096`` patches), train on the patches of the first tomograms and test on those of the last
``n_test`` ones, so no test patch ever comes from a training tomogram.

**Normalisation** (the same in training and inference, see ``normalize_tomogram``): each whole tomogram is
shifted and scaled to zero mean and unit standard deviation *before* it is cut into patches, so every patch
keeps its contrast relative to its tomogram.

Shapes: a tomogram is ``(Z, Y, X)``; patches are ``(N, p, p, p)`` in the same axis order; a batch is
``images (B, 1, p, p, p)`` float32 and ``labels (B, p, p, p)`` int64, i.e. ``(B, C, D, H, W)`` with D=z,
H=y, W=x.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from mvgtutor.config import DataConfig
from mvgtutor.data.classes import NUM_CLASSES
from mvgtutor.data.formats import ShrecTomogram, list_tomograms, read_shrec_tomogram
from mvgtutor.errors import ConfigError, DataError

NORMALIZATION_EPS = 1e-6  # guards the division for a constant volume


# ------------------------------------------------------------------------------------------ normalisation
def normalize_tomogram(volume) -> torch.Tensor:
    """Zero mean, unit standard deviation over the whole tomogram, as float32. ``(Z, Y, X) -> (Z, Y, X)``.

    Use the same function before training and before inference (statistics over the whole tomogram,
    never per patch).
    """
    if torch.is_tensor(volume):
        volume = volume.to(torch.float32)
    else:
        volume = torch.from_numpy(np.array(volume, dtype=np.float32))  # a private copy: memory maps are read-only
    mean = volume.mean(dtype=torch.float64)
    std = volume.std().to(torch.float64)
    return ((volume - mean) / (std + NORMALIZATION_EPS)).to(torch.float32)


# ----------------------------------------------------------------------------------------------- patches
def patch_grid(shape: Sequence[int], patch_size: int) -> tuple[int, int, int]:
    """How many whole patches fit along z, y and x of a ``(Z, Y, X)`` volume (a remainder is left out)."""
    if patch_size <= 0:
        raise ConfigError(f"patch_size must be a positive integer, got {patch_size}")
    grid = tuple(int(s) // patch_size for s in shape)
    if len(grid) != 3 or min(grid) == 0:
        raise DataError(f"a volume of shape {tuple(shape)} holds no whole {patch_size}^3 patch; "
                        f"use a smaller patch_size or a larger tomogram")
    return grid


def extract_patches(volume, patch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut a ``(Z, Y, X)`` volume into non-overlapping cubes, in z-major order.

    Returns ``patches (N, p, p, p)`` (same dtype) and ``origins (N, 3)`` int64, the ``(z, y, x)`` voxel of
    each patch's first corner. Voxels beyond the last whole patch along an axis are left out.
    """
    if not torch.is_tensor(volume):
        volume = np.asarray(volume)
        volume = torch.from_numpy(volume if volume.flags.writeable else np.array(volume))  # memory maps: copy
    p = patch_size
    nz, ny, nx = patch_grid(volume.shape, p)
    cubes = volume[: nz * p, : ny * p, : nx * p]  # (nz*p, ny*p, nx*p)
    cubes = cubes.reshape(nz, p, ny, p, nx, p)  # (nz, p, ny, p, nx, p)
    cubes = cubes.permute(0, 2, 4, 1, 3, 5)  # (nz, ny, nx, p, p, p)
    patches = cubes.reshape(nz * ny * nx, p, p, p)  # (N, p, p, p)
    grid = torch.stack(torch.meshgrid(torch.arange(nz), torch.arange(ny), torch.arange(nx), indexing="ij"), -1)
    origins = grid.reshape(-1, 3) * p  # (N, 3) as (z, y, x)
    return patches, origins


def assemble_patches(patches: torch.Tensor, grid: Sequence[int]) -> torch.Tensor:
    """Inverse of ``extract_patches`` for a full grid: ``(nz*ny*nx, p, p, p) -> (nz*p, ny*p, nx*p)``."""
    nz, ny, nx = grid
    p = patches.shape[-1]
    if patches.shape[0] != nz * ny * nx:
        raise DataError(f"{patches.shape[0]} patches do not fill a {nz}x{ny}x{nx} grid")
    cubes = patches.reshape(nz, ny, nx, p, p, p)  # (nz, ny, nx, p, p, p)
    cubes = cubes.permute(0, 3, 1, 4, 2, 5)  # (nz, p, ny, p, nx, p)
    return cubes.reshape(nz * p, ny * p, nx * p)


def label_counts(labels: torch.Tensor, num_classes: int = NUM_CLASSES, chunk: int = 2**24) -> torch.Tensor:
    """Voxels per label of integer ``labels`` (any shape, any device): ``(num_classes,)`` int64 on the CPU.

    Counted ``chunk`` voxels at a time, so that a whole training set of uint8 labels (1.2 G voxels at paper scale)
    is never copied to int64 at once.
    """
    flat = labels.reshape(-1)
    counts = torch.zeros(num_classes, dtype=torch.int64)
    for start in range(0, flat.numel(), chunk):
        part = torch.bincount(flat[start:start + chunk].long(), minlength=num_classes)
        if part.numel() > num_classes:
            raise DataError(f"labels hold class {part.numel() - 1}, but there are only {num_classes} classes "
                            f"(0..{num_classes - 1}): check the class mask")
        counts += part.cpu()
    return counts


def non_empty(labels: torch.Tensor) -> torch.Tensor:
    """A boolean mask ``(N,)``: which label patches ``(N, p, p, p)`` hold at least one foreground voxel."""
    return labels.flatten(1).amax(dim=1) > 0


def split_by_tomogram(tomograms: Sequence, n_test: int) -> tuple[list, list]:
    """The first ``len - n_test`` tomograms train, the last ``n_test`` test (the paper: 9 + 1).

    Patches are made per tomogram after this split, so no tomogram contributes to both sets.
    """
    tomograms = list(tomograms)
    if not 1 <= n_test < len(tomograms):
        raise DataError(f"cannot hold out n_test={n_test} of {len(tomograms)} tomograms; need at least one "
                        f"for training and one for testing (simulate more with --n-tomograms)")
    return tomograms[: len(tomograms) - n_test], tomograms[len(tomograms) - n_test:]


# ------------------------------------------------------------------------------------------ augmentation
def augment_patches(images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator,
                    rotate: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Random flips along z, y, x and (``rotate``) quarter turns in the y-x plane, per sample.

    ``images (B, 1, p, p, p)`` and ``labels (B, p, p, p)`` get the same transform, so they stay aligned.
    Flips keep the missing wedge where it is (it is mirror-symmetric); a quarter turn about z swaps x and
    y and so moves it from the x-z to the y-z Fourier plane (chapter 2 discusses this). Draws come from
    ``generator`` (a CPU ``torch.Generator``), so a seed fixes every choice.
    """
    batch = images.shape[0]
    flips = (torch.rand(batch, 3, generator=generator) < 0.5).tolist()  # (B, 3): flip z, y, x?
    turns = torch.randint(0, 4, (batch,), generator=generator).tolist() if rotate else [0] * batch
    augmented_images, augmented_labels = [], []
    for image, label, flip, turn in zip(images, labels, flips, turns):  # image (1, p, p, p), label (p, p, p)
        axes = [axis for axis in range(3) if flip[axis]]
        if axes:
            image, label = image.flip([1 + axis for axis in axes]), label.flip(axes)
        if turn:
            image, label = image.rot90(turn, dims=(2, 3)), label.rot90(turn, dims=(1, 2))  # the (y, x) plane
        augmented_images.append(image)
        augmented_labels.append(label)
    return torch.stack(augmented_images), torch.stack(augmented_labels)  # (B, 1, p, p, p), (B, p, p, p)


# --------------------------------------------------------------------------------------------- datasets
class PatchDataset:
    """All patches of some tomograms in memory, as two tensors on one device, served by index.

    ``images (N, 1, p, p, p)`` float32 (normalised per tomogram), ``labels (N, p, p, p)`` uint8 (int64 when
    served), ``tomogram_index (N,)`` and ``origins (N, 3)`` (``(z, y, x)`` of each patch in its tomogram).
    Batches are slices of these tensors: no DataLoader, no copies from the CPU when the device is cuda.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, tomogram_index: torch.Tensor,
                 origins: torch.Tensor, tomogram_names: Sequence[str]):
        if not (images.shape[0] == labels.shape[0] == tomogram_index.shape[0] == origins.shape[0]):
            raise DataError("images, labels, tomogram_index and origins must have the same length")
        self.images = images
        self.labels = labels
        self.tomogram_index = tomogram_index
        self.origins = origins
        self.tomogram_names = tuple(tomogram_names)

    @classmethod
    def from_tomograms(cls, tomograms: Iterable[ShrecTomogram], patch_size: int, drop_empty: bool = False,
                       device: str | torch.device = "cpu") -> PatchDataset:
        """Normalise each tomogram, cut it into patches, optionally drop background-only ones, stack on ``device``.

        ``tomograms`` may be a generator: one tomogram at a time is held in memory besides the patches.
        """
        images, labels, index, origins, names = [], [], [], [], []
        for number, tomogram in enumerate(tomograms):
            image_patches, where = extract_patches(normalize_tomogram(tomogram.reconstruction), patch_size)
            label_patches, _ = extract_patches(torch.from_numpy(np.asarray(tomogram.class_mask, np.uint8)),
                                               patch_size)
            if drop_empty:
                keep = non_empty(label_patches)
                image_patches, label_patches, where = image_patches[keep], label_patches[keep], where[keep]
            images.append(image_patches.unsqueeze(1).to(device))  # (n, 1, p, p, p)
            labels.append(label_patches.to(device))  # (n, p, p, p)
            index.append(torch.full((len(where),), number, dtype=torch.long, device=device))
            origins.append(where.to(device))
            names.append(tomogram.name)
        if not images:
            raise DataError("no tomograms given to make patches from")
        return cls(torch.cat(images), torch.cat(labels), torch.cat(index), torch.cat(origins), names)

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index) -> tuple[torch.Tensor, torch.Tensor]:
        """``(image (1, p, p, p) float32, label (p, p, p) int64)``; a tensor/slice index gives a batch."""
        return self.images[index], self.labels[index].long()

    @property
    def device(self) -> torch.device:
        return self.images.device

    @property
    def patch_size(self) -> int:
        return int(self.images.shape[-1])

    def to(self, device: str | torch.device) -> PatchDataset:
        """The same dataset on ``device``."""
        return PatchDataset(self.images.to(device), self.labels.to(device), self.tomogram_index.to(device),
                            self.origins.to(device), self.tomogram_names)

    def class_voxel_counts(self, num_classes: int = NUM_CLASSES) -> torch.Tensor:
        """Voxels per label over all patches, ``(num_classes,)`` int64 (for class balance and weights)."""
        return label_counts(self.labels, num_classes)

    def batches(self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None,
                augment: bool = False, rotate: bool = True, drop_last: bool = False,
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(images (B, 1, p, p, p) float32, labels (B, p, p, p) int64)`` on the dataset's device.

        ``shuffle`` and ``augment`` draw from ``generator`` (a CPU ``torch.Generator``; required for them,
        so that runs are reproducible). One pass over the data; the last short batch unless ``drop_last``.
        """
        if batch_size <= 0:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size}")
        if (shuffle or augment) and generator is None:
            raise ConfigError("shuffle and augment need a torch.Generator (generator=torch.Generator()"
                              ".manual_seed(seed)) so that runs are reproducible")
        order = torch.randperm(len(self), generator=generator) if shuffle else torch.arange(len(self))
        stop = len(self) - (len(self) % batch_size if drop_last else 0)
        for start in range(0, stop, batch_size):
            index = order[start: start + batch_size].to(self.device)
            images, labels = self.images[index], self.labels[index].long()
            if augment:
                images, labels = augment_patches(images, labels, generator, rotate=rotate)
            yield images, labels

    def __repr__(self) -> str:
        return (f"PatchDataset({len(self)} patches of {self.patch_size}^3 from {len(self.tomogram_names)} "
                f"tomograms {list(self.tomogram_names)}, device={self.device})")


def load_patch_datasets(dataset_dir: str | os.PathLike, data_config: DataConfig,
                        device: str | torch.device = "cpu") -> tuple[PatchDataset, PatchDataset]:
    """Read the ``model_N`` folders of ``dataset_dir`` and make ``(train, test)`` patch datasets on ``device``.

    The last ``data_config.n_test`` tomograms are the test set. Every MRC header must store
    ``data_config.voxel_size_nm``. ``drop_empty_patches`` applies to the training set only: the test set
    keeps every patch, so it covers its tomograms completely.
    """
    folders = list_tomograms(Path(dataset_dir))
    train_folders, test_folders = split_by_tomogram(folders, data_config.n_test)

    def read(selected):  # one tomogram at a time, without the volumes training does not need
        return (read_shrec_tomogram(f, expected_voxel_size_nm=data_config.voxel_size_nm, with_extras=False)
                for f in selected)

    train = PatchDataset.from_tomograms(read(train_folders), data_config.patch_size,
                                        drop_empty=data_config.drop_empty_patches, device=device)
    test = PatchDataset.from_tomograms(read(test_folders), data_config.patch_size, drop_empty=False,
                                       device=device)
    return train, test


# ------------------------------------------------------------------------------ random, foreground-biased crops
PATCH_SAMPLINGS = ("grid", "foreground")  # TrainConfig.patch_sampling: the paper's fixed grid | random crops
LOCATIONS_PER_CLASS = 10_000  # foreground voxels remembered per class and tomogram (nnU-Net keeps 10k too)


class RandomCrops:
    """Random ``p^3`` crops of whole training tomograms, a share of them forced onto foreground (nnU-Net).

    Each crop comes from a random tomogram. With probability ``foreground_fraction`` it is forced to hold a
    foreground voxel: a class is drawn uniformly from the classes present, then one of its voxels (from up to
    ``LOCATIONS_PER_CLASS`` remembered per class and tomogram), which lands at a uniformly random place inside
    the crop; otherwise the crop's corner is uniform over the tomogram. Rare classes (fiducials, the small
    proteins) are therefore seen far more often than in the fixed grid, whose patches are mostly background.
    ``volumes (T, Z, Y, X)`` float32 (normalised per tomogram), ``labels (T, Z, Y, X)`` uint8.
    ``len()`` is the number of grid patches, so an epoch shows as many samples as the paper's grid would.
    """

    def __init__(self, volumes: torch.Tensor, labels: torch.Tensor, patch_size: int,
                 foreground_fraction: float = 1 / 3, seed: int = 0):
        if volumes.ndim != 4 or labels.shape != volumes.shape:
            raise DataError(f"RandomCrops needs volumes and labels of one shape (T, Z, Y, X); got "
                            f"{tuple(volumes.shape)} and {tuple(labels.shape)}")
        if not 0.0 <= foreground_fraction <= 1.0:
            raise ConfigError(f"foreground_fraction {foreground_fraction} must lie in [0, 1] (nnU-Net: 1/3)")
        self.volumes, self.labels, self.patch_size = volumes, labels, int(patch_size)
        self.foreground_fraction = float(foreground_fraction)
        self.grid_length = len(volumes) * math.prod(patch_grid(volumes.shape[1:], self.patch_size))
        self.locations = self._remember_locations(torch.Generator().manual_seed(seed))

    def _remember_locations(self, generator: torch.Generator) -> dict[int, torch.Tensor]:
        """Per foreground class: ``(n, 4)`` int64 rows ``(tomogram, z, y, x)``, at most ``LOCATIONS_PER_CLASS``
        per tomogram, drawn at random."""
        found: dict[int, list[torch.Tensor]] = {}
        shape = self.labels.shape[1:]
        for number, label in enumerate(self.labels):
            flat = label.reshape(-1)
            where = torch.nonzero(flat > 0).flatten()  # (m,) flat indices of foreground voxels
            values = flat[where].long()
            for cls in values.unique().tolist():
                chosen = where[values == cls]
                if len(chosen) > LOCATIONS_PER_CLASS:
                    chosen = chosen[torch.randperm(len(chosen), generator=generator)[:LOCATIONS_PER_CLASS]]
                z, rest = chosen // (shape[1] * shape[2]), chosen % (shape[1] * shape[2])
                rows = torch.stack([torch.full_like(z, number), z, rest // shape[2], rest % shape[2]], dim=1)
                found.setdefault(cls, []).append(rows)
        return {cls: torch.cat(rows) for cls, rows in sorted(found.items())}

    @classmethod
    def from_tomograms(cls, tomograms: Iterable[ShrecTomogram], patch_size: int, foreground_fraction: float = 1 / 3,
                       seed: int = 0) -> RandomCrops:
        """Normalise each tomogram (as ``PatchDataset`` does) and keep it whole, with its class mask."""
        volumes, labels = [], []
        for tomogram in tomograms:
            volumes.append(normalize_tomogram(tomogram.reconstruction))
            labels.append(torch.from_numpy(np.asarray(tomogram.class_mask, np.uint8)))
        if not volumes:
            raise DataError("no tomograms given to crop from")
        if len({tuple(v.shape) for v in volumes}) != 1:
            raise DataError("foreground crops need tomograms of one size; use patch_sampling='grid' for mixed sizes")
        return cls(torch.stack(volumes), torch.stack(labels), patch_size, foreground_fraction, seed)

    def __len__(self) -> int:
        return self.grid_length

    def corners(self, count: int, generator: torch.Generator) -> torch.Tensor:
        """``(count, 4)`` int64 rows ``(tomogram, z0, y0, x0)``: the first corner of each crop."""
        p, shape = self.patch_size, torch.tensor(self.volumes.shape[1:])
        high = shape - p  # (3,) the largest corner along z, y, x
        tomogram = torch.randint(len(self.volumes), (count,), generator=generator)
        corner = (torch.rand(count, 3, generator=generator) * (high + 1)).long()  # uniform corners
        forced = torch.rand(count, generator=generator) < self.foreground_fraction
        classes = list(self.locations)
        for i in torch.nonzero(forced).flatten().tolist() if classes else []:
            rows = self.locations[classes[int(torch.randint(len(classes), (1,), generator=generator))]]
            t, *voxel = rows[int(torch.randint(len(rows), (1,), generator=generator))].tolist()
            inside = torch.randint(p, (3,), generator=generator)  # where the voxel sits inside the crop
            tomogram[i] = t
            corner[i] = (torch.tensor(voxel) - inside).clamp(min=torch.zeros(3, dtype=torch.long), max=high)
        return torch.cat([tomogram[:, None], corner], dim=1)

    def crops(self, corners: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The crops at ``corners (B, 4)``: ``images (B, 1, p, p, p)`` float32 and ``labels (B, p, p, p)`` uint8."""
        p = self.patch_size
        cut = [(self.volumes[t, z:z + p, y:y + p, x:x + p], self.labels[t, z:z + p, y:y + p, x:x + p])
               for t, z, y, x in corners.tolist()]
        return torch.stack([c[0] for c in cut])[:, None], torch.stack([c[1] for c in cut])

    def sample(self, count: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``count`` random crops: ``images (count, 1, p, p, p)`` float32, ``labels (count, p, p, p)`` uint8."""
        return self.crops(self.corners(count, generator))

    def __repr__(self) -> str:
        return (f"RandomCrops({self.patch_size}^3 crops of {len(self.volumes)} tomograms, "
                f"{self.foreground_fraction:.2f} forced onto foreground, {len(self.locations)} classes present)")


def load_training_crops(dataset_dir: str | os.PathLike, data_config: DataConfig, foreground_fraction: float,
                        seed: int = 0) -> RandomCrops:
    """The training tomograms of ``dataset_dir`` (all but the last ``n_test``) as ``RandomCrops``."""
    folders, _ = split_by_tomogram(list_tomograms(Path(dataset_dir)), data_config.n_test)
    tomograms = (read_shrec_tomogram(f, expected_voxel_size_nm=data_config.voxel_size_nm, with_extras=False)
                 for f in folders)
    return RandomCrops.from_tomograms(tomograms, data_config.patch_size, foreground_fraction, seed)
