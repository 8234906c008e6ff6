"""Figures of chapter 7: loss curves term by term, held-out Dice per epoch, Dice per class.

``history`` is what ``mvgtutor.train.train_model`` returns (one dict per epoch: ``epoch``, ``loss``, the terms
of eq. 9 such as ``ce_fused``, ``ce_xy``, ``recon``, and with validation ``val_dice``: a list of per-class Dice
indexed by label, ``None`` for a class absent from the held-out patches).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from mvgtutor.data.classes import CLASSES
from mvgtutor.errors import DataError

LOSS_TERMS = ("ce_fused", "ce_xy", "ce_yz", "ce_xz", "recon")


def loss_curves_figure(history: Sequence[Mapping], terms: Sequence[str] = LOSS_TERMS) -> Figure:
    """Left: the total loss per epoch; right: each term of ``terms`` that the history holds."""
    if not history:
        raise DataError("history is empty: train at least one epoch before plotting its losses")
    epochs = [entry["epoch"] for entry in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5), constrained_layout=True)
    left.plot(epochs, [entry["loss"] for entry in history], "k-o", label="total (eq. 9)")
    left.set_xlabel("epoch")
    left.set_ylabel("loss")
    left.legend()
    left.set_title("total loss")
    for key in terms:
        if key in history[0]:
            right.plot(epochs, [entry[key] for entry in history], "-o", label=key)
    right.set_xlabel("epoch")
    right.set_title("the terms of eq. 9")
    right.legend(fontsize="small")
    return fig


def dice_curves(history: Sequence[Mapping], groups: Mapping[str, Sequence[int]]) -> dict[str, list[float]]:
    """Held-out Dice per epoch for each named group of labels (the mean over the group; an absent class 0).

    ``groups`` maps a name to labels, e.g. ``{"vesicle": [14], "five largest proteins": [13, 2, 1, 3, 5]}``.
    Raises ``DataError`` when the history holds no ``val_dice`` (a run with ``TrainConfig.validate=False``).
    """
    if not history or "val_dice" not in history[0]:
        raise DataError("this history has no 'val_dice': train with TrainConfig.validate=True to score the "
                        "held-out patches after every epoch")
    return {name: [float(np.mean([entry["val_dice"][label] or 0.0 for label in labels])) for entry in history]
            for name, labels in groups.items()}


def dice_curves_figure(history: Sequence[Mapping], curves: Mapping[str, Sequence[float]], title: str = "") -> Figure:
    """Held-out Dice against the epoch, one line per curve of ``dice_curves``."""
    epochs = [entry["epoch"] for entry in history]
    fig, ax = plt.subplots(figsize=(6.5, 3.5), constrained_layout=True)
    for name, values in curves.items():
        ax.plot(epochs, values, "-o", label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("held-out Dice")
    ax.set_ylim(0, 1)
    ax.legend(fontsize="small")
    ax.set_title(title)
    return fig


def class_dice_figure(dice, title: str = "") -> Figure:
    """One bar per particle class (labels 1-15) of ``dice (num_classes,)``, NaN (absent) drawn as 0."""
    dice = np.asarray(dice, dtype=float)
    if dice.shape != (len(CLASSES),):
        raise DataError(f"dice must hold one value per class ({len(CLASSES)}), got shape {dice.shape}")
    fig, ax = plt.subplots(figsize=(10, 3), constrained_layout=True)
    ax.bar([c.name for c in CLASSES[1:]], np.nan_to_num(dice[1:]), color=[c.color for c in CLASSES[1:]],
           edgecolor="k")
    ax.set_ylabel("Dice")
    ax.set_ylim(0, 1)
    ax.tick_params(axis="x", rotation=60)
    ax.set_title(title)
    return fig
