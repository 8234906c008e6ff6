"""Reproduce the full held-out table of every reference run (or of those named) from its weights.

For each reference, the held-out tomograms of the dataset it trained on are segmented again (whole-tomogram
inference, overlap 0.5, Gaussian window) and each class's Dice is printed beside its card's. The dataset is found
under the data root by the card's fingerprint; make it first with ``MVGTUTOR_PROFILE=<card's profile> python -m
mvgtutor simulate --default``. Usage::

    python data_scripts/bench_reference.py                 # every folder under mvgtutor/references/
    python data_scripts/bench_reference.py mvgformer-cpu --data data/shrec-sim-cpu
"""

from __future__ import annotations

import argparse
import sys

from mvgtutor.data.classes import CLASSES
from mvgtutor.train.reference import CARD_FILE, references_root, reproduce_card


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="reference names or folders (default: all under mvgtutor/references/)")
    parser.add_argument("--data", help="the dataset the reference trained on (default: found by fingerprint)")
    parser.add_argument("--tolerance", type=float, default=0.01, help="largest Dice difference counted as equal")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    names = args.names or sorted(p.name for p in references_root().iterdir() if (p / CARD_FILE).is_file())
    worst = 0.0
    for name in names:
        rows = reproduce_card(name, args.data, device=args.device)
        print(f"\n{name}")
        print(f"{'tomogram':<10} {'class':<10} {'card':>7} {'measured':>9} {'diff':>7}")
        for row in rows:
            if row["card"] is None and row["measured"] is None:
                continue
            show = (lambda v: f"{v:.4f}" if v is not None else "-")
            print(f"{row['tomogram']:<10} {CLASSES[row['label']].name:<10} {show(row['card']):>7} "
                  f"{show(row['measured']):>9} {show(row['difference']):>7}")
            worst = max(worst, abs(row["difference"] or 0.0))
    print(f"\nlargest difference {worst:.4f} (tolerance {args.tolerance})")
    return 0 if worst <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
