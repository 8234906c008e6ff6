"""Mixed precision: which number format to compute in, and the autocast context and gradient scaler for it.

* ``bf16`` on GPUs of compute capability >= 8 (A100, H100, L4, RTX 30xx+): same exponent range as fp32, so no
  loss scaling is needed.
* ``fp16`` + ``GradScaler`` on older GPUs (Colab's T4 is 7.5). ``torch.cuda.is_bf16_supported()`` says True on a
  T4 because it *emulates* bf16 (slowly), so we test the compute capability instead.
* ``fp32`` on the CPU by default: CPU autocast exists but rarely pays off for these small 3D models.
"""

from __future__ import annotations

import contextlib

import torch

from mvgtutor.errors import ConfigError, check_choice

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def native_bf16(device: torch.device) -> bool:
    """True on a CUDA device with hardware bf16 (compute capability >= 8.0)."""
    return device.type == "cuda" and torch.cuda.get_device_capability(device)[0] >= 8


def resolve_precision(setting: str, device: torch.device) -> str:
    """Turn the config's ``precision`` ("auto" | "fp32" | "bf16" | "fp16") into the one used on ``device``."""
    check_choice("precision", setting, PRECISIONS)
    if setting == "auto":
        if device.type != "cuda":
            return "fp32"
        return "bf16" if native_bf16(device) else "fp16"
    if setting == "fp16" and device.type != "cuda":
        raise ConfigError("precision 'fp16' needs a CUDA GPU: use 'fp32' or 'bf16' on the CPU")
    return setting


def autocast(precision: str, device: torch.device):
    """The autocast context for a resolved ``precision`` (a no-op context for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=_DTYPES[precision])


def grad_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler:
    """A ``GradScaler`` that is active only for fp16 (keeps small fp16 gradients from flushing to zero)."""
    return torch.amp.GradScaler(device.type, enabled=(precision == "fp16"))
