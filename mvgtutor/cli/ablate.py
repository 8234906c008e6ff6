"""``python -m mvgtutor ablate``: run one of the paper's ablations over seeds, list them, or report the results.

    python -m mvgtutor ablate --list
    python -m mvgtutor ablate k8 --profile cpu --seeds 3          # the lab budget: one epoch per run
    python -m mvgtutor ablate --report --profile cpu --plot ablations.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mvgtutor.config import PROFILE_NAMES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``ablate``."""
    from mvgtutor.ablations.runner import BUDGETS

    parser.add_argument("name", nargs="?", help="the experiment to run (see --list)")
    parser.add_argument("--list", action="store_true", help="list every experiment with its config delta and the "
                        "paper's figure and table")
    parser.add_argument("--report", action="store_true", help="print mean, std, 95%% interval and the paired "
                        "difference from 'default' per experiment, and write a plot (--plot)")
    parser.add_argument("--profile", choices=PROFILE_NAMES, help="settings profile (default: $MVGTUTOR_PROFILE, "
                        "else gpu when CUDA is available, else cpu)")
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (default 3)")
    parser.add_argument("--first-seed", type=int, default=0, help="first seed (default 0)")
    parser.add_argument("--budget", choices=tuple(BUDGETS), default="lab", help="training per run: 'lab' (one "
                        "epoch, default) or 'profile' (the profile's own epochs)")
    parser.add_argument("--results", type=Path, help="results CSV (default: the reference table "
                        "mvgtutor/ablations/results/ablations_<profile>.csv in a source checkout, else beside the runs)")
    parser.add_argument("--metric", choices=("miou", "dice"), default="miou", help="score of --report")
    parser.add_argument("--plot", type=Path, help="PNG written by --report (default: beside the results file)")
    parser.add_argument("--device", help="torch device, e.g. cpu or cuda:0 (default: cuda when available)")
    parser.add_argument("--progress", action="store_true", help="show the training progress bar")


def _list() -> int:
    from mvgtutor.ablations.registry import ABLATIONS, describe

    print(f"{'name':<24} {'paper':>5}  {'source':<26} {'family':<36} delta")
    for ablation in ABLATIONS.values():
        row = describe(ablation)
        paper = "" if row["paper_miou"] == "" else f"{row['paper_miou']:.1f}"
        extra = "" if ablation.available else f"   [not available: needs {ablation.needs}]"
        if row["compare_with"] != "default":
            extra += f"   [compared with {row['compare_with']}]"
        print(f"{row['name']:<24} {paper:>5}  {row['source']:<26} {row['family']:<36} {row['delta']}{extra}")
    return 0


def _report(args: argparse.Namespace, profile_name: str) -> int:
    from mvgtutor.ablations.report import format_report, plot_report, report_rows
    from mvgtutor.ablations.results import default_results_path, read_results
    from mvgtutor.errors import DataError

    path = args.results or default_results_path(profile_name)
    results = read_results(path)
    if not results:
        raise DataError(f"{path}: no results yet; run `python -m mvgtutor ablate default --profile {profile_name}`")
    rows = report_rows(results, profile_name, args.budget, args.metric)
    print(f"{path}: profile {profile_name}, budget {args.budget}")
    print(format_report(rows, args.metric))
    plot = args.plot or path.with_suffix(f".{args.budget}.{args.metric}.png")
    plot_report(rows, plot, args.metric, title=f"Ablations, profile {profile_name}, budget {args.budget}")
    print(f"plot: {plot}")
    return 0


def run(args: argparse.Namespace) -> int:
    """List, report, or run ``args.name`` over ``--seeds`` seeds and print each seed's scores."""
    from mvgtutor.cli import checks
    from mvgtutor.config import profile_name
    from mvgtutor.errors import ConfigError

    if args.list:
        return _list()
    checks.positive_int("--seeds", args.seeds)
    checks.non_negative_int("--first-seed", args.first_seed)
    if args.device is not None:
        checks.torch_device("--device", args.device)
    name = profile_name(args.profile)
    if args.report:
        return _report(args, name)
    if not args.name:
        raise ConfigError("name an experiment to run (`ablate k8`), or use --list or --report")
    from mvgtutor.ablations.results import default_results_path
    from mvgtutor.ablations.runner import run_ablation

    results = args.results or default_results_path(name)
    for row in run_ablation(args.name, profile=name, seeds=args.seeds, first_seed=args.first_seed,
                            budget=args.budget, results=results, device=args.device, progress=args.progress):
        print(f"{row['experiment']} seed {row['seed']}: mIoU {row['miou']:.1f}%  Dice {row['dice']:.1f}%  "
              f"({row['samples_seen']} samples in {row['train_seconds']:.0f} s, {row['samples_per_s']:.1f}/s)")
    print(f"results: {results}")
    return 0
