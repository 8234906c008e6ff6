"""Run one ablation over several seeds through the run cache and score each run on the held-out patches.

A *budget* says how long each run trains, on top of the profile's data and model:

* ``"profile"``: the profile's own training (cpu: 3 epochs, about 10 minutes on a 2-core laptop);
* ``"lab"``: one epoch without per-epoch validation, the short budget of the course's reference table and of a
  2-hour lab (cpu: about 375 patches seen; expect small, noisy differences, which is what chapter 11 is about).

Each run is ``mvgtutor.train.runs.trained_run`` (asking twice trains once), scored with
``mvgtutor.train.validation.patch_scores`` on whole held-out patches (no overlap-tile blending: ours, cheaper
than the paper's overlap-tile inference of Sec. 5.2.1), and appended to the results table with its provenance.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import os
import platform
import time
from pathlib import Path

import torch

from mvgtutor.ablations.registry import Ablation, ablation_profile, get_ablation
from mvgtutor.ablations.results import append_result, default_results_path
from mvgtutor.config import Profile, get_profile
from mvgtutor import provenance
from mvgtutor.errors import ConfigError
from mvgtutor.paths import project_root

BUDGETS: dict[str, dict] = {
    "profile": {},
    "lab": dict(epochs=1, validate=False),
}


def budget_train(profile: Profile, budget: str, seed: int) -> Profile:
    """``profile`` with the training of ``budget`` (a name of ``BUDGETS``) and ``seed``."""
    if budget not in BUDGETS:
        raise ConfigError(f"unknown budget {budget!r}: use one of {', '.join(BUDGETS)}")
    train = dataclasses.replace(profile.train, seed=seed, **BUDGETS[budget])
    return dataclasses.replace(profile, train=train)


def hardware() -> str:
    """One line naming the machine: the CPU model and its cores, and the CUDA device if torch uses one."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            names = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    text = f"{cpu}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}"
    return text + (f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "")


@functools.lru_cache(maxsize=1)
def commit() -> str:
    """The source checkout's commit (``+dirty`` with uncommitted changes), or ``unknown`` outside one.

    Read once per process, on the first call (``run_seed`` calls it before training), so a run records the code
    it was started with even when the checkout moves on while it trains."""
    root = project_root()
    return "unknown" if root is None else provenance.git_commit(root, short=True)


def held_out_scores(run, data_dir: str | os.PathLike, profile: Profile):
    """``SegmentationScores`` of a trained ``run`` on the held-out patches of ``data_dir``."""
    from mvgtutor.data.patches import load_patch_datasets
    from mvgtutor.train.engine import as_patch_tensors
    from mvgtutor.train.validation import patch_scores

    _, test_set = load_patch_datasets(data_dir, profile.data)
    held_out = as_patch_tensors(test_set)
    return patch_scores(run.model, held_out.images, held_out.labels.long())


def run_seed(ablation: Ablation | str, seed: int, profile: Profile | str | None = None, *, budget: str = "lab",
             data_dir: str | os.PathLike | None = None, device=None, progress: bool = False,
             train_overrides: dict | None = None) -> dict:
    """Train (or fetch from the run cache) one seed of ``ablation`` and return its results row (scores in %).

    ``train_overrides`` change the training further (tests: one step); they are recorded in the ``budget``
    column as ``<budget>+custom``.
    """
    from mvgtutor.train.runs import trained_run

    ablation = get_ablation(ablation) if isinstance(ablation, str) else ablation
    base = profile if isinstance(profile, Profile) else get_profile(profile)
    chosen = budget_train(ablation_profile(ablation, base), budget, seed)
    if train_overrides:
        chosen = dataclasses.replace(chosen, train=dataclasses.replace(chosen.train, **train_overrides))
    if data_dir is None:
        from mvgtutor.data.default import default_dataset

        data_dir = default_dataset(base)
    source = commit()  # before training: the code this run starts with
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    started = time.perf_counter()
    run = trained_run(chosen, data_dir, model_name=ablation.model_name, model_config=chosen.model,
                      train_config=chosen.train, device=device, progress=progress)
    wall = time.perf_counter() - started
    scores = held_out_scores(run, data_dir, chosen)
    train_seconds = sum(entry.get("seconds", 0.0) for entry in run.history)
    samples = sum(round(entry.get("samples_per_s", 0.0) * entry.get("seconds", 0.0)) for entry in run.history)
    return dict(
        experiment=ablation.name, seed=seed, profile=base.name, budget=budget + ("+custom" if train_overrides else ""),
        miou=round(100 * scores.miou, 3), dice=round(100 * scores.mean_dice, 3), epochs=len(run.history),
        samples_seen=samples, train_seconds=round(train_seconds, 1),
        samples_per_s=round(samples / train_seconds, 2) if train_seconds else 0.0, wall_seconds=round(wall, 1),
        load_1min=round(load, 2), run=run.directory.name, commit=source, hardware=hardware(),
        torch=torch.__version__, finished_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )


def run_ablation(name: str, *, profile: Profile | str | None = None, seeds: int = 3, first_seed: int = 0,
                 budget: str = "lab", results: str | os.PathLike | None = None, device=None,
                 progress: bool = False, train_overrides: dict | None = None) -> list[dict]:
    """Run ``name`` for seeds ``first_seed .. first_seed + seeds - 1``, appending each row to ``results``
    (default ``default_results_path(profile)``) as soon as it is scored; returns the rows."""
    if seeds < 1:
        raise ConfigError(f"--seeds {seeds}: run at least 1 seed (3 or more for an interval)")
    base = profile if isinstance(profile, Profile) else get_profile(profile)
    ablation = get_ablation(name)
    ablation_profile(ablation, base)  # an unavailable experiment fails here, before any data is made
    path = Path(results) if results is not None else default_results_path(base.name)
    rows = []
    for seed in range(first_seed, first_seed + seeds):
        row = run_seed(ablation, seed, base, budget=budget, device=device, progress=progress,
                       train_overrides=train_overrides)
        append_result(path, row)
        rows.append(row)
    return rows
