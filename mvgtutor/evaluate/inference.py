"""Whole-tomogram segmentation by overlap-tile inference (the paper's Sec. 5.2, "overlap-tile strategy").

The tomogram is cut into ``tile^3`` windows (32^3, as in training) that overlap by 50%; the model's class
probabilities of each window are weighted by a smooth window (a Gaussian: high in the middle, low at the borders,
where the model sees the least context) and the weighted sums are divided by the summed weights. Window starts
follow MONAI's ``sliding_window_inference`` (the last window is moved back to end at the border), and the
Gaussian is MONAI's (sigma = tile / 8), so both give the same result.

Memory stays bounded for any volume: the tiles are visited in z-major order in fixed-size batches, and the running
sums live on the device in a band of rows: the whole volume when it fits in ``buffer_bytes`` (2 GiB by default:
a 160^3 tomogram, 16 classes, needs 0.26 GiB), else the largest band that fits. When a batch reaches below the
band, the rows above that batch are final: they are blended, turned into labels and moved to the CPU, and the band
moves down. A 512^3 tomogram needs 17 x 512 x 512 x 4 B = 17 MiB per row: 2 GiB hold 120 rows, and the band
moves about every 5 slabs of windows. For labels, the sums need no division: the summed weight is the same for
every class of a voxel, so the argmax of the sums is the argmax of the blend.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from mvgtutor.errors import ConfigError, DataError, check_choice
from mvgtutor.runtime.layout import memory_format_for
from mvgtutor.runtime.precision import autocast, resolve_precision

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
                   output: str = "labels", buffer_bytes: int = 2 * 2**30,
                   memory_format: str = "channels_last") -> torch.Tensor:
    """Segment a whole normalised tomogram ``volume`` ``(D, H, W)`` with overlapping ``tile^3`` windows.

    ``model`` follows the course's forward contract (``model(x)["logits"]``, ``x`` of shape ``(B, 1, t, t, t)``).
    ``output="labels"`` returns the argmax class per voxel, ``(D, H, W)`` uint8 on the CPU;
    ``output="probabilities"`` returns the blended class probabilities ``(C, D, H, W)`` float32 on the CPU
    (``C`` x the volume's memory: meant for small volumes).
    The running sums live on ``device``: every row of the volume when they fit in ``buffer_bytes`` (default
    2 GiB), else a band of rows that slides down the volume (see the module docstring). The model runs in
    ``memory_format`` ("channels_last", faster on CPUs and GPUs alike, or "channels_first") and is given back in
    its own layout (``mvgtutor.runtime.layout.memory_format_for``).
    """
    volume = torch.as_tensor(np.asarray(volume) if not isinstance(volume, torch.Tensor) else volume)
    if volume.ndim != 3 or not volume.is_floating_point():
        raise DataError(f"volume must be a float (D, H, W) tomogram, got {tuple(volume.shape)} {volume.dtype}")
    if not 0 <= overlap < 1:
        raise ConfigError(f"overlap must be in [0, 1), got {overlap}")
    if output not in ("labels", "probabilities"):
        raise ConfigError(f"unknown output {output!r}: use 'labels' or 'probabilities'")
    check_choice("memory_format", memory_format, ("channels_first", "channels_last"))
    device = torch.device(device) if device is not None else next(model.parameters()).device
    precision = resolve_precision(precision, device)
    model.eval()
    shape = tuple(volume.shape)
    padding = [side for size in reversed(shape) for side in (0, max(0, tile - size))]  # (W, H, D) pairs
    padded = torch.nn.functional.pad(volume.float(), padding)  # (D', H', W'), each side >= tile
    depth, height, width = padded.shape
    stride = max(1, int(tile * (1 - overlap)))
    z_starts, y_starts, x_starts = (window_starts(s, tile, stride) for s in padded.shape)
    weight = smooth_window(tile, window, device)  # (t, t, t)

    tiles = [(z, y, x) for z in z_starts for y in y_starts for x in x_starts]  # z-major order
    batches = [tiles[first:first + batch_size] for first in range(0, len(tiles), batch_size)]
    # Rows of the accumulators: all of them when they fit in ``buffer_bytes``, else a sliding band of rows deep
    # enough for the deepest batch; rows above the current batch are finished and the band moves down.
    deepest = max(batch[-1][0] - batch[0][0] for batch in batches) + tile
    band = depth  # set from the number of classes at the first batch
    probs_sum = weight_sum = None  # (C, band, H', W') weighted probabilities, (band, H', W') summed weights
    labels = torch.empty(shape, dtype=torch.uint8) if output == "labels" else None
    probabilities = None  # (C, D, H, W) on the CPU, for output="probabilities"
    band_start = 0  # the band holds rows [band_start, band_start + band) of the padded volume

    def finish(rows: int) -> None:  # blend the band's first ``rows`` rows and move them to the result
        nonlocal probabilities
        z0, z1 = band_start, min(band_start + rows, shape[0])
        if z1 <= z0:
            return
        summed = probs_sum[:, : z1 - z0, : shape[1], : shape[2]]  # (C, rows, H, W)
        if output == "labels":  # the weight sum is the same for every class: the argmax needs no division
            labels[z0:z1] = summed.argmax(0).to("cpu", torch.uint8)
        else:
            blended = summed.div_(weight_sum[: z1 - z0, : shape[1], : shape[2]])  # in place: these rows are done
            if probabilities is None and (z0, z1) == (0, shape[0]) and blended.device.type == "cpu":
                probabilities = blended.contiguous()  # the whole volume in one band: return the sums themselves
            else:
                if probabilities is None:
                    probabilities = torch.empty((summed.shape[0], *shape), dtype=torch.float32)
                probabilities[:, z0:z1].copy_(blended)

    with memory_format_for(model, memory_format):  # the caller's model is given back in its own layout
        for batch in batches:  # fixed-size batches that may span two z-slabs
            lowest, highest = batch[0][0], batch[-1][0]
            if probs_sum is not None and highest + tile > band_start + band:  # move the band down to `lowest`
                finish(lowest - band_start)
                keep = band_start + band - lowest  # rows still being summed, moved to the top of the band
                probs_sum[:, :keep] = probs_sum[:, lowest - band_start:].clone()
                probs_sum[:, keep:] = 0
                if weight_sum is not None:
                    weight_sum[:keep] = weight_sum[lowest - band_start:].clone()
                    weight_sum[keep:] = 0
                band_start = lowest
            rows = padded[lowest:highest + tile].to(device)  # (rows, H', W') the input this batch reads
            windows = torch.stack([rows[z - lowest:z - lowest + tile, y:y + tile, x:x + tile]
                                   for z, y, x in batch])[:, None]  # (B, 1, t, t, t)
            with autocast(precision, device):
                logits = model(windows)["logits"]  # (B, C, t, t, t)
            probs = logits.float().softmax(dim=1).mul_(weight)  # (B, C, t, t, t) weighted class probabilities
            if probs_sum is None:
                num_classes = probs.shape[1]
                band = min(depth, max(deepest, buffer_bytes // ((num_classes + 1) * height * width * 4)))
                probs_sum = torch.zeros((num_classes, band, height, width), device=device)
                weight_sum = (torch.zeros((band, height, width), device=device) if output == "probabilities"
                              else None)
            for (z, y, x), p in zip(batch, probs):
                z -= band_start
                probs_sum[:, z:z + tile, y:y + tile, x:x + tile] += p
                if weight_sum is not None:
                    weight_sum[z:z + tile, y:y + tile, x:x + tile] += weight
    finish(depth - band_start)
    return labels if output == "labels" else probabilities


def predict_tomogram(model: nn.Module, reconstruction, **options) -> torch.Tensor:
    """Normalise a raw ``(Z, Y, X)`` reconstruction exactly as for training, then ``predict_volume`` it.

    ``options`` are ``predict_volume``'s keywords (tile, overlap, batch_size, window, device, precision, output,
    buffer_bytes, memory_format).
    """
    from mvgtutor.data.patches import normalize_tomogram

    return predict_volume(model, normalize_tomogram(reconstruction), **options)
