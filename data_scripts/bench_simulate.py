"""Benchmark the simulator: time and peak memory per tomogram size, and the cost of each physical effect.

    python data_scripts/bench_simulate.py                  # 256^3 and 512^3, all physics on, + effects at 256^3
    python data_scripts/bench_simulate.py --sizes 128 --effects-size 128 --compare-teamtomo

Targets (issues 4 and 12, 2-core CPU, all physics on): 256^3 < 30 s; 512^3 < 3 min and < 8 GB. Each measurement runs in a fresh
subprocess so that its peak resident memory is its own. CPU time is printed beside wall-clock time because a
shared machine inflates the latter. The cost of each effect is measured by imaging one packed scene with and
without it. Prints one line per run; nothing is written.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

_CHILD = r"""
import dataclasses, json, resource, sys, time
import torch
from mvgtutor.simulate import SimulationConfig, simulate_tomogram
size, off, oversample = int(sys.argv[1]), [e for e in sys.argv[2].split(",") if e], int(sys.argv[3])
preset, method = sys.argv[4], sys.argv[5]
config = SimulationConfig.preset(preset).without(*off)
config = dataclasses.replace(config, imaging=dataclasses.replace(config.imaging, oversample=oversample,
                                                                 reconstruction=method))
start, cpu_start = time.perf_counter(), time.process_time()
result = simulate_tomogram(size=size, seed=0, config=config)
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: kilobytes
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "peak_gb": peak_gb, "stages": result.metadata["timings_s"],
                  "particles": len(result.particles), "snr": result.metadata["measured_snr"]}))
"""

_EFFECTS = r"""
import json, sys, time
import numpy as np
from mvgtutor.simulate import image_scene, make_scene
from mvgtutor.simulate.imaging import EFFECTS, ImagingConfig
size = int(sys.argv[1])
scene = make_scene(size, np.random.default_rng(0))
results = {}
for name in ("all physics",) + EFFECTS + ("fourier",):
    if name == "fourier":  # not an effect: the other reconstruction
        config = ImagingConfig(reconstruction="fourier")
    else:
        config = ImagingConfig() if name == "all physics" else ImagingConfig().without(name)
    best = float("inf")
    for _ in range(2):  # the faster of two runs: less sensitive to a busy machine
        start = time.process_time()
        image_scene(scene, size, seed=0, imaging=config)
        best = min(best, time.process_time() - start)
    results[name] = best
print(json.dumps(results))
"""

_TEAMTOMO = r"""
import json, resource, sys, time
import torch, torch_fourier_slice
from mvgtutor.simulate.tomography import (project_tilt_series, projection_rotation_matrix, tilt_angles,
                                               direct_fourier_inversion)
size, which = int(sys.argv[1]), sys.argv[2]
volume = torch.randn(size, size, size, generator=torch.Generator().manual_seed(0))
angles = tilt_angles()
start = time.perf_counter()
if which == "ours":
    reconstruction = direct_fourier_inversion(project_tilt_series(volume, angles), angles)
else:
    matrices = torch.stack([projection_rotation_matrix(float(a)) for a in angles])
    images = torch_fourier_slice.project_3d_to_2d(volume, matrices, pad_factor=2.0)
    reconstruction = torch_fourier_slice.backproject_2d_to_3d(images, matrices, pad_factor=2.0)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
"""


def _run(code: str, *args) -> dict:
    """Run ``code`` in a fresh Python with ``args``; returns the JSON line it prints."""
    done = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _line(label: str, result: dict) -> str:
    if "error" in result:
        return f"{label:<34} failed: {result['error']}"
    stages = " ".join(f"{k} {v:.1f}s" for k, v in result.get("stages", {}).items())
    cpu = f"  cpu {result['cpu_seconds']:6.1f} s" if "cpu_seconds" in result else ""
    return f"{label:<34} {result['seconds']:7.1f} s{cpu}  peak {result['peak_gb']:5.2f} GB  {stages}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--effects-size", type=int, default=256, help="size for the per-effect costs (0: skip)")
    parser.add_argument("--oversample", action="store_true", help="also time 2x oversampling at --effects-size")
    parser.add_argument("--preset", default="shrec", help="scene preset of the whole runs (shrec | dense)")
    parser.add_argument("--compare-teamtomo", type=int, default=0, metavar="SIZE",
                        help="also time projection + WBP against torch-fourier-slice's 3D version at SIZE")
    args = parser.parse_args(argv)

    import torch

    print(f"# bench_simulate  {time.strftime('%Y-%m-%d %H:%M')}  torch {torch.__version__}  "
          f"{torch.get_num_threads()} threads  {platform.processor() or platform.machine()}")
    print(f"# all physics on, seed 0, load {os.getloadavg()[0]:.1f}; wall-clock and CPU seconds per tomogram, "
          f"peak resident memory")
    for size in args.sizes:
        print(_line(f"{size}^3 all physics, {args.preset}", _run(_CHILD, size, "", 1, args.preset, "wbp")), flush=True)
    if args.effects_size:
        size = args.effects_size
        costs = _run(_EFFECTS, size)
        if "error" in costs:
            print(f"effects at {size}^3 failed: {costs['error']}")
        else:
            base = costs.pop("all physics")
            print(f"# imaging one {size}^3 scene (projection, microscope, WBP), CPU seconds, best of two:")
            print(f"{'all physics':<34} {base:7.1f} s")
            fourier = costs.pop("fourier")
            for effect, seconds in costs.items():
                print(f"{'without ' + effect:<34} {seconds:7.1f} s  (the effect costs {base - seconds:+.1f} s)")
            print(f"{'Fourier inversion instead of WBP':<34} {fourier:7.1f} s  (WBP costs {base - fourier:+.1f} s)")
        if args.oversample:
            print(_line(f"{size}^3 with 2x oversampling", _run(_CHILD, size, "", 2, args.preset, "wbp")), flush=True)
    if args.compare_teamtomo:
        size = args.compare_teamtomo
        for which in ("ours", "teamtomo"):
            print(_line(f"{size}^3 project + WBP, {which}", _run(_TEAMTOMO, size, which)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
