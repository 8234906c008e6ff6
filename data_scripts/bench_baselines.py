"""Train and score baselines in one profile and record them, with provenance, in the profile's results file.

    MVGTUTOR_PROFILE=cpu nice -n 10 .venv/bin/python data_scripts/bench_baselines.py --models voxresnet unet3d
    .venv/bin/python data_scripts/bench_baselines.py --profile test --out /tmp/baselines_test.json

Each model trains through the run cache (``runs/<model>-<hash>``: an interrupted run resumes, a finished one is
only scored), then is scored on the held-out tomogram; its row (parameters, forward FLOPs per sample, training
samples/s, mIoU, Dice per class and per group) is written at once, so a long session keeps what it finished.
Provenance per row: commit, profile, machine, torch threads, load average before and after, wall time, date.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

from mvgtutor.baselines.compare import BASELINE_NAMES, compare_models
from mvgtutor.baselines.results import git_commit, machine_provenance, results_path, write_result
from mvgtutor.config import choose_device, get_profile
from mvgtutor.train.models import MODEL_NAMES


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", help="profile (default: $MVGTUTOR_PROFILE, else by hardware)")
    parser.add_argument("--models", nargs="+", choices=MODEL_NAMES, default=list(BASELINE_NAMES),
                        help="models to train and score, in this order (default: every baseline)")
    parser.add_argument("--out", help="results file (default: the profile's, mvgtutor/baselines/results/)")
    parser.add_argument("--device", help="torch device (default: cuda when available)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    profile = get_profile(args.profile)
    device = choose_device(args.device)
    out = args.out or results_path(profile.name)
    commit = git_commit()  # the code that trains: taken once, before any row is written
    for name in args.models:
        before = machine_provenance(device)
        started = time.perf_counter()
        (score,), _ = compare_models([name], profile, device=device, progress=False)
        wall = time.perf_counter() - started
        provenance = dict(before, commit=commit, profile=profile.name, wall_seconds=round(wall, 1),
                          load_average_after=machine_provenance(device)["load_average"])
        write_result(out, dataclasses.replace(score, provenance=provenance), profile.name)
        print(f"{name}: mIoU {score.miou:.3f}, Dice {score.mean_dice:.3f}, {score.params / 1e6:.2f}M params, "
              f"{score.flops_per_sample / 1e9:.2f} GFLOPs/sample, {score.samples_per_s:.1f} samples/s, "
              f"wall {wall:.0f} s (load {before['load_average'][0]:.1f}) -> {out}", flush=True)


if __name__ == "__main__":
    main()
