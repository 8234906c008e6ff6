"""Whole-tomogram segmentation by overlap-tile inference (the paper's Sec. 5.2, "overlap-tile strategy").

The tomogram is cut into ``tile^3`` windows (32^3, as in training) that overlap by 50%; the model's class
probabilities of each window are weighted by a smooth window (a Gaussian: high in the middle, low at the borders,
where the model sees the least context) and the weighted sums are divided by the summed weights. Window starts
follow MONAI's ``sliding_window_inference`` (the last window is moved back to end at the border), and the
Gaussian is MONAI's (sigma = tile / 8), so both give the same result.

Memory stays bounded for any volume: the tiles are visited in z-major order in fixed-size batches, and only the
rows of probabilities that the current batch writes to live on the device (at most ``tile + stride`` rows while a
batch holds no more tiles than one z-slab); rows that no later window can touch are finished (argmax) and moved
to the output. For a 512^3 tomogram with 16 classes the buffer is at most 16 x 48 x 512 x 512 x 4 B = 0.75 GiB.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from mvgtutor.errors import ConfigError, DataError
from mvgtutor.train.precision import autocast, resolve_precision

WINDOWS = ("gaussian", "hann", "constant")


def window_starts(size: int, tile: int, stride: int) -> list[int]:
    """Start indices of windows of width ``tile`` every ``stride`` voxels along an axis of ``size`` (>= tile).

    As MONAI's ``dense_patch_slices``: starts 0, stride, 2*stride, ... until a window reaches the end; the last
    one is shifted back so that it ends exactly at ``size``.
    """
    count = next(k for k in range(size + 1) if k * stride + tile >= size) + 1
    return [min(k * stride, size - tile) for k in range(count)]


def smooth_window(tile: int, kind: str = "gaussian", device: torch.device | str = "cpu") -> torch.Tensor:
    """The ``(tile, tile, tile)`` weight of one window: "gaussian" (sigma = tile/8), "hann" or "constant".

    Weights are at least 1e-3 (as MONAI) so that every voxel has a positive total weight.
    """
    centred = torch.arange(tile, dtype=torch.float32, device=device) - (tile - 1) / 2
    if kind == "gaussian":
        profile = torch.exp(-centred**2 / (2 * (tile / 8) ** 2))  # 1D Gaussian, peak 1
    elif kind == "hann":
        profile = torch.cos(math.pi * centred / tile) ** 2  # zero just outside the window
    elif kind == "constant":
        profile = torch.ones(tile, device=device)
    else:
        raise ConfigError(f"unknown window {kind!r}: use one of {', '.join(WINDOWS)}")
    weight = profile[:, None, None] * profile[None, :, None] * profile[None, None, :]  # (t, t, t)
    return weight.clamp_min(max(float(weight.min()), 1e-3))


@torch.inference_mode()
def predict_volume(model: nn.Module, volume, *, tile: int = 32, overlap: float = 0.5, batch_size: int = 32,
                   window: str = "gaussian", device: torch.device | str | None = None, precision: str = "auto",
                   output: str = "labels") -> torch.Tensor:
    """Segment a whole normalised tomogram ``volume`` ``(D, H, W)`` with overlapping ``tile^3`` windows.

    ``model`` follows the course's forward contract (``model(x)["logits"]``, ``x`` of shape ``(B, 1, t, t, t)``).
    ``output="labels"`` returns the argmax class per voxel, ``(D, H, W)`` uint8 on the CPU;
    ``output="probabilities"`` returns the blended class probabilities ``(C, D, H, W)`` float32 on the CPU
    (``C`` x the volume's memory: meant for small volumes).
    """
    volume = torch.as_tensor(np.asarray(volume) if not isinstance(volume, torch.Tensor) else volume)
    if volume.ndim != 3 or not volume.is_floating_point():
        raise DataError(f"volume must be a float (D, H, W) tomogram, got {tuple(volume.shape)} {volume.dtype}")
    if not 0 <= overlap < 1:
        raise ConfigError(f"overlap must be in [0, 1), got {overlap}")
    if output not in ("labels", "probabilities"):
        raise ConfigError(f"unknown output {output!r}: use 'labels' or 'probabilities'")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    precision = resolve_precision(precision, device)
    model.eval()
    shape = tuple(volume.shape)
    padding = [side for size in reversed(shape) for side in (0, max(0, tile - size))]  # (W, H, D) pairs
    padded = torch.nn.functional.pad(volume.float(), padding)  # (D', H', W'), each side >= tile
    depth, height, width = padded.shape
    stride = max(1, int(tile * (1 - overlap)))
    z_starts, y_starts, x_starts = (window_starts(s, tile, stride) for s in padded.shape)
    yx_starts = [(y, x) for y in y_starts for x in x_starts]
    weight = smooth_window(tile, window, device)  # (t, t, t)

    tiles = [(z, y, x) for z in z_starts for y in y_starts for x in x_starts]  # z-major order
    labels = torch.empty(shape, dtype=torch.uint8) if output == "labels" else None
    probabilities = None  # (C, D, H, W) on the CPU, for output="probabilities"
    buffer_start = tiles[0][0]  # the buffer holds rows [buffer_start, buffer_start + buffer depth)
    probs_sum = weight_sum = None  # (C, depth, H', W') and (depth, H', W') on the device

    def finish(rows: int) -> None:  # blend the buffer's first ``rows`` rows and move them to the result
        nonlocal probabilities
        z0, z1 = buffer_start, min(buffer_start + rows, shape[0])
        if z1 <= z0:
            return
        blended = probs_sum[:, : z1 - z0, : shape[1], : shape[2]] / weight_sum[: z1 - z0, : shape[1], : shape[2]]
        if output == "labels":
            labels[z0:z1] = blended.argmax(0).to("cpu", torch.uint8)
        else:
            if probabilities is None:
                probabilities = torch.empty((blended.shape[0], *shape), dtype=torch.float32)
            probabilities[:, z0:z1] = blended.float().cpu()

    for first in range(0, len(tiles), batch_size):  # fixed-size batches that may span two z-slabs
        batch = tiles[first:first + batch_size]
        lowest, highest = batch[0][0], batch[-1][0]
        if probs_sum is not None and lowest > buffer_start:  # rows above `lowest` are final
            finish(lowest - buffer_start)
            probs_sum, weight_sum = probs_sum[:, lowest - buffer_start:], weight_sum[lowest - buffer_start:]
            buffer_start = lowest
        rows = padded[lowest:highest + tile].to(device)  # (rows, H', W') the input this batch reads
        windows = torch.stack([rows[z - lowest:z - lowest + tile, y:y + tile, x:x + tile]
                               for z, y, x in batch])[:, None]  # (B, 1, t, t, t)
        with autocast(precision, device):
            logits = model(windows)["logits"]  # (B, C, t, t, t)
        probs = torch.softmax(logits.float(), dim=1) * weight  # (B, C, t, t, t)
        needed = highest + tile - buffer_start  # buffer depth this batch writes to
        if probs_sum is None:
            probs_sum = torch.zeros((probs.shape[1], needed, height, width), device=device)
            weight_sum = torch.zeros((needed, height, width), device=device)
        elif needed > weight_sum.shape[0]:  # grow the buffer downwards (by at most one stride of rows)
            extra = needed - weight_sum.shape[0]
            probs_sum = torch.cat([probs_sum, probs_sum.new_zeros((probs_sum.shape[0], extra, height, width))], 1)
            weight_sum = torch.cat([weight_sum, weight_sum.new_zeros((extra, height, width))], 0)
        for (z, y, x), p in zip(batch, probs):
            probs_sum[:, z - buffer_start:z - buffer_start + tile, y:y + tile, x:x + tile] += p
            weight_sum[z - buffer_start:z - buffer_start + tile, y:y + tile, x:x + tile] += weight
    finish(depth - buffer_start)
    return labels if output == "labels" else probabilities


def predict_tomogram(model: nn.Module, reconstruction, **options) -> torch.Tensor:
    """Normalise a raw ``(Z, Y, X)`` reconstruction exactly as for training, then ``predict_volume`` it.

    ``options`` are ``predict_volume``'s keywords (tile, overlap, batch_size, window, device, precision, output).
    """
    from mvgtutor.data.patches import normalize_tomogram

    return predict_volume(model, normalize_tomogram(reconstruction), **options)
