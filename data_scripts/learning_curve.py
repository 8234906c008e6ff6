"""Learning curve: train MVGFormer for a fixed wall-clock budget and score the held-out patches every N steps.

Answers "how many steps does this configuration need before the particle classes appear?" faster than a full
training run: no checkpoints, Dice on the held-out tomogram's 32^3 patches (not the overlap-tile inference of
chapter 8, so the figures are a little lower than chapter 7's). Usage::

    python data_scripts/learning_curve.py --profile cpu --data data/shrec-sim-cpu --seconds 600 --every 250
    python data_scripts/learning_curve.py --profile gpu --data DIR --batch 16 --seconds 120 --set lr=3e-3
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import torch

from mvgtutor.config import make_profile
from mvgtutor.data.classes import largest_proteins
from mvgtutor.data.patches import augment_patches, load_patch_datasets
from mvgtutor.train.engine import train_model
from mvgtutor.train.models import build_model
from mvgtutor.train.precision import resolve_precision
from mvgtutor.train.validation import held_out_dice


class BudgetSpent(Exception):
    """Raised from the step callback when the wall-clock budget is over."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="cpu", help="profile whose model and training settings to use")
    parser.add_argument("--data", required=True, help="dataset folder (the last tomogram is held out)")
    parser.add_argument("--seconds", type=float, default=600, help="wall-clock training budget (default 600)")
    parser.add_argument("--every", type=int, default=250, help="score the held-out patches every N steps")
    parser.add_argument("--batch", type=int, help="batch size (default: the profile's)")
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                        help="TrainConfig or ModelConfig fields to change, e.g. lr=3e-3 decoder=mlp prior_bias=False")
    parser.add_argument("--label", default="", help="prefix of every printed line")
    args = parser.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    profile = make_profile(args.profile)
    model_fields = {f.name for f in dataclasses.fields(profile.model)}
    changes = {"model": {}, "train": {}}
    for item in args.set:
        name, value = item.split("=", 1)
        changes["model" if name in model_fields else "train"][name] = eval(value)  # noqa: S307 (a dev script)
    model_config = dataclasses.replace(profile.model, **changes["model"])
    train_config = dataclasses.replace(profile.train, **changes["train"], epochs=10**6, validate=False,
                                       **({"batch_size": args.batch} if args.batch else {}))
    data_config = dataclasses.replace(profile.data, n_test=1)
    precision = resolve_precision(train_config.precision, device)

    torch.manual_seed(train_config.seed)
    train, test = load_patch_datasets(args.data, data_config, device=device)
    model = build_model("mvgformer", model_config)
    big_five = [c.label for c in largest_proteins(5)]
    batch = train_config.batch_size
    print(f"{args.label}{args.profile} model ({sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters), "
          f"batch {batch}, lr {train_config.lr}, {precision} on {device}; {len(train)} training and {len(test)} "
          f"held-out patches; changes {changes}", flush=True)
    started, steps = time.perf_counter(), 0

    def score_and_stop(epoch: int, step: int, loss: float) -> None:  # train_model's per-step callback
        nonlocal steps
        steps += 1
        finished = time.perf_counter() - started > args.seconds
        if steps % args.every == 0 or finished:
            dice = np.array(held_out_dice(model, test.images, test.labels.long(), precision=precision), dtype=float)
            print(f"{args.label}step {steps:>6} ({steps * batch:>7} samples, {time.perf_counter() - started:6.0f} s) "
                  f"loss {loss:.3f}  Dice: vesicle {dice[14]:.2f} fiducial {dice[15]:.2f} "
                  f"big-five mean {np.nanmean(dice[big_five]):.2f} | classes 1-13: "
                  + " ".join(f"{d:.2f}" for d in dice[1:14]), flush=True)
        if finished:
            raise BudgetSpent

    try:  # the course's own loop: prior bias, layout, precision, augmentation as in every run
        train_model(model, train, train_config, device=device, augment=augment_patches, progress=False,
                    on_step=score_and_stop)
    except BudgetSpent:
        pass


if __name__ == "__main__":
    main()
