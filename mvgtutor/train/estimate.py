"""What a training run costs on a GPU we do not have: a T4's time and memory, estimated from counts.

No T4 was available to the course's authors (nor any GPU when the colab profile was sized). The estimates here
come from two things measured on the CPU and two stated constants, so that anyone can redo them:

* **time**: FLOPs per training sample (counted by ``torch.utils.flop_counter.FlopCounterMode``) over a T4's
  *achieved* throughput, ``T4.half_peak_flops * achieved_fraction()``. The fraction is not a guess about the T4 but
  a measurement on another GPU: the model FLOPs utilisation (MFU) of the paper-size training step on one H100,
  ``REFERENCE_STEP``. The same kernels run on both; the T4 has more memory bandwidth per FLOP than an H100
  (320 GB/s for 65 TFLOP/s against 3.35 TB/s for 989 TFLOP/s), so a step limited by memory traffic reaches no
  smaller a fraction of peak there. Ours, as an assumption, with two reasons to read the result as a lower bound on
  time: smaller models than the paper's may reach a smaller fraction (more time in small kernels), and a T4 at its
  70 W limit often runs below the clock its data sheet's peak assumes.
* **memory**: the bytes autograd keeps for the backward pass (``saved_tensors_hooks``, each storage counted once)
  in a CPU forward pass, every floating-point tensor counted at 2 bytes (16-bit autocast keeps the inputs of
  convolutions and matrix products in fp16; it keeps norms, softmax and the loss in fp32, which the calibration
  below absorbs), measured at batch 1 and 2 so that the per-sample part scales with the batch, plus the training
  state (weights, gradients and Adam's two moments: 16 bytes per fp32 parameter).
  The CUDA caching allocator's fragmentation, cuDNN workspaces and the backward pass's transient buffers cannot be
  measured on a CPU; ``MEMORY_CALIBRATION`` scales the estimate to the one GPU measurement we have (the paper-size
  step on an H100, ``REFERENCE_STEP``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mvgtutor.config import Profile, TrainConfig


@dataclass(frozen=True)
class GpuSpec:
    """A GPU's data-sheet figures: dense fp16/bf16 tensor-core peak, usable memory, memory bandwidth."""

    name: str
    half_peak_flops: float
    memory_bytes: int
    bandwidth_bytes_per_s: float
    native_bf16: bool


# NVIDIA T4 data sheet: 65 TFLOP/s mixed precision (fp16 tensor cores), 16 GB GDDR6 at 320 GB/s, Turing (sm 7.5:
# no native bf16, so fp16 + GradScaler). Colab's T4 reports 15,360 MiB to nvidia-smi.
T4 = GpuSpec("Tesla T4", 65e12, 15360 * 2**20, 320e9, native_bf16=False)
COLAB_MEMORY_BUDGET_BYTES = 13 * 10**9  # issue 13: a colab-profile chapter stays under 13 GB of GPU memory
COLAB_TIME_BUDGET_S = 15 * 60  # issue 13: every training chapter within 15 minutes on a T4


@dataclass(frozen=True)
class ReferenceStep:
    """One measured GPU training step that the estimates are anchored on."""

    gpu: str
    peak_flops: float  # the GPU's dense half-precision peak, FLOP/s
    samples_per_s: float
    peak_memory_bytes: int
    batch_size: int
    flops_per_sample: float  # counted by FlopCounterMode for the same model (python -m mvgtutor bench)
    source: str


# The paper-size step (C=256, Ln=12, P3DA, VSL) on one H100 80GB HBM3: 329 samples/s at batch 72, bf16,
# channels-last (python -m mvgtutor bench, recorded in mvgtutor/runtime/layout.py), peak 32.6 GiB
# (torch.cuda.max_memory_allocated, recorded in issue 13). Its FLOPs per sample, 312.1 GFLOP, are counted on the CPU
# by the same bench (``training_flops_per_sample``, the paper profile, torch 2.13; the bench's results file
# ``mvgtutor/train/results/bench_profiles.json`` records the count with each run, and a test compares them).
# MFU = 312.1e9 * 329 / 989e12 = 10.4%.
REFERENCE_STEP = ReferenceStep(gpu="NVIDIA H100 80GB HBM3", peak_flops=989e12, samples_per_s=329.0,
                               peak_memory_bytes=int(32.6 * 2**30), batch_size=72, flops_per_sample=312.1e9,
                               source="python -m mvgtutor bench on one H100 (issue 13)")


# Measured peak / estimated peak of the reference step: 32.6 GiB on the H100 against 23.88 GiB from
# ``measure_activation_memory`` for the paper profile at batch 72 (336.5 MiB per sample, 23.4 MiB fixed, 196.9 MiB
# of training state; recorded in the bench results file). What the count leaves out: autocast's fp32 tensors,
# cuDNN workspaces, the backward pass's gradient buffers, the allocator's fragmentation.
MEMORY_CALIBRATION = 32.6 / 23.88


def achieved_fraction(reference: ReferenceStep = REFERENCE_STEP) -> float:
    """The fraction of its peak that ``reference`` reached (its MFU): FLOPs per sample x samples/s / peak."""
    return reference.flops_per_sample * reference.samples_per_s / reference.peak_flops


def estimated_samples_per_s(flops_per_sample: float, gpu: GpuSpec = T4, fraction: float | None = None) -> float:
    """Training samples per second on ``gpu`` at ``fraction`` of its peak (default: ``achieved_fraction()``)."""
    fraction = achieved_fraction() if fraction is None else fraction
    return gpu.half_peak_flops * fraction / flops_per_sample


@dataclass(frozen=True)
class ActivationMemory:
    """Bytes autograd keeps for the backward pass: ``fixed + per_sample * batch``, and the training state."""

    fixed_bytes: int  # independent of the batch (e.g. autocast's half-precision copies of the weights)
    per_sample_bytes: int
    state_bytes: int  # weights, gradients, Adam moments: 16 bytes per parameter

    def at_batch(self, batch_size: int, calibration: float = 1.0) -> int:
        """Estimated peak bytes of a training step at ``batch_size``, times ``calibration``."""
        return int(calibration * (self.state_bytes + self.fixed_bytes + self.per_sample_bytes * batch_size))


def _saved_bytes(model: nn.Module, loss_fn, config: TrainConfig, images: torch.Tensor,
                 labels: torch.Tensor) -> int:
    """Bytes of the distinct storages autograd saves in one fp32 forward pass + loss, with every floating-point
    storage counted at 2 bytes per element (as 16-bit autocast would keep it; ``measure_activation_memory``)."""
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor):
        storage = tensor.untyped_storage()
        elements = storage.nbytes() // tensor.element_size()
        storages[storage.data_ptr()] = elements * (2 if tensor.is_floating_point() else tensor.element_size())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = loss_fn(model(images), labels, config)[0]
    del loss
    return sum(storages.values())


def measure_activation_memory(model: nn.Module, config: TrainConfig, loss_fn, *, input_size: int,
                              num_classes: int) -> ActivationMemory:
    """Saved-activation bytes of ``model``'s training forward at batch 1 and 2 in 16-bit (see ``_saved_bytes``),
    split into a fixed and a per-sample part, with the training state. Images ``(B, 1, s, s, s)``, labels
    ``(B, s, s, s)``. The forward runs in fp32 on the CPU. Under CPU autocast to bf16 the same count gave 16-19%
    more bytes per sample for the test, cpu and colab models (36.8 / 56.7 / 150.0 MiB against 31.4 / 47.3 / 126.3:
    what autocast keeps in fp32), a near-constant ratio that ``MEMORY_CALIBRATION`` absorbs, but ran 20x slower on
    a CPU without bf16 units (160 s against 6 s for the colab model)."""
    from mvgtutor.model.decoders import CpuChannelsLastConv3d
    from mvgtutor.train.benchmark import synthetic_batch

    model = model.to("cpu").train()
    saved = []
    for batch in (1, 2):
        images, labels = synthetic_batch(batch, input_size, num_classes, torch.device("cpu"))
        with CpuChannelsLastConv3d.as_on_gpu():  # count what a GPU saves, not the CPU's layout copies
            saved.append(_saved_bytes(model, loss_fn, config, images, labels))
    per_sample = max(saved[1] - saved[0], 0)
    parameters = sum(p.numel() for p in model.parameters())
    return ActivationMemory(fixed_bytes=max(saved[0] - per_sample, 0), per_sample_bytes=per_sample,
                            state_bytes=16 * parameters)


def samples_per_run(profile: Profile) -> int:
    """Training samples one run of ``profile`` sees: epochs x the training tomograms' non-overlapping patches."""
    data = profile.data
    per_tomogram = (data.tomogram_size // data.patch_size) ** 3
    return profile.train.epochs * (data.n_tomograms - data.n_test) * per_tomogram
