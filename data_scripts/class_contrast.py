"""Measure each class's contrast in a simulated tomogram (mean inside the label in background std units).

    python data_scripts/class_contrast.py --size 256 --seeds 0 1

Prints one JSON line: the settings, the machine load, and per class the mean over seeds of
``simulate.measure.class_contrast`` (negative: darker than the ice, as proteins are in real data).
"""

from __future__ import annotations

import argparse
import json
import os
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--preset", default=None, help="scene preset (simulate.presets), default: the simulator's")
    args = parser.parse_args(argv)

    from mvgtutor.simulate import simulate_tomogram
    from mvgtutor.simulate.measure import class_contrast

    kwargs = {}
    if args.preset:
        from mvgtutor.simulate import SimulationConfig

        kwargs["config"] = SimulationConfig.preset(args.preset)
    per_seed = []
    started = time.perf_counter()
    for seed in args.seeds:
        tomogram = simulate_tomogram(size=args.size, seed=seed, **kwargs)
        per_seed.append(class_contrast(tomogram.reconstruction, tomogram.class_mask,
                                       tuple(tomogram.metadata["slab_z"])))
    names = sorted({n for c in per_seed for n in c}, key=lambda n: [c for c in per_seed if n in c][0][n])
    mean = {n: round(sum(c[n] for c in per_seed if n in c) / sum(n in c for c in per_seed), 3) for n in names}
    print(json.dumps({"size": args.size, "seeds": args.seeds, "preset": args.preset,
                      "seconds": round(time.perf_counter() - started, 1), "load": os.getloadavg()[0],
                      "contrast": mean}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
