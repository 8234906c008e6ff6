"""Baselines side by side (chapter 10): cost and held-out scores of trained runs, measured the same way for all.

Every model trains through the run cache (``mvgtutor.train.runs.trained_run``, hence the one engine
``train_model``) on the same patches with the same loss, and is scored the same way: overlap-tile inference on the
held-out tomogram (``predict_volume``) and the confusion-matrix metrics of Sec. 5.1.3 (``segmentation_scores``).
From the same run come the cost figures: parameters, forward FLOPs per 32^3 sample (``FlopCounterMode``), and
training samples/s (from the run's own history: the throughput of the training that produced the scores).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from mvgtutor.config import Profile
from mvgtutor.data.classes import CLASSES
from mvgtutor.errors import DataError
from mvgtutor.train.models import BASELINE_NAMES

DISPLAY_NAMES = {"mvgformer": "MVGFormer (P3DA)", "voxresnet": "VoxResNet", "unet3d": "3D U-Net (DeepFinder-style)",
                 "dynunet": "DynUNet (nnU-Net, residual)", "mednext": "MedNeXt-M", "unetr": "UNETR",
                 "swin_unetr": "Swin UNETR"}

# The paper's Table 2 ("Experimental results on cryo-ET tomogram segmentation", SHREC 2021, mean +- std of five
# runs where given), quoted for the rows that match one of our models: (row as printed, mIoU, Dice).
# DeepFinder's row is cited by the paper from SHREC 2021, not retrained; our U-Net is DeepFinder-style only.
PAPER_TABLE_2: dict[str, tuple[str, str, str]] = {
    "unet3d": ("DeepFinder [SHREC21]", "83.5", "91.0"),
    "voxresnet": ("VoxResNet [NeuroImage18]", "83.7±0.4", "91.1±0.3"),
    "swin_unetr": ("Swin UNETR [CVPR22]", "79.4±0.2", "88.5±0.1"),
    "mednext": ("MedNeXt [miccai23]", "82.7±0.6", "90.5±0.3"),
    "mvgformer": ("MVGFormer(P3DA)", "86.9 ±0.2", "93.1 ±0.4"),
}
# The paper's Table 7 ("Inference time and computational complexity comparison"): parameters as printed.
PAPER_TABLE_7_PARAMS = {"voxresnet": "6.8M", "mednext": "17.6M", "mvgformer": "13.7M"}


def class_groups() -> dict[str, tuple[int, ...]]:
    """Labels grouped by kind and size (ours; the paper reports means only): proteins of 15 nm and more, 10 to 15
    nm, under 10 nm (equivalent-sphere diameters of ``CLASSES``), then vesicle and fiducial."""
    proteins = [c for c in CLASSES if c.kind == "protein"]
    return {
        "large proteins": tuple(c.label for c in proteins if c.diameter_nm >= 15),
        "medium proteins": tuple(c.label for c in proteins if 10 <= c.diameter_nm < 15),
        "small proteins": tuple(c.label for c in proteins if c.diameter_nm < 10),
        "vesicle": tuple(c.label for c in CLASSES if c.kind == "vesicle"),
        "fiducial": tuple(c.label for c in CLASSES if c.kind == "fiducial"),
    }


def group_dice(dice) -> dict[str, float | None]:
    """Mean Dice of each ``class_groups()`` group from per-class ``dice (num_classes,)`` (NaN or None: a class in
    neither truth nor prediction, left out); None for a group with no scored class."""
    values = np.array([np.nan if d is None else d for d in dice], dtype=np.float64)
    means = {}
    for name, labels in class_groups().items():
        scored = [values[label] for label in labels if label < len(values) and not np.isnan(values[label])]
        means[name] = float(np.mean(scored)) if scored else None
    return means


def parameter_count(model: nn.Module) -> int:
    """Number of trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def forward_flops_per_sample(model: nn.Module, input_size: int = 32, in_channels: int = 1,
                             batch_size: int = 2) -> int:
    """FLOPs of one inference forward pass per ``(in_channels, s, s, s)`` sample, counted by ``FlopCounterMode``
    (a multiply-add is 2 FLOPs) at ``batch_size`` in eval mode; the model's mode is restored."""
    device = next(model.parameters()).device
    images = torch.zeros(batch_size, in_channels, input_size, input_size, input_size, device=device)
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(images)
    model.train(was_training)
    return counter.get_total_flops() // batch_size


def training_throughput(history: list[dict]) -> tuple[float, float]:
    """``(samples/s, seconds)`` of a run's training from its history: all samples over all epochs' seconds."""
    seconds = sum(entry["seconds"] for entry in history)
    samples = sum(entry["samples_per_s"] * entry["seconds"] for entry in history)
    if seconds <= 0:
        raise DataError("the run's history holds no timed epoch: train it for at least one epoch")
    return samples / seconds, seconds


@dataclass(frozen=True)
class BaselineScore:
    """One model's row of the chapter's table: its cost and its held-out scores, from one run."""

    model: str  # a name of mvgtutor.train.models.MODEL_NAMES
    params: int
    flops_per_sample: int  # forward, one 32^3 sample
    samples_per_s: float  # training throughput of the run that produced the scores
    train_seconds: float
    epochs: int
    miou: float  # over the foreground classes present (Sec. 5.1.3)
    mean_dice: float
    dice: list[float | None]  # per class, None where the class is in neither truth nor prediction
    groups: dict[str, float | None] = field(default_factory=dict)  # mean Dice per class_groups() group
    provenance: dict = field(default_factory=dict)  # where the numbers were made (results files)

    def to_json(self) -> dict:
        """A JSON-ready dict (NaN written as None)."""
        values = dataclasses.asdict(self)
        for key in ("miou", "mean_dice"):
            values[key] = None if math.isnan(values[key]) else values[key]
        return values

    @classmethod
    def from_json(cls, values: dict) -> BaselineScore:
        """The inverse of ``to_json``; a missing field is a ``DataError``."""
        names = {f.name for f in dataclasses.fields(cls)}
        try:
            values = {key: value for key, value in values.items() if key in names}
            values["miou"] = float("nan") if values["miou"] is None else values["miou"]
            values["mean_dice"] = float("nan") if values["mean_dice"] is None else values["mean_dice"]
            return cls(**values)
        except (KeyError, TypeError) as error:
            raise DataError(f"a results entry lacks a field ({error}): regenerate it with "
                            f"data_scripts/bench_baselines.py") from None


def score_run(run, volume, class_mask, *, device: torch.device | str | None = None,
              batch_size: int = 32) -> tuple[BaselineScore, torch.Tensor]:
    """Cost and scores of a trained ``run`` (``mvgtutor.train.runs.Run``) on one held-out tomogram.

    ``volume (D, H, W)``: the normalised tomogram; ``class_mask (D, H, W)``: its labels. Returns the score and
    the predicted labels ``(D, H, W)`` uint8 (overlap-tile inference: 32^3 tiles, 50% overlap, Gaussian window).
    """
    from mvgtutor.evaluate import predict_volume, segmentation_scores

    model = run.model.to(device) if device is not None else run.model
    samples_per_s, seconds = training_throughput(run.history)
    labels = predict_volume(model, volume, tile=run.model_config.input_size, batch_size=batch_size,
                            device=next(model.parameters()).device)
    scores = segmentation_scores(labels, class_mask, run.model_config.num_classes)
    dice = [None if math.isnan(d) else float(d) for d in scores.dice]
    score = BaselineScore(
        model=run.model_name, params=parameter_count(model),
        flops_per_sample=forward_flops_per_sample(model, run.model_config.input_size, run.model_config.in_channels),
        samples_per_s=samples_per_s, train_seconds=seconds, epochs=len(run.history), miou=scores.miou,
        mean_dice=scores.mean_dice, dice=dice, groups=group_dice(dice))
    return score, labels


def held_out_tomogram(profile: Profile, data_dir: str | os.PathLike):
    """The last tomogram of ``data_dir`` (the held-out one): ``(normalised volume (D, H, W), class mask)``."""
    from mvgtutor.data.formats import list_tomograms, read_shrec_tomogram
    from mvgtutor.data.patches import normalize_tomogram

    tomogram = read_shrec_tomogram(list_tomograms(data_dir)[-1], expected_voxel_size_nm=profile.data.voxel_size_nm,
                                   with_extras=False)
    return normalize_tomogram(tomogram.reconstruction), tomogram.class_mask


def compare_models(names, profile: Profile, data_dir: str | os.PathLike | None = None, *,
                   device: torch.device | str | None = None, progress: bool = False
                   ) -> tuple[list[BaselineScore], dict[str, torch.Tensor]]:
    """Train (or load from the run cache) each model of ``names`` with ``profile``'s settings and score it on
    the held-out tomogram. Returns the scores and each model's predicted labels ``(D, H, W)``."""
    from mvgtutor.train.runs import trained_run

    if data_dir is None:
        from mvgtutor.data.default import default_dataset

        data_dir = default_dataset(profile)
    volume, class_mask = held_out_tomogram(profile, data_dir)
    scores, predictions = [], {}
    for name in names:
        run = trained_run(profile, data_dir, model_name=name, device=device, progress=progress)
        score, labels = score_run(run, volume, class_mask, device=device)
        scores.append(score)
        predictions[name] = labels
    return scores, predictions


def comparison_table(scores, with_paper: bool = True) -> str:
    """A Markdown table, one row per ``BaselineScore``: params, forward GFLOPs per sample, training samples/s,
    mIoU and mean Dice (%), Dice per class group (%), and the paper's Table 2 row beside it."""
    groups = list(class_groups())
    header = ["model", "params", "GFLOPs/sample", "samples/s", "mIoU", "Dice", *[f"Dice {g}" for g in groups]]
    if with_paper:
        header += ["paper (Table 2 row)", "paper mIoU", "paper Dice"]

    def percent(value) -> str:
        return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f}"

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for score in scores:
        row = [DISPLAY_NAMES.get(score.model, score.model), f"{score.params / 1e6:.2f}M",
               f"{score.flops_per_sample / 1e9:.2f}", f"{score.samples_per_s:.1f}", percent(score.miou),
               percent(score.mean_dice), *[percent(score.groups.get(g)) for g in groups]]
        if with_paper:
            row += list(PAPER_TABLE_2.get(score.model, ("not in the paper", "", "")))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def live_profile(profile: Profile) -> Profile:
    """The profile chapter 10 trains baselines with: in the ``test`` profile one epoch (two steps) and no per-epoch
    validation, so that all six train and are scored within seconds each; in any other profile ``profile`` itself
    (the run cache shares its runs with the CLI and ``data_scripts/bench_baselines.py``)."""
    if profile.name != "test":
        return profile
    return dataclasses.replace(profile, train=dataclasses.replace(profile.train, epochs=1, validate=False))


def cached_run(profile: Profile, data_dir: str | os.PathLike, model_name: str, *,
               device: torch.device | str = "cpu"):
    """The finished run of ``model_name`` with ``profile``'s settings from the run cache, or None (nothing is
    trained: a reader who ran ``data_scripts/bench_baselines.py`` or chapter 7 has it)."""
    from mvgtutor.paths import runs_root
    from mvgtutor.train.runs import load_run, run_description, run_key

    description = run_description(model_name, profile.model, profile.train, profile.data, data_dir)
    run_dir = runs_root() / f"{model_name}-{run_key(description)}"
    if not (run_dir / "model.pt").is_file():
        return None
    run = load_run(run_dir, device)
    return run if run.finished else None


def live_models(profile: Profile) -> tuple[str, ...]:
    """The models chapter 10 trains itself: every one in the ``test`` profile (a few steps each); elsewhere
    MVGFormer (chapter 7's run, from the run cache) and VoxResNet, the paper's strongest baseline and the
    cheapest to train; the other rows come from the profile's committed results file."""
    return ("mvgformer", *BASELINE_NAMES) if profile.name == "test" else ("mvgformer", "voxresnet")


def baseline_scores(names, profile: Profile, data_dir: str | os.PathLike, *, live=None,
                    device: torch.device | str | None = None) -> tuple[list[BaselineScore], dict[str, str]]:
    """Scores of ``names`` for chapter 10, and where each came from.

    A model in ``live`` (default ``live_models(profile)``) is trained now, or taken from the run cache, with
    ``live_profile(profile)`` (MVGFormer with ``profile`` itself: chapter 7's run) and scored on the held-out
    tomogram. Any other model's row is read from the profile's committed results file
    (``mvgtutor.baselines.results``); a model in neither is left out. ``sources[name]`` says which, with the
    file's commit, date and load average, or how to make the missing row.
    """
    from mvgtutor.baselines.results import read_results, results_path

    live = live_models(profile) if live is None else tuple(live)
    path = results_path(profile.name)
    committed = {row.model: row for row in read_results(path)} if path.is_file() else {}
    scores, sources = [], {}
    for name in names:
        if name in live:
            trained_with = profile if name == "mvgformer" else live_profile(profile)
            (score,), _ = compare_models([name], trained_with, data_dir, device=device)
            scores.append(score)
            sources[name] = f"trained now ({profile.name} profile)"
        elif name in committed:
            row = committed[name]
            scores.append(row)
            made = row.provenance
            load = (made.get("load_average") or [float("nan")])[0]
            sources[name] = (f"{path.name}: commit {str(made.get('commit'))[:12]}, {made.get('date')}, "
                             f"{made.get('processor')} x{made.get('cpu_count')} at load {load:.1f}, "
                             f"{made.get('wall_seconds', float('nan')) / 60:.0f} min")
        else:
            sources[name] = (f"left out: no row in {path.name}; make it with data_scripts/bench_baselines.py "
                             f"--profile {profile.name} --models {name}")
    return scores, sources


def reference_model(name: str, profile: Profile, *, device: torch.device | str = "cpu") -> nn.Module | None:
    """The model of the committed reference run ``mvgtutor/references/<name>-<profile>`` (issue 13's
    ``mvgtutor.train.reference``), or None where there is none."""
    try:
        from mvgtutor.train.reference import load_reference
    except ImportError:  # a checkout without issue 13's reference runs
        return None
    try:
        return load_reference(f"{name}-{profile.name}", device).model
    except DataError:
        return None


def trained_models(names, profile: Profile, data_dir: str | os.PathLike, *,
                   device: torch.device | str = "cpu") -> dict[str, nn.Module]:
    """The trained models of ``names`` that this machine has, by name, in eval mode on ``device``: a finished run
    in the run cache (those ``baseline_scores`` trained, and any made by ``data_scripts/bench_baselines.py``
    here), else a committed reference run (``reference_model``); a model with neither is left out."""
    models = {}
    for name in names:
        run = cached_run(profile if name == "mvgformer" else live_profile(profile), data_dir, name, device=device)
        model = run.model if run is not None else reference_model(name, profile, device=device)
        if model is not None:
            models[name] = model
    return models


def predict_slice(model: nn.Module, volume, z: int, *, tile: int = 32,
                  device: torch.device | str | None = None) -> torch.Tensor:
    """Labels ``(H, W)`` uint8 of plane ``z`` of ``volume (D, H, W)``, from overlap-tile inference on the
    ``tile``-thick slab around it (cheap: one layer of tiles; near the slab's faces it can differ slightly from a
    prediction of the whole volume, whose tiles also overlap along z)."""
    from mvgtutor.evaluate import predict_volume

    start = min(max(z - tile // 2, 0), volume.shape[0] - tile)
    slab = predict_volume(model, volume[start:start + tile], tile=tile,
                          device=device or next(model.parameters()).device)
    return slab[z - start]


def ranking(scores, key: str = "miou") -> list[str]:
    """Model names of ``scores`` from best to worst by ``key`` (a float field of ``BaselineScore``)."""
    return [s.model for s in sorted(scores, key=lambda s: -getattr(s, key))]


def paper_ranking() -> list[str]:
    """Our model names of ``PAPER_TABLE_2``'s rows from best to worst by the paper's mIoU."""
    return sorted(PAPER_TABLE_2, key=lambda name: -float(PAPER_TABLE_2[name][1].split("±")[0]))
