"""Data-parallel training on several GPUs (or CPU processes) with ``torchrun`` and DDP.

``torchrun --nproc_per_node N -m mvgtutor train ...`` starts N copies of the command with ``RANK``,
``LOCAL_RANK`` and ``WORLD_SIZE`` set. Each copy takes the same shuffled global batch and trains on its
``1/N`` share; DistributedDataParallel averages the gradients, so N processes with per-process batch ``B/N`` take
the same optimisation step as one process with batch ``B`` (batch-norm statistics aside: they are per process
unless converted to ``SyncBatchNorm``, which we do on GPUs).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from mvgtutor.errors import ConfigError


@dataclass(frozen=True)
class ProcessGroup:
    """Where this process sits: its rank among ``world_size`` processes, and its GPU index on the node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """True for the one process that prints and writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when more than one process trains."""
        return self.world_size > 1


def init_from_environment() -> ProcessGroup:
    """Join the process group that ``torchrun`` describes in the environment (a no-op for one process).

    NCCL on GPUs, gloo on the CPU.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return ProcessGroup()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return current_group()


def current_group() -> ProcessGroup:
    """The ``ProcessGroup`` of an initialised ``torch.distributed`` run, else a single process."""
    if not (dist.is_available() and dist.is_initialized()):
        return ProcessGroup()
    return ProcessGroup(rank=dist.get_rank(), world_size=dist.get_world_size(),
                        local_rank=int(os.environ.get("LOCAL_RANK", dist.get_rank())))


def local_batch_size(global_batch: int, group: ProcessGroup) -> int:
    """Per-process batch: ``global_batch / world_size``, which must divide exactly."""
    if global_batch % group.world_size:
        raise ConfigError(f"batch_size {global_batch} is not divisible by {group.world_size} processes: "
                          f"choose a batch size that is a multiple of --nproc_per_node")
    return global_batch // group.world_size


def shard(batch_indices: torch.Tensor, group: ProcessGroup) -> torch.Tensor:
    """This process's share of a global batch ``(B,)`` of sample indices: ``(B / world_size,)``."""
    return batch_indices[group.rank::group.world_size]


def wrap(model: nn.Module, device: torch.device, group: ProcessGroup) -> nn.Module:
    """``model`` wrapped in DistributedDataParallel when several processes train (SyncBatchNorm on GPUs)."""
    if not group.distributed:
        return model
    if device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return nn.parallel.DistributedDataParallel(model, device_ids=[device.index])
    return nn.parallel.DistributedDataParallel(model)


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside a DDP wrapper (or the model itself)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def barrier(group: ProcessGroup) -> None:
    """Wait until every process gets here (a no-op for one process): e.g. until rank 0 has written a file."""
    if group.distributed:
        dist.barrier()


def mean_over_processes(value: torch.Tensor, group: ProcessGroup) -> torch.Tensor:
    """The average of a tensor over all processes (the tensor itself for one process)."""
    if not group.distributed:
        return value
    value = value.clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / group.world_size
