"""Reference results of the ablation lab: run registered experiments over seeds, one run at a time, appending to
``mvgtutor/ablations/results/ablations_<profile>.csv`` (each row with its commit, hardware, load, wall time, samples).

Run it in the background, at low priority, and commit the file as rows come in; a killed run resumes from the run
cache, and seeds already in the file are skipped:

    nice -n 10 .venv/bin/python data_scripts/ablation_reference.py --profile cpu --budget lab --seeds 3 \
        > ablation_reference.log 2>&1 &

The order puts the experiments that teach most per CPU minute first (the reference, one view, the repeated
view, no graph, ...); ``--only NAME ...`` runs a chosen list instead.
"""

from __future__ import annotations

import argparse
import sys
import time

from mvgtutor.ablations import ABLATIONS, read_results, run_seed
from mvgtutor.ablations.results import append_result, default_results_path
from mvgtutor.config import get_profile

PRIORITY = ("default", "view_xy", "repeat_xy", "graph_none", "graph_spectral", "k8", "fusion_norm_sum",
            "loss_boundary", "vsl_off", "pos_sinusoidal", "decoder_mf", "c128", "ln6", "k32", "graph_mincut",
            "fusion_learned", "loss_contrastive", "view_yz", "view_xz", "pos_shared", "pos_rotary", "decoder_mlp",
            "lambda1_0.5", "lambda2_2", "permutation", "p3da_trilinear", "graph_query_plus_node", "vsl_realigned")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--budget", default="lab")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", nargs="*", help="experiments to run, in this order (default: PRIORITY, then "
                        "the rest of the registry)")
    args = parser.parse_args(argv)
    profile = get_profile(args.profile)
    path = default_results_path(profile.name)
    order = args.only or list(PRIORITY) + [n for n in ABLATIONS if n not in PRIORITY]
    for name in order:
        if not ABLATIONS[name].available:
            print(f"{name}: not available ({ABLATIONS[name].needs})", flush=True)
            continue
        for seed in range(args.seeds):
            done = {(r["experiment"], r["seed"]) for r in read_results(path)
                    if r["profile"] == profile.name and r["budget"] == args.budget}
            if (name, seed) in done:
                continue
            started = time.time()
            row = run_seed(name, seed, profile, budget=args.budget)
            append_result(path, row)
            print(f"{time.strftime('%H:%M:%S')} {name} seed {seed}: mIoU {row['miou']:.2f} Dice {row['dice']:.2f} "
                  f"{row['samples_seen']} samples in {row['train_seconds']:.0f} s ({row['samples_per_s']:.2f}/s), "
                  f"wall {time.time() - started:.0f} s, load {row['load_1min']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
