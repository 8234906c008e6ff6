"""VoxResNet (Chen et al. 2018): residual 3D convolutions with deep supervision at four scales.

The network keeps full resolution in its stem, halves it three times with strided convolutions, and lets every
scale vote: each scale has its own classifier, upsampled back to the input grid by a transposed convolution; the
four votes are summed into the logits (the paper's "auxiliary classifiers").
"""

from __future__ import annotations

import torch
from torch import nn


def conv_bn_relu(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """3x3x3 convolution, batch norm, ReLU (the bias is dropped: the norm re-centres anyway)."""
    return nn.Sequential(
        nn.Conv3d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm3d(out_channels),
        nn.ReLU(inplace=True),
    )


class VoxRes(nn.Module):
    """One VoxRes module: BN-ReLU-Conv-BN-ReLU-Conv plus the identity (pre-activation residual block)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm3d(channels), nn.ReLU(inplace=True),
            nn.Conv3d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm3d(channels), nn.ReLU(inplace=True),
            nn.Conv3d(channels, channels, 3, padding=1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, D, H, W) -> (B, C, D, H, W)."""
        return x + self.body(x)


class VoxResNet(nn.Module):
    """VoxResNet for ``(B, in_channels, D, H, W)`` patches whose sides are divisible by 8.

    ``width`` is the channel count of the full-resolution stem; the three lower scales use ``2 * width``.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 16, width: int = 32):
        super().__init__()
        wide = 2 * width
        self.stem = nn.Sequential(conv_bn_relu(in_channels, width), conv_bn_relu(width, width))
        self.stages = nn.ModuleList([
            nn.Sequential(conv_bn_relu(width, wide, stride=2), VoxRes(wide), VoxRes(wide)),
            nn.Sequential(conv_bn_relu(wide, wide, stride=2), VoxRes(wide), VoxRes(wide)),
            nn.Sequential(conv_bn_relu(wide, wide, stride=2), VoxRes(wide), VoxRes(wide)),
        ])
        self.classifiers = nn.ModuleList([nn.Conv3d(width, num_classes, 1)])
        for level in range(1, 4):  # scale 2^level: a transposed conv brings the vote back to full size
            factor = 2 ** level
            self.classifiers.append(nn.ConvTranspose3d(wide, num_classes, factor, stride=factor))
        self.num_classes = num_classes

    @torch.no_grad()
    def init_class_prior(self, log_prior: torch.Tensor) -> None:
        """Start the summed votes at ``log_prior (num_classes,)``: each classifier's bias is an equal share of it
        (``mvgtutor.train.prior``)."""
        for classifier in self.classifiers:
            classifier.bias.copy_(log_prior / len(self.classifiers))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, C_in, D, H, W) -> {"logits": (B, num_classes, D, H, W)}."""
        features = [self.stem(x)]  # (B, width, D, H, W)
        for stage in self.stages:
            features.append(stage(features[-1]))  # (B, 2*width, D/2^k, H/2^k, W/2^k)
        logits = sum(head(f) for head, f in zip(self.classifiers, features))
        return {"logits": logits}
