"""The one training loop of the course, for MVGFormer and the baselines alike (Sec. 5.1.2).

Adam (lr 1e-3), the learning rate times ``lr_gamma`` every ``lr_step_epochs`` epochs, the loss of eq. 9 from
``mvgtutor.model.losses.segmentation_loss``, mixed precision where the device supports it, a progress bar with
the loss and the throughput, a per-epoch history, and atomic checkpoints from which a re-run resumes.

Determinism: epoch ``e`` shuffles (and augments) with its own generator seeded from ``(seed, e)``, and the global
RNG state (used inside the model) is saved in each checkpoint, so an interrupted and resumed run ends with the
same weights as an uninterrupted one.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from mvgtutor.config import TrainConfig
from mvgtutor.errors import ConfigError, DataError, check_choice
from mvgtutor.paths import atomic_write
from mvgtutor.train import distributed
from mvgtutor.train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from mvgtutor.train.layout import apply_memory_format, resolve_memory_format
from mvgtutor.train.precision import autocast, grad_scaler, resolve_precision
from mvgtutor.train.prior import init_class_prior
from mvgtutor.train.validation import held_out_dice

CHECKPOINT_FILE = "checkpoint.pt"  # the latest checkpoint of a run folder
WEIGHTS_FILE = "model.pt"  # the final weights (a plain state dict)
HISTORY_FILE = "history.json"  # one entry per finished epoch

LossFn = Callable[[dict, torch.Tensor, TrainConfig], tuple[torch.Tensor, dict[str, torch.Tensor]]]
Augment = Callable[[torch.Tensor, torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]]
StepCallback = Callable[[int, int, float], None]  # (epoch, step within the epoch, loss)


@dataclass(frozen=True)
class PatchTensors:
    """A training set held as two tensors: images ``(N, 1, D, H, W)`` float32, labels ``(N, D, H, W)`` uint8."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return self.images.shape[0]

    def to(self, device: torch.device) -> PatchTensors:
        """The same patches on ``device`` (GPU-resident data: no loader, no host-to-device copies per step)."""
        return PatchTensors(self.images.to(device), self.labels.to(device))


def as_patch_tensors(dataset) -> PatchTensors:
    """A ``PatchTensors`` from one, from an object with ``images``/``labels`` tensors, or from any dataset of
    ``(image (1, D, H, W), label (D, H, W))`` pairs."""
    if isinstance(dataset, PatchTensors):
        return dataset
    if isinstance(getattr(dataset, "images", None), torch.Tensor):
        images, labels = dataset.images, dataset.labels
    else:
        if len(dataset) == 0:
            raise DataError("the training set is empty: make the dataset first (`make data`)")
        pairs = [dataset[i] for i in range(len(dataset))]
        images = torch.stack([torch.as_tensor(p[0]) for p in pairs])
        labels = torch.stack([torch.as_tensor(p[1]) for p in pairs])
    if images.ndim == 4:
        images = images[:, None]  # (N, 1, D, H, W)
    if images.ndim != 5 or labels.shape != images.shape[:1] + images.shape[2:]:
        raise DataError(f"patches must be images (N, 1, D, H, W) and labels (N, D, H, W); got "
                        f"{tuple(images.shape)} and {tuple(labels.shape)}")
    return PatchTensors(images.float(), labels.to(torch.uint8))


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The generator that shuffles and augments epoch ``epoch`` (independent of any earlier epoch)."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def default_loss(outputs: dict, target: torch.Tensor, config: TrainConfig
                 ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The loss of eq. 9 and its detached parts (``mvgtutor.model.losses.segmentation_loss``)."""
    from mvgtutor.model.losses import segmentation_loss

    return segmentation_loss(outputs, target, config)


def make_optimizer(model: nn.Module, config: TrainConfig, device: torch.device) -> torch.optim.Adam:
    """The paper's Adam (``config.lr``, ``config.weight_decay``), the fused kernel on CUDA."""
    return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay,
                            fused=device.type == "cuda")


LR_SCHEDULES = ("step", "warmup_cosine")


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int
                   ) -> tuple[torch.optim.lr_scheduler.LRScheduler, bool]:
    """The learning-rate schedule and whether it steps per batch (True) or per epoch (False).

    ``"step"`` (Sec. 5.1.2): lr x ``lr_gamma`` every ``lr_step_epochs`` epochs. ``"warmup_cosine"`` (ours, for runs
    of a few thousand steps): linear warm-up from lr/100 over ``warmup_fraction`` of all steps, then a half cosine
    to 0 at the last step, so a short run ends annealed rather than at its peak learning rate.
    """
    check_choice("lr_schedule", config.lr_schedule, LR_SCHEDULES)
    if config.lr_schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.lr_step_epochs,
                                               gamma=config.lr_gamma), False
    total = max(1, config.epochs * steps_per_epoch)
    warmup = max(1, round(config.warmup_fraction * total))

    def factor(step: int) -> float:  # lr multiplier before batch `step` (0-based)
        if step < warmup:
            return 0.01 + 0.99 * step / warmup
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor), True


def training_step(model: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                  images: torch.Tensor, labels: torch.Tensor, config: TrainConfig, precision: str,
                  device: torch.device, loss_fn: LossFn = default_loss) -> tuple[torch.Tensor, dict]:
    """One step: forward under ``autocast`` on ``images (B, 1, D, H, W)``, loss against ``labels (B, D, H, W)``,
    backward through the (fp16-only) gradient scaler, optimizer step. Returns ``(loss, parts)`` of ``loss_fn``."""
    with autocast(precision, device):
        loss, parts = loss_fn(model(images), labels, config)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return loss, parts


def _write_history(run_dir: Path, history: list[dict]) -> None:
    with atomic_write(run_dir / HISTORY_FILE, "w") as handle:
        json.dump(history, handle, indent=1)


def train_model(model: nn.Module, train_set, config: TrainConfig, *, run_dir: str | os.PathLike | None = None,
                device: torch.device | str | None = None, loss_fn: LossFn = default_loss,
                augment: Augment | None = None, progress: bool = True,
                on_step: StepCallback | None = None, validation_set=None) -> list[dict]:
    """Train ``model`` on ``train_set`` for ``config.epochs`` epochs; returns the per-epoch history.

    ``train_set``: anything ``as_patch_tensors`` accepts (images ``(N, 1, D, H, W)``, labels ``(N, D, H, W)``),
    or a sampler with ``sample(count, generator)`` and ``labels`` (``mvgtutor.data.patches.RandomCrops``), which
    serves fresh random crops every step (an epoch is then ``len(train_set)`` samples).
    With ``run_dir``, a checkpoint is written every ``config.checkpoint_every_epochs`` epochs and at the end,
    together with ``model.pt`` and ``history.json``; if ``run_dir`` already holds a checkpoint, training resumes
    from it (a finished run returns at once). Under ``torchrun`` each process trains on its share of every global
    batch of ``config.batch_size`` patches. The last incomplete batch of an epoch is dropped.
    ``loss_fn(outputs, labels, config)`` returns ``(loss, parts)`` like ``segmentation_loss``. A fresh run with
    ``config.prior_bias`` starts the model's classifier bias at the training labels' class prior.
    History entries: epoch, loss and each part of the loss (means over the epoch), lr, seconds, samples_per_s,
    and, with a ``validation_set`` (held-out patches, anything ``as_patch_tensors`` accepts), ``val_dice``: the
    per-class Dice on it after the epoch (``mvgtutor.train.validation``; ``seconds`` excludes it).
    """
    group = distributed.current_group()
    device = torch.device(device) if device is not None else (
        torch.device("cuda", group.local_rank) if torch.cuda.is_available() else torch.device("cpu"))
    precision = resolve_precision(config.precision, device)
    sampler = train_set if hasattr(train_set, "sample") else None
    data = sampler if sampler is not None else as_patch_tensors(train_set).to(device)
    held_out = as_patch_tensors(validation_set).to(device) if validation_set is not None else None
    local_batch = distributed.local_batch_size(config.batch_size, group)
    steps_per_epoch = len(data) // config.batch_size
    if steps_per_epoch == 0:
        raise ConfigError(f"batch_size {config.batch_size} is larger than the training set ({len(data)} "
                          f"patches): lower batch_size or use more data")

    apply_memory_format(model.to(device), resolve_memory_format(config.memory_format, device))
    optimizer = make_optimizer(model, config, device)
    scheduler, per_step = make_scheduler(optimizer, config, steps_per_epoch)
    scaler = grad_scaler(precision, device)
    history: list[dict] = []
    start_epoch = 0
    run_dir = Path(run_dir) if run_dir is not None else None
    if run_dir is not None and (run_dir / CHECKPOINT_FILE).is_file():
        state = load_checkpoint(run_dir / CHECKPOINT_FILE)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        history, start_epoch = list(state["history"]), int(state["epoch"])
    elif config.prior_bias:
        init_class_prior(model, data.labels)  # the untrained model predicts the class frequencies

    trained = distributed.wrap(model, device, group)
    compiled = torch.compile(trained) if config.compile else trained
    for epoch in range(start_epoch, config.epochs):
        trained.train()
        generator = epoch_generator(config.seed, epoch)
        order = torch.randperm(len(data), generator=generator)  # (N,) the same on every process
        part_sums: dict[str, torch.Tensor] = {}  # summed on the device: no sync per step
        started = time.perf_counter()
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{config.epochs}", leave=False,
                   disable=not (progress and group.is_main))
        for step in bar:
            batch = order[step * config.batch_size:(step + 1) * config.batch_size]  # (B,) global batch
            local = distributed.shard(batch, group)  # (B / world_size,)
            if sampler is not None:  # fresh crops: the global batch's corners, this process's share of them
                corners = sampler.corners(config.batch_size, generator)  # (B, 4) the same on every process
                corners = corners[distributed.shard(torch.arange(config.batch_size), group)]  # (b, 4)
                images, labels = (t.to(device) for t in sampler.crops(corners))
                labels = labels.long()
            else:
                local = local.to(device)
                images, labels = data.images[local], data.labels[local].long()  # (b, 1, D, H, W), (b, D, H, W)
            if augment is not None:
                images, labels = augment(images, labels, generator)
            loss, parts = training_step(compiled, optimizer, scaler, images, labels, config, precision, device,
                                        loss_fn)
            if per_step:
                scheduler.step()
            for name, value in {"loss": loss.detach(), **parts}.items():
                part_sums[name] = part_sums.get(name, 0) + value.float()
            if on_step is not None:
                on_step(epoch, step, float(loss.detach()))
            if progress and group.is_main and (step % 10 == 0 or step == steps_per_epoch - 1):
                elapsed = time.perf_counter() - started
                bar.set_postfix(loss=f"{float(loss.detach()):.3f}",
                                samples_s=f"{(step + 1) * config.batch_size / elapsed:.1f}")
        bar.close()
        seconds = time.perf_counter() - started
        means = {name: float(distributed.mean_over_processes(total / steps_per_epoch, group))
                 for name, total in part_sums.items() if name != "total"}
        history.append(dict(epoch=epoch + 1, **means, lr=optimizer.param_groups[0]["lr"],
                            seconds=seconds, samples_per_s=steps_per_epoch * config.batch_size / seconds))
        if held_out is not None and group.is_main:
            history[-1]["val_dice"] = held_out_dice(model, held_out.images, held_out.labels.long(),
                                                    precision=precision)
        if not per_step:
            scheduler.step()
        if progress and group.is_main:
            entry = history[-1]
            particles = [d for d in entry.get("val_dice", [None])[1:] if d is not None]
            held_out_text = f"  held-out mean Dice {sum(particles) / len(particles):.3f}" if particles else ""
            print(f"epoch {entry['epoch']:>3}/{config.epochs}  loss {entry['loss']:.4f}  "
                  f"lr {entry['lr']:.1e}  {entry['samples_per_s']:.1f} samples/s{held_out_text}")
        last = epoch + 1 == config.epochs
        if run_dir is not None and group.is_main and (last or (epoch + 1) % config.checkpoint_every_epochs == 0):
            save_checkpoint(run_dir / CHECKPOINT_FILE, dict(
                epoch=epoch + 1, model=model.state_dict(), optimizer=optimizer.state_dict(),
                scheduler=scheduler.state_dict(), scaler=scaler.state_dict(), rng=rng_state(), history=history))
            _write_history(run_dir, history)
    if run_dir is not None and group.is_main:
        save_checkpoint(run_dir / WEIGHTS_FILE, model.state_dict())
        _write_history(run_dir, history)
    return history
