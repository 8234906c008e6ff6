"""What the model sees: per class, the share of training samples that hold it and of voxels that are it, for the
paper's fixed grid and for foreground-forced random crops (``TrainConfig.patch_sampling``). No training: a
measurement of the data stream alone, in seconds. Usage::

    python data_scripts/sampling_stats.py --profile cpu --data data/shrec-sim-cpu --samples 3000
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch

from mvgtutor.config import make_profile
from mvgtutor.data.classes import CLASSES
from mvgtutor.data.patches import label_counts, load_patch_datasets, load_training_crops
from mvgtutor.paths import atomic_write
from mvgtutor.train.runs import dataset_fingerprint

RESULTS = Path(__file__).resolve().parent / "results"


def stream_stats(labels: torch.Tensor) -> dict[str, list[float]]:
    """Per class: share of samples ``labels (N, p, p, p)`` that hold it, and share of all voxels that are it."""
    present = torch.stack([(labels == c).flatten(1).any(1) for c in range(len(CLASSES))], 1)  # (N, C)
    voxels = label_counts(labels, len(CLASSES)).double()
    return dict(samples_with_class=[round(float(v), 4) for v in present.double().mean(0)],
                voxel_share=[round(float(v), 6) for v in voxels / voxels.sum()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--data", required=True)
    parser.add_argument("--samples", type=int, default=3000, help="random crops to draw")
    parser.add_argument("--fraction", type=float, default=1 / 3, help="share of crops forced onto foreground")
    parser.add_argument("--out", help="JSON to write (default data_scripts/results/sampling-<profile>.json)")
    args = parser.parse_args()
    profile = make_profile(args.profile)
    grid, _ = load_patch_datasets(args.data, profile.data)
    crops = load_training_crops(args.data, profile.data, args.fraction, seed=0)
    _, crop_labels = crops.sample(args.samples, torch.Generator().manual_seed(0))
    result = dict(profile=args.profile, data=str(args.data), data_fingerprint=dataset_fingerprint(args.data),
                  classes=[c.name for c in CLASSES], grid=dict(samples=len(grid), **stream_stats(grid.labels)),
                  foreground=dict(samples=args.samples, fraction=args.fraction, **stream_stats(crop_labels)))
    out = Path(args.out) if args.out else RESULTS / f"sampling-{args.profile}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out, "w") as handle:
        json.dump(result, handle, indent=1)
    print(f"{'class':<10} {'grid: samples with':>19} {'crops: samples with':>20} {'grid voxels':>12} {'crop voxels':>12}")
    for c, name in enumerate(result["classes"]):
        g, f = result["grid"], result["foreground"]
        print(f"{name:<10} {g['samples_with_class'][c]:>19.3f} {f['samples_with_class'][c]:>20.3f} "
              f"{g['voxel_share'][c]:>12.5f} {f['voxel_share'][c]:>12.5f}")
    print(f"wrote {out} (load {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
