"""``python -m mvgtutor export-reference RUN_DIR OUT_DIR``: a finished run as a reference folder.

The folder holds the run's ``run.json`` and ``history.json``, its weights in fp16 safetensors
(``model.safetensors``, no pickle) and ``card.json``: configs, data seed and fingerprint, commit, machine, wall
time and the held-out Dice per class of whole-tomogram inference (``mvgtutor.train.reference``).
``python -m mvgtutor evaluate --run OUT_DIR ...`` then works on it as on any run.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``export-reference``."""
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a finished run folder (`python -m mvgtutor train --out`)")
    parser.add_argument("out_dir", metavar="OUT_DIR", help="reference folder to write, e.g. mvgtutor/references/mvgformer-cpu")
    parser.add_argument("--data", help="the dataset the run trained on (default: the folder under the data root "
                        "with the run's fingerprint)")
    parser.add_argument("--name", help="the reference's name on its card (default: OUT_DIR's folder name)")
    parser.add_argument("--overwrite", action="store_true", help="replace the files of an existing OUT_DIR")
    parser.add_argument("--no-check", action="store_true", help="skip the card's reproduction check (the Dice on "
                        "the test profile's held-out tomogram, which a test compares the weights against)")
    parser.add_argument("--device", help="torch device for the held-out inference (default: cuda when available)")


def run(args: argparse.Namespace) -> int:
    """Export the run and print its held-out figures."""
    from pathlib import Path

    from mvgtutor.cli import checks
    from mvgtutor.train.reference import export_reference

    device = checks.torch_device("--device", args.device)
    checks.writable_folder("OUT_DIR", Path(args.out_dir))
    card = export_reference(args.run_dir, args.out_dir, args.data, name=args.name, overwrite=args.overwrite,
                            check=not args.no_check,
                            device=device)
    print(f"wrote {args.out_dir} ({card['weights']['bytes'] / 1e6:.1f} MB of fp16 weights)")
    for tomogram, scores in card["held_out"].items():
        shown = "  ".join(f"{key} {value:.3f}" if value is not None else f"{key} -"
                          for key, value in scores.items() if key != "dice")
        print(f"held-out {tomogram}: {shown}")
    return 0
