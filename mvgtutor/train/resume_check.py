"""Check that a run interrupted mid-epoch and resumed ends with the same weights as an uninterrupted one.

Chapter 7 calls ``check_exact_resume``: it trains a model once straight through, once with a simulated
disconnect (an exception raised from ``on_step``) into a run folder, then resumes in that folder from fresh
weights, as a new session would, and compares every tensor of the two final state dicts bit for bit.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from mvgtutor.config import TrainConfig
from mvgtutor.train.engine import train_model


class Disconnect(Exception):
    """Raised from ``on_step`` to stand for a lost session (Colab disconnecting, a killed job)."""


def disconnect_at(epoch: int, step: int) -> Callable[[int, int, float], None]:
    """An ``on_step`` callback that raises ``Disconnect`` at ``(epoch, step)`` (both counted from 0)."""
    def on_step(at_epoch: int, at_step: int, loss: float) -> None:
        if (at_epoch, at_step) == (epoch, step):
            raise Disconnect
    return on_step


@dataclass(frozen=True)
class ResumeCheck:
    """What the check found: the files of the run folder at the disconnect, the resumed run's epochs, and
    whether its final weights equal the uninterrupted run's in every tensor."""

    files_at_disconnect: list[str]
    epochs: int
    identical: bool


def check_exact_resume(make_model: Callable[[], nn.Module], train_set, config: TrainConfig,
                       disconnect: tuple[int, int] = (1, 2), run_dir: str | Path | None = None,
                       device: torch.device | str | None = None, **train_options) -> ResumeCheck:
    """Train ``make_model()`` on ``train_set`` straight through, and again with a disconnect at ``disconnect``
    ``(epoch, step)`` followed by a resume in ``run_dir`` (a new temporary folder by default).

    ``make_model`` must return identically initialised models (seed inside it). ``config.checkpoint_every_epochs``
    decides what the folder holds at the disconnect. ``train_options`` (``loss_fn``, ``augment``, ...) go to every
    ``train_model`` call.
    """
    straight = make_model()
    train_model(straight, train_set, config, progress=False, device=device, **train_options)
    folder = Path(run_dir) if run_dir is not None else Path(tempfile.mkdtemp(prefix="resume-check-"))
    try:
        train_model(make_model(), train_set, config, run_dir=folder, progress=False, device=device,
                    on_step=disconnect_at(*disconnect), **train_options)
    except Disconnect:
        pass
    files = sorted(p.name for p in folder.iterdir())
    resumed = make_model()  # a new session: fresh weights, then the same call again
    history = train_model(resumed, train_set, config, run_dir=folder, progress=False, device=device,
                          **train_options)
    identical = all(torch.equal(a, b) for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()))
    return ResumeCheck(files_at_disconnect=files, epochs=len(history), identical=identical)
