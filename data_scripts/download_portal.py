"""Download tomograms and particle annotations of a CryoET Data Portal dataset into a local copick project.

Needs a machine with internet (Colab) and the portal's client, which the course does not install for you::

    pip install cryoet-data-portal
    python data_scripts/download_portal.py --dataset 10440 --out portal --max-runs 1 --voxel-spacing 10

For each run (tomogram) of the dataset it writes

* ``OUT/tomograms/RUN.mrc``: the tomogram at the voxel spacing closest to ``--voxel-spacing`` (Angstrom); its
  MRC header's voxel size is checked against the portal's record;
* ``OUT/project``: a copick project (``mvgtutor.picking.copick_project``) with the run's point annotations
  as picks in Angstrom, one file per object (``ExperimentRuns/RUN/Picks/portal_0_OBJECT.json``).

The portal's point annotations come as ndjson files whose ``location`` is in voxels of the annotation's
tomogram voxel spacing (our understanding of the portal's standard; ``--annotation-unit angstrom`` if a dataset
says otherwise). Then, in chapter 13 or on the command line::

    from mvgtutor.picking import read_mrc_at
    volume, source_nm = read_mrc_at("portal/tomograms/RUN.mrc", 1.0)   # Fourier-resampled to 1 nm
    python -m mvgtutor score-picks --pred picks.csv --truth portal/project --metric czii
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=int, required=True, help="portal dataset id, e.g. 10440 (the CZII "
                        "challenge's training data)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--max-runs", type=int, default=1, help="download at most this many runs (default 1)")
    parser.add_argument("--voxel-spacing", type=float, default=10.0, help="wanted voxel spacing in Angstrom; the "
                        "closest one available is taken (default 10)")
    parser.add_argument("--annotation-unit", choices=("voxel", "angstrom"), default="voxel",
                        help="unit of the ndjson point locations (default voxel, see the module doc)")
    return parser.parse_args(argv)


def ndjson_points(path: Path) -> np.ndarray:
    """The ``(N, 3)`` x, y, z locations of a portal ndjson point file (as written, no unit change)."""
    points = []
    for line in path.read_text().splitlines():
        if line.strip():
            location = json.loads(line)["location"]
            points.append([float(location["x"]), float(location["y"]), float(location["z"])])
    return np.array(points).reshape(-1, 3)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        import cryoet_data_portal as cdp
    except ImportError:
        print("this script needs the portal's client: pip install cryoet-data-portal", file=sys.stderr)
        return 1
    from mvgtutor.data.formats import mrc_voxel_size_nm
    from mvgtutor.picking import CZII_RADII_ANGSTROM, Picks, concat
    from mvgtutor.picking.copick_project import write_copick_config, write_copick_picks

    client = cdp.Client()
    tomograms = cdp.Tomogram.find(client, [cdp.Tomogram.run.dataset_id == args.dataset])
    by_run: dict[str, list] = {}
    for tomogram in tomograms:
        by_run.setdefault(tomogram.run.name, []).append(tomogram)
    if not by_run:
        print(f"dataset {args.dataset}: no tomograms found; check the id on the portal", file=sys.stderr)
        return 1
    (args.out / "tomograms").mkdir(parents=True, exist_ok=True)
    tables, radii = [], {}
    for run_name in sorted(by_run)[: args.max_runs]:
        tomogram = min(by_run[run_name], key=lambda t: abs(t.voxel_spacing - args.voxel_spacing))
        spacing = float(tomogram.voxel_spacing)
        with tempfile.TemporaryDirectory(dir=args.out) as scratch:
            tomogram.download_mrcfile(dest_path=scratch)
            mrc = next(Path(scratch).glob("*.mrc"))
            header_nm = mrc_voxel_size_nm(mrc)  # the voxel size check on read
            if abs(header_nm * 10 - spacing) > 1e-2 * spacing:
                print(f"warning: {run_name}: MRC header says {header_nm * 10:g} A, the portal {spacing:g} A",
                      file=sys.stderr)
            shutil.move(str(mrc), args.out / "tomograms" / f"{run_name}.mrc")
            tomogram.download_all_annotations(dest_path=scratch, format="ndjson", shape="Point")
            for path in sorted(Path(scratch).rglob("*.ndjson")):
                name = path.stem.split("-", 1)[-1] if "-" in path.stem else path.stem
                xyz = ndjson_points(path)
                xyz = xyz * spacing if args.annotation_unit == "voxel" else xyz
                tables.append(Picks.create(xyz, name, unit="angstrom", tomogram=run_name))
                radii.setdefault(name, CZII_RADII_ANGSTROM.get(name, 100.0))  # informative only: scorers take their own
        print(f"{run_name}: tomogram at {spacing:g} A, {sum(len(t) for t in tables if t.tomograms[:1].tolist() == [run_name])} points")
    project = args.out / "project"
    write_copick_config(project, radii, name=f"portal-{args.dataset}")
    if tables:
        write_copick_picks(project, concat(tables), user_id="portal")
    print(f"wrote {args.out / 'tomograms'} and the copick project {project}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
