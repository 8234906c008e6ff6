"""Memory layout of the 3D feature maps: channels-first (NCDHW, PyTorch's default) or channels-last (NDHWC).

A convolution reads, for every output voxel, all channels of a small neighbourhood. With the channels of a voxel
next to each other in memory (channels-last, ``torch.channels_last_3d``), cuDNN and oneDNN run their fastest
kernels, and with some cuDNN versions bf16 Conv3d has a fast path only in that layout (PyTorch issue #166122).
Converting the model is enough: a convolution whose weight is channels-last returns a channels-last output, and
BatchNorm and ReLU keep the layout, so the whole convolutional part follows.

For training, ``"auto"`` picks channels-last on CUDA: the paper-size training step ran 30% faster (329 against
253 samples/s, bf16, batch 72, one H100, ``python -m mvgtutor bench --memory-format ...``). On the CPU training
stays channels-first: there channels-last made the cpu profile's convolutions 2-3x faster but BatchNorm's backward
pass slower, and the step as a whole no faster (5.8 samples/s either way on a 2-core CPU). The exception is
P3DA's convolutions on the full 32^3 grid, which switch to channels-last inside each layer on the CPU
(``mvgtutor.model.decoders.CpuChannelsLastConv3d``): the cpu profile's training step went from 2.10 to 1.69 s
(median of four, one thread, on a busy 2-core CPU). Inference has no
backward pass: ``predict_volume`` runs channels-last on every device (on the 2-core CPU, 1.2-1.7x the
channels-first speed), through ``memory_format_for``, which gives the caller's model back unchanged.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from mvgtutor.errors import check_choice

MEMORY_FORMATS = ("auto", "channels_first", "channels_last")


def resolve_memory_format(setting: str, device: torch.device) -> str:
    """``"auto" | "channels_first" | "channels_last"`` -> the layout used on ``device`` (auto: last on CUDA)."""
    check_choice("memory_format", setting, MEMORY_FORMATS)
    if setting == "auto":
        return "channels_last" if device.type == "cuda" else "channels_first"
    return setting


def apply_memory_format(model: nn.Module, memory_format: str) -> nn.Module:
    """Convert ``model``'s 5D parameters (Conv3d weights) to ``memory_format`` in place; returns ``model``."""
    layout = torch.channels_last_3d if memory_format == "channels_last" else torch.contiguous_format
    return model.to(memory_format=layout)


@contextlib.contextmanager
def memory_format_for(model: nn.Module, memory_format: str):
    """Run a block with ``model``'s 5D parameters in ``memory_format``, then give the model back as it was.

    ``with memory_format_for(model, "channels_last"): model(x)``; the original parameter tensors are restored on
    exit, so the caller's model is unchanged (inference uses this: a borrowed model keeps its layout).
    """
    originals = [(parameter, parameter.data) for parameter in model.parameters() if parameter.ndim == 5]
    apply_memory_format(model, memory_format)
    try:
        yield model
    finally:
        for parameter, data in originals:
            parameter.data = data
