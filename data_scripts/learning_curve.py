"""Learning curve: train MVGFormer for a budget of samples and score the held-out tomogram every N samples.

Answers "how far does this recipe get in the reader's budget?" faster than a full training run: no checkpoints,
Dice on the held-out tomogram's non-overlapping 32^3 patches (not the overlap-tile inference of chapter 8, so the
figures are a little below chapter 7's). The budget is counted in epochs (samples seen), not seconds, so a curve
taken on a busy machine means the same as one taken on a quiet one; wall time is recorded beside it, with the
machine's load, and a schedule (``lr_schedule="warmup_cosine"``) spans the whole budget as in a real run.

Each curve is written as JSON (``--out``, default ``mvgtutor/train/results/curves/curve-<label>.json``, shipped with the package for chapter 7) with its provenance:
profile, changes, data fingerprint, commit, machine, load, and one row per scoring. Usage::

    python data_scripts/learning_curve.py --profile cpu --data data/shrec-sim-cpu --epochs 6 --every 750 \\
        --label baseline
    python data_scripts/learning_curve.py --profile cpu --data DIR --epochs 6 --every 750 --label fg \\
        --set patch_sampling='"foreground"'
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import time
from pathlib import Path

import torch

from mvgtutor.config import make_profile
from mvgtutor.data.patches import augment_patches, load_patch_datasets, load_training_crops
from mvgtutor.paths import atomic_write
from mvgtutor.train.engine import train_model
from mvgtutor.train.models import build_model
from mvgtutor.train.precision import resolve_precision
from mvgtutor import provenance
from mvgtutor.train.runs import dataset_fingerprint
from mvgtutor.train.validation import held_out_dice

from mvgtutor.train.bars import bar_means, finite_or_none
from mvgtutor.train.curves import CURVES_DIR as RESULTS


def commit() -> str:
    """The checkout's commit (with ``+dirty`` when files differ), or ``unknown``."""
    return provenance.git_commit(short=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="cpu", help="profile whose model and training settings to use")
    parser.add_argument("--data", help="dataset folder (the last tomogram is held out); needed unless --history")
    parser.add_argument("--epochs", type=int, help="training budget in epochs (default: the profile's)")
    parser.add_argument("--every", type=int, default=600, help="score the held-out patches every N samples")
    parser.add_argument("--batch", type=int, help="batch size (default: the profile's)")
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                        help="TrainConfig or ModelConfig fields to change, e.g. lr=3e-3 decoder='\"mlp\"'")
    parser.add_argument("--label", default="curve", help="name of the curve (file name and printed lines)")
    parser.add_argument("--out", help="JSON file to write (default mvgtutor/train/results/curves/curve-<label>.json)")
    parser.add_argument("--history", help="instead of training: write the curve of this run folder's history")
    args = parser.parse_args()
    if args.history:
        print(f"wrote {curve_from_history(Path(args.history), args.label, Path(args.out) if args.out else None)}")
        return

    if not args.data:
        parser.error("--data DIR is needed to train a curve")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    profile = make_profile(args.profile)
    model_fields = {f.name for f in dataclasses.fields(profile.model)}
    changes = {"model": {}, "train": {}}
    for item in args.set:
        name, value = item.split("=", 1)
        changes["model" if name in model_fields else "train"][name] = eval(value)  # noqa: S307 (a dev script)
    batch = args.batch or profile.train.batch_size
    model_config = dataclasses.replace(profile.model, **changes["model"])
    train_config = dataclasses.replace(profile.train, **changes["train"], validate=False, batch_size=batch)
    precision = resolve_precision(train_config.precision, device)

    torch.manual_seed(train_config.seed)
    train, test = load_patch_datasets(args.data, profile.data, device=device)
    if train_config.patch_sampling == "foreground":
        train = load_training_crops(args.data, profile.data, train_config.foreground_fraction, train_config.seed)
    steps_per_epoch = len(train) // batch
    train_config = dataclasses.replace(train_config, epochs=args.epochs or train_config.epochs)
    total_steps = train_config.epochs * steps_per_epoch
    model = build_model("mvgformer", model_config)
    print(f"[{args.label}] {args.profile} model ({sum(p.numel() for p in model.parameters()) / 1e6:.2f} M "
          f"parameters), batch {batch}, lr {train_config.lr}, {precision} on {device}; {len(train)} training "
          f"samples per epoch, {len(test)} held-out patches; changes {changes}", flush=True)
    rows, started, steps = [], time.perf_counter(), 0
    every_steps = max(1, args.every // batch)

    class BudgetSpent(Exception):
        pass

    def score(loss: float) -> None:
        dice = held_out_dice(model, test.images, test.labels.long(), precision=precision)  # (16,), None if absent
        row = dict(step=steps, samples=steps * batch, seconds=time.perf_counter() - started, loss=loss,
                   **bar_means(dice), dice=[finite_or_none(d) for d in dice])
        rows.append(row)
        shown = "  ".join(f"{k} {'-' if row[k] is None else f'{row[k]:.2f}'}" for k in ("vesicle", "fiducial",
                                                                                      "big_five"))
        print(f"[{args.label}] step {steps:>5} ({row['samples']:>6} samples, {row['seconds']:6.0f} s) loss {loss:.3f}"
              f"  Dice: {shown}", flush=True)
        write(False)

    def on_step(epoch: int, step: int, loss: float) -> None:  # train_model's per-step callback
        nonlocal steps
        steps += 1
        if steps % every_steps == 0 or steps >= total_steps:
            score(loss)
        if steps >= total_steps:
            raise BudgetSpent

    load_before = os.getloadavg()
    out = Path(args.out) if args.out else RESULTS / f"curve-{args.label}.json"

    def write(finished: bool) -> None:  # after every scoring, so an interrupted curve keeps its points
        wall = time.perf_counter() - started
        write_curve(out, dict(
            label=args.label, profile=args.profile, changes=changes, batch_size=batch, finished=finished,
            train=dataclasses.asdict(train_config), samples=steps * batch, wall_seconds=wall,
            samples_per_s=steps * batch / wall, held_out="non-overlapping 32^3 patches of the last tomogram",
            data=str(args.data), data_fingerprint=dataset_fingerprint(args.data), commit=commit(),
            machine=machine(device, load_before), rows=rows))

    try:  # the course's own loop: prior bias, layout, precision, augmentation as in every run
        train_model(model, train, train_config, device=device, augment=augment_patches, progress=False,
                    on_step=on_step)
    except BudgetSpent:
        pass
    write(True)
    print(f"[{args.label}] wrote {out} ({steps * batch} samples, {steps * batch / (time.perf_counter() - started):.2f}"
          f" samples/s, load {load_before[0]:.1f} -> {os.getloadavg()[0]:.1f})")


def machine(device, load_before) -> dict:
    """The machine and its load (1, 5, 15-minute averages) before and now."""
    return dict(cpu=platform.processor() or platform.machine(), cores=os.cpu_count(),
                torch_threads=torch.get_num_threads(), device=str(device), load_before=load_before,
                load_after=os.getloadavg())


def write_curve(out: Path, result: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out, "w") as handle:
        json.dump(result, handle, indent=1)


def curve_from_history(run_dir: Path, label: str, out: Path | None = None) -> Path:
    """A run folder's ``history.json`` (``val_dice`` after every epoch) as a curve file: samples seen and
    cumulative training seconds per epoch, with the run's settings as provenance."""
    description = json.loads((run_dir / "run.json").read_text())
    history = json.loads((run_dir / "history.json").read_text())
    machine_file = run_dir / "machine.json"
    rows, samples, seconds = [], 0, 0.0
    for entry in history:
        samples += round(entry["seconds"] * entry["samples_per_s"])
        seconds += entry["seconds"]
        rows.append(dict(epoch=entry["epoch"], samples=samples, seconds=seconds, loss=entry["loss"],
                         lr=entry["lr"], **bar_means(entry.get("val_dice", [None] * 16)),
                         dice=entry.get("val_dice")))
    out = out or RESULTS / f"curve-{label}.json"
    write_curve(out, dict(label=label, run=str(run_dir), train=description["train"],
                          data_fingerprint=description["data_fingerprint"], commit=commit(),
                          held_out="non-overlapping 32^3 patches of the last tomogram (history val_dice)",
                          machine=json.loads(machine_file.read_text()) if machine_file.is_file() else None,
                          samples=samples, wall_seconds=seconds, rows=rows))
    return out


if __name__ == "__main__":
    main()
