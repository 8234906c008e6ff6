"""``python -m mvgtutor simulate``: write a simulated SHREC-2021-like dataset (or the profile's default one)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mvgtutor.simulate.imaging import EFFECTS
from mvgtutor.simulate.scene import SCENE_PRESETS
from mvgtutor.simulate.tomography import RECONSTRUCTIONS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``simulate``."""
    parser.add_argument("--out", type=Path, help="dataset folder to write (model_0, model_1, ... inside)")
    parser.add_argument("--n-tomograms", type=int, default=1, help="how many tomograms (default 1)")
    parser.add_argument("--size", type=int, default=64, help="voxels per side of each tomogram (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same data")
    parser.add_argument("--snr", type=float, default=None,
                        help="signal-to-noise ratio of the tilt series; sets the dose (default: 110 e/A^2)")
    parser.add_argument("--voxel-size", type=float, default=1.0, help="voxel size in nm (default 1.0)")
    parser.add_argument("--disable", nargs="+", default=[], choices=EFFECTS, metavar="EFFECT",
                        help=f"physical effects to switch off: {', '.join(EFFECTS)}")
    parser.add_argument("--preset", default="dense", choices=sorted(SCENE_PRESETS),
                        help="scene statistics: dense (crowded, for small training sets; default) or shrec "
                             "(SHREC 2021's counts per area and slab thickness)")
    parser.add_argument("--reconstruction", default="wbp", choices=RECONSTRUCTIONS,
                        help="wbp (real-space ramp-filtered back-projection, as IMOD; default) or fourier "
                             "(direct Fourier inversion, an exactly empty missing wedge)")
    parser.add_argument("--oversample", type=int, default=1, choices=(1, 2),
                        help="2: simulate at half the voxel size and Fourier-crop (8x memory)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace --out when it holds anything but this very dataset (default: refuse)")
    parser.add_argument("--default", action="store_true",
                        help="make the active profile's default dataset (MVGTUTOR_PROFILE) and print its folder")


def run(args: argparse.Namespace) -> int:
    """Simulate and print where the data went and its measured SNR."""
    import dataclasses

    from mvgtutor.errors import ConfigError

    if args.default:
        from mvgtutor.data.default import default_dataset

        print(default_dataset(progress=True))
        return 0
    if args.out is None:
        raise ConfigError("give --out DIR (where to write the dataset) or --default (the profile's dataset)")
    from mvgtutor.cli import checks
    from mvgtutor.simulate import MANIFEST, SimulationConfig, simulate_dataset
    from mvgtutor.simulate.dataset import check_settings

    checks.positive_int("--n-tomograms", args.n_tomograms)
    checks.non_negative_int("--seed", args.seed)
    checks.positive_float("--snr", args.snr)
    checks.positive_float("--voxel-size", args.voxel_size)
    check_settings(args.n_tomograms, args.size, args.seed, args.snr, args.voxel_size, args.oversample)
    checks.writable_folder("--out", args.out)

    config = SimulationConfig.preset(args.preset).without(*args.disable)
    config = dataclasses.replace(config, imaging=dataclasses.replace(config.imaging, oversample=args.oversample,
                                                                     reconstruction=args.reconstruction))
    out = simulate_dataset(args.out, n_tomograms=args.n_tomograms, size=args.size, seed=args.seed, snr=args.snr,
                           voxel_size_nm=args.voxel_size, config=config, progress=True, overwrite=args.overwrite)
    manifest = json.loads((out / MANIFEST).read_text())
    for record in manifest["tomograms"]:
        print(f"{out / record['name']}: dose {record['total_dose_e_per_a2']:.1f} e/A^2, "
              f"measured SNR {record['measured_snr']:.3g}, {sum(record['placed_counts'].values())} particles")
    return 0
