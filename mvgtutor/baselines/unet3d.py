"""A small DeepFinder-style 3D U-Net (Moebel et al. 2021; Cicek et al. 2016).

Two 3x3x3 conv-ReLU layers per level, max-pooling down, transposed convolutions up, and skip connections that
concatenate the encoder's features with the decoder's at each scale. DeepFinder used widths (32, 48, 64).
"""

from __future__ import annotations

import torch
from torch import nn


def double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two 3x3x3 convolutions with batch norm and ReLU: (B, in, D, H, W) -> (B, out, D, H, W)."""
    return nn.Sequential(
        nn.Conv3d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm3d(out_channels), nn.ReLU(inplace=True),
        nn.Conv3d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm3d(out_channels), nn.ReLU(inplace=True),
    )


class UNet3D(nn.Module):
    """3D U-Net with ``len(widths) - 1`` poolings; input sides must be divisible by ``2 ** (len(widths) - 1)``."""

    def __init__(self, in_channels: int = 1, num_classes: int = 16, widths: tuple[int, ...] = (32, 48, 64)):
        super().__init__()
        self.down = nn.ModuleList()
        previous = in_channels
        for width in widths:
            self.down.append(double_conv(previous, width))
            previous = width
        self.pool = nn.MaxPool3d(2)
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for width in reversed(widths[:-1]):
            self.up.append(nn.ConvTranspose3d(previous, width, 2, stride=2))
            self.merge.append(double_conv(2 * width, width))
            previous = width
        self.head = nn.Conv3d(previous, num_classes, 1)
        self.num_classes = num_classes

    @torch.no_grad()
    def init_class_prior(self, log_prior: torch.Tensor) -> None:
        """Start the head's bias at ``log_prior (num_classes,)`` (``mvgtutor.train.prior``)."""
        self.head.bias.copy_(log_prior)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, C_in, D, H, W) -> {"logits": (B, num_classes, D, H, W)}."""
        skips = []
        for level, block in enumerate(self.down):
            x = block(x if level == 0 else self.pool(x))  # (B, widths[level], D/2^level, ...)
            skips.append(x)
        skips.pop()  # the bottleneck is x itself
        for up, merge in zip(self.up, self.merge):
            x = up(x)  # (B, width, 2x the previous size)
            x = merge(torch.cat([skips.pop(), x], dim=1))  # (B, width, ...)
        return {"logits": self.head(x)}
