"""Speed, memory and FLOPs of a model: what ``python -m mvgtutor bench`` measures.

* training throughput (samples/s) of the real training step (forward, loss of eq. 9, backward, Adam), timed after
  warm-up steps;
* whole-volume inference throughput (voxels/s) of ``predict_volume`` (32^3 tiles, 50% overlap);
* peak memory (GPU: ``max_memory_allocated``; CPU: the process's peak resident set size so far, which
  includes everything measured before in the same process);
* FLOPs per training sample (forward + backward) counted by ``torch.utils.flop_counter.FlopCounterMode``, and on
  a GPU the model FLOPs utilisation: achieved FLOP/s over the device's dense peak for the precision used;
* ``as_t4``: on a bigger GPU, the T4's memory (``torch.cuda.set_per_process_memory_fraction``) for a block, so a
  profile that would not fit Colab's T4 fails here too. Time on a T4 is estimated in ``mvgtutor.train.estimate``.
"""

from __future__ import annotations

import contextlib
import resource
import sys
import time
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from mvgtutor.config import TrainConfig
from mvgtutor.evaluate.inference import predict_volume
from mvgtutor.runtime.layout import apply_memory_format, resolve_memory_format
from mvgtutor.train.engine import make_optimizer, training_step
from mvgtutor.runtime.precision import grad_scaler, resolve_precision

# Dense (no sparsity) peak tensor-core FLOP/s for bf16 / fp16 from the vendors' data sheets. The SXM H100 calls
# itself "NVIDIA H100 80GB HBM3"; a plain "H100" is taken to be the slower PCIe card.
PEAK_FLOPS = {"H200": 989e12, "H100 SXM": 989e12, "H100 80GB HBM3": 989e12, "H100 NVL": 835e12,
              "H100 PCIe": 756e12, "H100": 756e12, "A100": 312e12, "L40S": 362e12, "L4": 121e12, "A10G": 125e12,
              "RTX 4090": 165e12, "V100": 125e12, "T4": 65e12}


def device_peak_flops(device: torch.device) -> float | None:
    """The dense half-precision peak of a known CUDA GPU in FLOP/s (None on the CPU or an unknown GPU)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key in sorted(PEAK_FLOPS, key=len, reverse=True):  # most specific name first
        if key in name:
            return PEAK_FLOPS[key]
    return None


@contextlib.contextmanager
def as_t4(device: torch.device):
    """Within the block, this process may allocate no more CUDA memory than a T4 has (``estimate.T4``); yields the
    fraction set. A no-op (yields None) on the CPU or when the device has no more memory than a T4."""
    from mvgtutor.train.estimate import T4

    total = torch.cuda.get_device_properties(device).total_memory if device.type == "cuda" else 0
    if total <= T4.memory_bytes:
        yield None
        return
    fraction = T4.memory_bytes / total
    torch.cuda.set_per_process_memory_fraction(fraction, device)
    try:
        yield fraction
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, device)


def _peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass(frozen=True)
class TrainingSpeed:
    """Throughput and memory of the training step at one batch size."""

    batch_size: int
    precision: str
    samples_per_s: float
    peak_memory_bytes: int
    cpu_seconds_per_sample: float = float("nan")  # this process's CPU time per sample (all threads): on a shared
    # CPU it is what a sample costs, whatever the load, where samples/s is what this share of the machine gave


def synthetic_batch(batch_size: int, size: int, num_classes: int, device: torch.device,
                    seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random images ``(B, 1, s, s, s)`` and labels ``(B, s, s, s)`` (speed does not depend on the values)."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(batch_size, 1, size, size, size, generator=generator)
    labels = torch.randint(0, num_classes, (batch_size, size, size, size), generator=generator)
    return images.to(device), labels.to(device)


def measure_training(model: nn.Module, config: TrainConfig, loss_fn, *, batch_size: int, input_size: int,
                     num_classes: int, device: torch.device, steps: int = 5, warmup: int = 2) -> TrainingSpeed:
    """Time ``steps`` training steps (after ``warmup``) of ``model`` at ``batch_size``; returns samples/s."""
    precision = resolve_precision(config.precision, device)
    apply_memory_format(model.to(device), resolve_memory_format(config.memory_format, device)).train()
    trained = torch.compile(model) if config.compile else model
    optimizer = make_optimizer(model, config, device)
    scaler = grad_scaler(precision, device)
    images, labels = synthetic_batch(batch_size, input_size, num_classes, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def step() -> None:
        training_step(trained, optimizer, scaler, images, labels, config, precision, device, loss_fn)

    for _ in range(warmup):
        step()
    _synchronize(device)
    started, cpu_started = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    _synchronize(device)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else _peak_rss_bytes()
    return TrainingSpeed(batch_size, precision, steps * batch_size / seconds, peak,
                         cpu_seconds / (steps * batch_size))


def training_flops_per_sample(model: nn.Module, config: TrainConfig, loss_fn, *, input_size: int,
                              num_classes: int, batch_size: int = 2) -> int:
    """FLOPs of one training sample (forward + loss + backward), counted on the CPU at ``batch_size``."""
    model = model.to("cpu").train()
    images, labels = synthetic_batch(batch_size, input_size, num_classes, torch.device("cpu"))
    counter = FlopCounterMode(display=False)
    with counter:
        loss_fn(model(images), labels, config)[0].backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() // batch_size


def measure_inference(model: nn.Module, volume_size: int, *, device: torch.device, batch_size: int = 32,
                      tile: int = 32, precision: str = "auto") -> float:
    """Voxels per second of overlap-tile inference on a random ``volume_size^3`` volume (after one warm-up)."""
    volume = torch.randn(volume_size, volume_size, volume_size, generator=torch.Generator().manual_seed(0))
    model.to(device)
    predict_volume(model, volume[:tile, :tile, :tile], tile=tile, batch_size=batch_size, device=device,
                   precision=precision)  # warm-up
    _synchronize(device)
    started = time.perf_counter()
    predict_volume(model, volume, tile=tile, batch_size=batch_size, device=device, precision=precision)
    _synchronize(device)
    return volume.numel() / (time.perf_counter() - started)
