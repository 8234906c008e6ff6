"""Up-front checks of command-line values: each failure is a one-line ``ConfigError`` that names the option.

The commands call these before they read or write anything, so a bad value never leaves a half-made folder or a
traceback behind.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from mvgtutor.errors import ConfigError


def positive_int(option: str, value: int | None) -> None:
    """``value`` (None: not given) must be an integer >= 1."""
    if value is not None and value < 1:
        raise ConfigError(f"{option} {value}: must be a whole number >= 1")


def non_negative_int(option: str, value: int | None) -> None:
    """``value`` (None: not given) must be an integer >= 0 (seeds)."""
    if value is not None and value < 0:
        raise ConfigError(f"{option} {value}: must be a whole number >= 0")


def positive_float(option: str, value: float | None) -> None:
    """``value`` (None: not given) must be a finite number > 0 (no nan, no inf)."""
    if value is not None and not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{option} {value}: must be a finite number > 0")


def fraction(option: str, value: float, upper_open: bool = True) -> None:
    """``value`` must lie in ``[0, 1)`` (or ``[0, 1]`` with ``upper_open=False``)."""
    ok = math.isfinite(value) and 0 <= value and (value < 1 if upper_open else value <= 1)
    if not ok:
        raise ConfigError(f"{option} {value}: must lie in [0, 1{')' if upper_open else ']'}")


def torch_device(option: str, value: str | None):
    """The ``torch.device`` that ``value`` names (None: cuda when available, else cpu); an unknown name or a
    device this machine lacks raises ``ConfigError``."""
    import torch

    if value is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(value)
    except (RuntimeError, ValueError):
        raise ConfigError(f"{option} {value!r}: not a torch device; use cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{option} {value}: this machine has no CUDA GPU (or torch was built without "
                              f"CUDA); use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"{option} {value}: only {torch.cuda.device_count()} GPU(s) here; use "
                              f"cuda:0..cuda:{torch.cuda.device_count() - 1}")
    elif device.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ConfigError(f"{option} {value}: MPS is not available on this machine; use --device cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"{option} {value}: unsupported device type; use cpu or cuda")
    return device


def writable_folder(option: str, path: Path) -> None:
    """``path`` must be a folder (or creatable as one) in which this user may write."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{option} {path}: exists and is not a folder; choose another path")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{option} {path}: {existing} is a file, not a folder; choose another path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {path}: no permission to write in {existing}; choose another path")


def output_file(option: str, path: Path, *, overwrite: bool, inputs=()) -> None:
    """``path`` must be a new file in a writable folder: an existing file needs ``overwrite``, and a file this
    command reads (``inputs``) is never written over."""
    for source in inputs:
        if Path(source).exists() and path.exists() and os.path.samefile(source, path):
            raise ConfigError(f"{option} {path}: is an input of this command ({source}); write elsewhere")
    if path.is_dir():
        raise ConfigError(f"{option} {path}: is a folder; give a file name such as {path / 'prediction.mrc'}")
    if path.exists() and not overwrite:
        raise ConfigError(f"{option} {path}: exists; choose a new name or add --overwrite to replace it")
    writable_folder(option, path.parent)
