"""Which torch device to run on: the hardware decides, never the profile's name.

A profile says *what* to train (``mvgtutor.config``); this module says *where*. CUDA is used whenever the
hardware has it, whatever the profile (a ``cpu``-profile chapter runs on Colab's GPU too); ``MVGTUTOR_DEVICE`` or an
explicit ``device=`` pins it (``MVGTUTOR_DEVICE=cpu`` on a GPU machine).
"""

from __future__ import annotations

import os

import torch

from mvgtutor.errors import ProfileError

DEVICE_ENV = "MVGTUTOR_DEVICE"


def cuda_available() -> bool:
    """True when a CUDA GPU is visible to torch."""
    return torch.cuda.is_available()


def choose_device(device: str | torch.device | None = None) -> torch.device:
    """The device to run on: ``device`` if given, else ``$MVGTUTOR_DEVICE``, else CUDA when available, else CPU.

    ``ProfileError`` (one line) for an unknown device name or a CUDA device on a machine without one.
    """
    if isinstance(device, torch.device):
        device = str(device)
    chosen = device or os.environ.get(DEVICE_ENV, "").strip().lower() or None
    if chosen is None:
        return torch.device("cuda" if cuda_available() else "cpu")
    try:
        resolved = torch.device(chosen)
    except (RuntimeError, ValueError):
        raise ProfileError(f"unknown device {chosen!r}: use cpu, cuda or cuda:N (or unset {DEVICE_ENV})") from None
    if resolved.type == "cuda" and not cuda_available():
        raise ProfileError(f"device {chosen!r} asked for but no CUDA GPU is visible: use cpu "
                           f"(or unset {DEVICE_ENV} to follow the hardware)")
    return resolved


def describe_device(device: torch.device) -> str:
    """``"cpu"`` or ``"cuda:0 (Tesla T4, 15.6 GiB, compute capability 7.5)"``: what a chapter prints."""
    if device.type != "cuda":
        return str(device)
    props = torch.cuda.get_device_properties(device)
    return (f"{device} ({props.name}, {props.total_memory / 2**30:.1f} GiB, "
            f"compute capability {props.major}.{props.minor})")
