"""Atomic training checkpoints that resume bit-for-bit.

A checkpoint holds everything the next epoch depends on: model, optimizer, scheduler and grad-scaler states,
the number of finished epochs, the metric history and the global random-number-generator states (CPU and CUDA;
the model draws its VSL masks and k-means seeds from them). It is written to a temporary file and renamed over
the old one, so a crash mid-write (a Colab disconnect) leaves the previous checkpoint intact, and it is read with
``torch.load(weights_only=True)``: tensors and plain containers only, no arbitrary code.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from mvgtutor.errors import DataError
from mvgtutor.paths import atomic_path


def rng_state() -> dict:
    """The global torch RNG states: ``{"cpu": ByteTensor, "cuda": [ByteTensor per device]}``."""
    return {"cpu": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state: dict) -> None:
    """Restore what ``rng_state`` returned (CUDA states only when the same number of GPUs is visible)."""
    torch.set_rng_state(state["cpu"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | os.PathLike, state: dict) -> Path:
    """Write ``state`` (tensors, numbers, strings, lists, dicts) to ``path`` atomically; returns the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint written by ``save_checkpoint`` with ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"checkpoint {path} does not exist: train first, or pass the run folder that holds it")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # a truncated or foreign file
        raise DataError(f"checkpoint {path} cannot be read ({type(error).__name__}): delete it and "
                        f"re-run training") from None


def save_fp16_safetensors(state: dict[str, torch.Tensor], path: str | os.PathLike) -> Path:
    """Write a model's ``state`` dict to ``path`` in safetensors (no pickle), floating tensors as float16,
    integer buffers unchanged; atomically. Returns the path."""
    from safetensors.torch import save_file

    path = Path(path)
    tensors = {name: (t.detach().to(torch.float16) if t.is_floating_point() else t.detach()).cpu().contiguous()
               .clone() for name, t in state.items()}  # clones: safetensors refuses tensors that share memory
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt", "written_by": "mvgtutor"})
    return path


def load_safetensors_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a state dict written by ``save_fp16_safetensors``, floating tensors back as float32."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise DataError(f"weights {path} do not exist: pass a reference folder written by `python -m mvgtutor "
                        f"export-reference`")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise DataError(f"weights {path} cannot be read ({type(error).__name__}): export the reference again") from None
    return {name: t.float() if t.is_floating_point() else t for name, t in state.items()}
