"""Patches, the split by tomogram, augmentation, the in-memory dataset, and the three views' inverses."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from mvgtutor.config import DataConfig
from mvgtutor.data.formats import Particle, write_shrec_tomogram
from mvgtutor.data.patches import (PatchDataset, assemble_patches, augment_patches, extract_patches,
                                   load_patch_datasets, non_empty, normalize_tomogram, split_by_tomogram)
from mvgtutor.errors import ConfigError, DataError
from mvgtutor.model.views import VIEWS, from_view, to_view

P = 8  # a small patch side keeps the tests fast; the logic does not depend on it


def _write_dataset(root, n_tomograms=3, shape=(16, 16, 24), voxel_size_nm=1.0):
    """Tomograms whose image value encodes (tomogram, z, y, x) and whose labels mark one cube each."""
    rng = np.random.default_rng(0)
    for n in range(n_tomograms):
        image = rng.normal(loc=5.0 * n, scale=1.0 + n, size=shape).astype(np.float32)
        labels = np.zeros(shape, np.uint8)
        labels[2:5, 3:6, 1:4] = n + 1  # only the first patch holds foreground
        write_shrec_tomogram(root / f"model_{n}", reconstruction=image, class_mask=labels, occupancy_mask=None,
                             grandmodel=None, particles=[Particle("4V94", 2, 4, 3)],
                             voxel_size_nm=voxel_size_nm)
    return root


def test_normalize_tomogram_gives_zero_mean_unit_std():
    volume = torch.randn(10, 12, 14, generator=torch.Generator().manual_seed(0)) * 7 + 3
    normalized = normalize_tomogram(volume.numpy())
    assert normalized.dtype == torch.float32 and normalized.shape == (10, 12, 14)
    assert float(normalized.mean()) == pytest.approx(0.0, abs=1e-5)
    assert float(normalized.std()) == pytest.approx(1.0, abs=1e-4)
    assert torch.isfinite(normalize_tomogram(torch.ones(4, 4, 4))).all()  # a constant volume


def test_extract_patches_are_non_overlapping_and_invert():
    volume = torch.arange(16 * 24 * 32).reshape(16, 24, 32)
    patches, origins = extract_patches(volume, P)
    assert patches.shape == (2 * 3 * 4, P, P, P) and origins.shape == (24, 3)
    for patch, (z, y, x) in zip(patches, origins.tolist()):
        assert torch.equal(patch, volume[z:z + P, y:y + P, x:x + P])
    assert torch.equal(assemble_patches(patches, (2, 3, 4)), volume)
    all_voxels = torch.cat([p.flatten() for p in patches])
    assert all_voxels.unique().numel() == volume.numel()  # each voxel exactly once: no overlap


def test_extract_patches_drops_the_remainder_and_rejects_small_volumes():
    patches, origins = extract_patches(np.zeros((17, 9, 8), np.float32), P)
    assert patches.shape[0] == 2 and origins[-1].tolist() == [8, 0, 0]
    with pytest.raises(DataError, match="holds no whole 8\\^3 patch"):
        extract_patches(np.zeros((7, 8, 8)), P)


def test_split_by_tomogram_holds_out_the_last():
    train, test = split_by_tomogram(["model_0", "model_1", "model_2"], n_test=1)
    assert train == ["model_0", "model_1"] and test == ["model_2"]
    with pytest.raises(DataError, match="n_test=3 of 3"):
        split_by_tomogram(["a", "b", "c"], n_test=3)


def test_augmentation_keeps_image_and_label_aligned():
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 16, (32, P, P, P), generator=generator)
    images = labels.float().unsqueeze(1) * 10.0 + 0.5  # the image is a known function of the label
    images_aug, labels_aug = augment_patches(images, labels, generator)
    assert torch.equal(images_aug, labels_aug.float().unsqueeze(1) * 10.0 + 0.5)
    assert not torch.equal(labels_aug, labels)  # something moved
    # each sample is one of the 16 flip/turn combinations of its original
    first = labels[0]
    candidates = [first.flip(dims) if dims else first for dims in ([], [0], [1], [2], [0, 1], [0, 2], [1, 2],
                                                                      [0, 1, 2])]
    candidates = [c.rot90(k, (1, 2)) for c in candidates for k in range(4)]
    assert any(torch.equal(labels_aug[0], c) for c in candidates)


def test_augmentation_is_deterministic_and_rotation_can_be_off():
    images = torch.randn(16, 1, P, P, P, generator=torch.Generator().manual_seed(1))
    labels = torch.zeros(16, P, P, P, dtype=torch.long)
    a, _ = augment_patches(images, labels, torch.Generator().manual_seed(5))
    b, _ = augment_patches(images, labels, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    flipped, _ = augment_patches(images, labels, torch.Generator().manual_seed(5), rotate=False)
    for original, out in zip(images, flipped):  # flips only: each output is a flip of its input
        assert any(torch.equal(out, original.flip(d) if d else original)
                   for d in ([], [1], [2], [3], [1, 2], [1, 3], [2, 3], [1, 2, 3]))


def test_views_are_exact_inverses_on_a_patch():
    patch = torch.arange(2 * 1 * 4 * 5 * 6).reshape(2, 1, 4, 5, 6)  # (B, C, D, H, W), all sides distinct
    shapes = {"xy": (4, 5, 6), "yz": (6, 5, 4), "xz": (5, 4, 6)}  # (z, y, x), (x, y, z), (y, z, x)
    for view in VIEWS:
        viewed = to_view(patch, view)
        assert viewed.shape[2:] == shapes[view]
        assert torch.equal(from_view(viewed, view), patch)
        label = patch[:, 0]  # (B, D, H, W)
        assert torch.equal(from_view(to_view(label, view), view), label)


def test_view_axes_mean_what_the_paper_says():
    patch = torch.zeros(1, 1, 4, 5, 6)
    patch[0, 0, 1, 2, 3] = 1.0  # voxel at (z, y, x) = (1, 2, 3)
    # axes mapped by name (H = y, W = x, D = z): the paper's H x D x W is (x | y, z), its D x W x H is (y | z, x)
    assert to_view(patch, "yz")[0, 0, 3, 2, 1] == 1.0  # dims (x, y, z): image plane (y, z)
    assert to_view(patch, "xz")[0, 0, 2, 1, 3] == 1.0  # dims (y, z, x): image plane (z, x)


def test_patch_dataset_batches_cover_every_patch_once(tmp_path):
    root = _write_dataset(tmp_path)
    config = DataConfig(tomogram_size=16, n_tomograms=3, n_test=1, patch_size=P)
    train, test = load_patch_datasets(root, config, device="cpu")
    assert train.tomogram_names == ("model_0", "model_1") and test.tomogram_names == ("model_2",)
    assert len(train) == 2 * 12 and len(test) == 12  # (16/8) * (16/8) * (24/8) patches per tomogram
    image, label = train[0]
    assert image.shape == (1, P, P, P) and image.dtype == torch.float32
    assert label.shape == (P, P, P) and label.dtype == torch.int64
    seen = []
    for images, labels in train.batches(5, shuffle=True, generator=torch.Generator().manual_seed(0)):
        assert images.shape[1:] == (1, P, P, P) and labels.dtype == torch.int64
        seen.append(images)
    assert [len(s) for s in seen] == [5, 5, 5, 5, 4]
    assert sorted(torch.cat(seen).flatten().tolist()) == sorted(train.images.flatten().tolist())
    assert len(list(train.batches(5, drop_last=True))) == 4


def test_train_and_test_never_share_a_tomogram_and_are_normalized_per_tomogram(tmp_path):
    root = _write_dataset(tmp_path)
    train, test = load_patch_datasets(root, DataConfig(n_test=1, patch_size=P))
    assert set(train.tomogram_names).isdisjoint(test.tomogram_names)
    for number in range(len(train.tomogram_names)):
        values = train.images[train.tomogram_index == number]
        assert float(values.mean()) == pytest.approx(0.0, abs=1e-4)
        assert float(values.std()) == pytest.approx(1.0, abs=1e-3)
    assert test.labels.max() == 3 and train.labels.max() == 2  # model_2's label 3 only in the test set


def test_drop_empty_patches_applies_to_training_only(tmp_path):
    root = _write_dataset(tmp_path)
    config = DataConfig(n_test=1, patch_size=P, drop_empty_patches=True)
    train, test = load_patch_datasets(root, config)
    assert len(train) == 2 and non_empty(train.labels).all()
    assert len(test) == 12
    counts = train.class_voxel_counts()
    assert counts.shape == (16,) and counts[1] == counts[2] == 27


def test_load_patch_datasets_checks_the_voxel_size(tmp_path):
    root = _write_dataset(tmp_path, voxel_size_nm=1.0)
    with pytest.raises(DataError, match="voxel size 1 nm.*expected 0.5 nm"):
        load_patch_datasets(root, dataclasses.replace(DataConfig(patch_size=P), voxel_size_nm=0.5))


def test_batches_require_a_generator_for_randomness(tmp_path):
    root = _write_dataset(tmp_path)
    train, _ = load_patch_datasets(root, DataConfig(patch_size=P))
    with pytest.raises(ConfigError, match="torch.Generator"):
        next(train.batches(4, shuffle=True))
    a = [b[0] for b in train.batches(4, shuffle=True, augment=True, generator=torch.Generator().manual_seed(3))]
    b = [b[0] for b in train.batches(4, shuffle=True, augment=True, generator=torch.Generator().manual_seed(3))]
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_dataset_from_tomograms_directly():
    from mvgtutor.data.formats import ShrecTomogram

    tomogram = ShrecTomogram(name="t", path=None, reconstruction=np.ones((8, 8, 16), np.float32),
                             class_mask=np.zeros((8, 8, 16), np.uint8), occupancy_mask=None, grandmodel=None,
                             particles=[], voxel_size_nm=1.0)
    dataset = PatchDataset.from_tomograms([tomogram], P)
    assert len(dataset) == 2 and dataset.origins.tolist() == [[0, 0, 0], [0, 0, 8]]
    assert "2 patches of 8^3" in repr(dataset)


def test_memory_mapped_tomograms_are_copied_not_warned_about(tmp_path):
    import warnings

    from mvgtutor.data.formats import read_mrc, write_mrc

    write_mrc(tmp_path / "v.mrc", np.arange(16 * 16 * 16, dtype=np.float32).reshape(16, 16, 16), 1.0)
    mapped = read_mrc(tmp_path / "v.mrc", mmap=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns when it wraps a read-only array
        normalized = normalize_tomogram(mapped)
        patches, _ = extract_patches(mapped, P)
    assert normalized.shape == (16, 16, 16) and patches.shape == (8, P, P, P)
    assert torch.equal(patches[0], torch.from_numpy(np.array(mapped[:P, :P, :P])))
