"""Small fixtures shared by the training, evaluation and CLI tests: a tiny SHREC-layout dataset and a tiny model."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mvgtutor.config import make_profile
from mvgtutor.data.formats import Particle, write_shrec_tomogram


def write_tiny_dataset(folder: Path, n_tomograms: int = 3, size: int = 32, seed: int = 0) -> Path:
    """``n_tomograms`` random ``size^3`` tomograms with a bright cube of label 14 and a dark one of label 3."""
    rng = np.random.default_rng(seed)
    for index in range(n_tomograms):
        labels = np.zeros((size, size, size), np.uint8)
        labels[4:12, 4:12, 4:12] = 14
        labels[18:24, 16:26, 8:14] = 3
        image = rng.normal(0, 1, labels.shape).astype(np.float32) + 2.0 * (labels == 14) - 2.0 * (labels == 3)
        write_shrec_tomogram(folder / f"model_{index}", reconstruction=image, class_mask=labels,
                             occupancy_mask=None, grandmodel=None,
                             particles=[Particle("vesicle", 8, 8, 8, 0, 0, 0)], voxel_size_nm=1.0)
    return folder


def tiny_profile():
    """The test profile with a 32^3 tomogram grid: 1 patch per tomogram."""
    profile = make_profile("test")
    return dataclasses.replace(profile, data=dataclasses.replace(profile.data, tomogram_size=32))


class PointwiseNet(nn.Module):
    """A per-voxel two-layer network with no batch statistics: its gradient over a batch is an exact mean."""

    def __init__(self, num_classes: int = 16):
        super().__init__()
        self.hidden = nn.Conv3d(1, 4, 1)
        self.out = nn.Conv3d(4, num_classes, 1)

    def forward(self, x: torch.Tensor) -> dict:
        return {"logits": self.out(torch.tanh(self.hidden(x)))}


def cross_entropy(outputs: dict, target: torch.Tensor, config) -> tuple[torch.Tensor, dict]:
    """Plain cross-entropy with the ``(loss, parts)`` return of ``segmentation_loss``."""
    loss = F.cross_entropy(outputs["logits"], target)
    return loss, {"ce_fused": loss.detach()}


def random_patches(count: int, size: int = 16, seed: int = 0):
    """Images ``(count, 1, s, s, s)`` and labels ``(count, s, s, s)`` that depend on the image (learnable)."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(count, 1, size, size, size, generator=generator)
    labels = (images[:, 0] > 0.5).to(torch.uint8) + 2 * (images[:, 0] < -1).to(torch.uint8)
    return images, labels
