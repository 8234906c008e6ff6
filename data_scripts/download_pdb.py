"""Fetch the 13 SHREC 2021 atomic models from the RCSB PDB and turn them into templates (needs internet).

    python data_scripts/download_pdb.py --out data/templates --voxel-size 1.0

Writes ``<ID>.cif`` (the model) and ``<ID>.mrc`` (the template map at the voxel size, support threshold in
``templates.json``) for each class, and prints each template's equivalent-sphere diameter beside the SHREC
table's. Use them with::

    from mvgtutor.simulate.templates import template_from_mrc
    templates = {label: template_from_mrc(f"data/templates/{name}.mrc", 1.0, threshold=...)}
    simulate_tomogram(..., templates=templates)

Not run by the tests (they write a small model themselves).
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request
from pathlib import Path

RCSB_URL = "https://files.rcsb.org/download/{pdb_id}.cif"


def download(pdb_id: str, folder: Path) -> Path:
    """Download ``pdb_id`` as mmCIF into ``folder`` (skipped when the file is already there)."""
    from mvgtutor.paths import atomic_write

    path = folder / f"{pdb_id}.cif"
    if not path.is_file():
        with urllib.request.urlopen(RCSB_URL.format(pdb_id=pdb_id), timeout=120) as response:
            data = response.read()
        with atomic_write(path, "wb") as handle:
            handle.write(data)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="folder for the models and maps "
                        "(default: <data root>/templates)")
    parser.add_argument("--voxel-size", type=float, default=1.0, help="template voxel size in nm")
    args = parser.parse_args(argv)

    from mvgtutor.data.classes import PROTEIN_CLASSES
    from mvgtutor.data.formats import write_mrc
    from mvgtutor.simulate.templates import template_from_atoms
    from mvgtutor.paths import atomic_write, data_root

    out = args.out or data_root() / "templates"
    out.mkdir(parents=True, exist_ok=True)
    thresholds = {}
    print(f"{'class':<6} {'table (nm)':>10} {'from atoms (nm)':>15}  file")
    for cls in PROTEIN_CLASSES:
        try:
            model = download(cls.name, out)
        except OSError as error:
            print(f"{cls.name}: download failed ({error}); check the internet connection", file=sys.stderr)
            return 1
        template = template_from_atoms(model, voxel_size_nm=args.voxel_size, name=cls.name)
        write_mrc(out / f"{cls.name}.mrc", template.density, args.voxel_size)
        thresholds[cls.name] = template.threshold
        print(f"{cls.name:<6} {cls.diameter_nm:>10.1f} {template.equivalent_diameter_nm:>15.1f}  "
              f"{out / (cls.name + '.mrc')}")
    with atomic_write(out / "templates.json", "w") as handle:
        json.dump({"voxel_size_nm": args.voxel_size, "thresholds": thresholds}, handle, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
