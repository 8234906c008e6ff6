"""Vendor the 13 SHREC 2021 protein densities as package data (``mvgtutor/simulate/structures/``).

    python data_scripts/vendor_structures.py POLNET_GIT_DIR

Reads PolNet's snapshot (https://github.com/anmartinezs/polnet, Apache-2.0; a bare git directory is enough):
its 10 A density maps ``data/templates/mrcs_10A/<pdb>.mrc``, its atomic models ``data/templates/pdbs/<pdb>.pdb``
(present for 10 of the 13; the three largest are not in the snapshot) and its table of molecular weights
``docs/molecules_table.md``. Writes, atomically:

* ``shrec2021_10A.npz``: each map cropped to a centred cube around its content (float32, 1 nm voxels), and for
  the proteins with an atomic model our own density from it (``template_from_atoms``, atoms weighted by Z);
* ``shrec2021.json``: per protein the molecular weight (kDa), where it comes from, the map's shape, and the
  snapshot's commit.

The maps are data from PolNet and keep its licence (``LICENSE-polnet``, ``NOTICE-polnet`` beside them).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

PROTEINS = ("4V94", "4CR2", "1QVR", "1BXN", "3CF3", "1U6G", "3D2F", "2CG9", "3H84", "3GL1", "3QM1", "1S3X", "5MRC")
TABLE_ALIASES = {"3h54": "3h84"}  # PolNet's table spells 3H84 as 3h54 (its row describes 3H84's chaperone)
OUT = Path(__file__).resolve().parents[1] / "mvgtutor" / "simulate" / "structures"


def _git(repo: Path, *args: str) -> bytes:
    return subprocess.run(["git", f"--git-dir={repo}", *args], check=True, capture_output=True).stdout


def _show(repo: Path, path: str) -> bytes | None:
    done = subprocess.run(["git", f"--git-dir={repo}", "show", f"HEAD:{path}"], capture_output=True)
    return done.stdout if done.returncode == 0 and done.stdout else None


def _weights_kda(table: str) -> dict[str, float]:
    """PDB id -> molecular weight in kDa from PolNet's markdown table ('1.952 MDa', '31.31 kDa')."""
    weights = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 4:
            continue
        pdb, text = TABLE_ALIASES.get(cells[0].lower(), cells[0].lower()), cells[3].replace("-", ".").split()
        if len(text) == 2 and text[1].lower() in ("kda", "mda"):
            try:
                weights[pdb.upper()] = float(text[0]) * (1000.0 if text[1].lower() == "mda" else 1.0)
            except ValueError:
                pass
    return weights


def _crop(density: np.ndarray, level: float) -> np.ndarray:
    """The smallest centred cube (odd side, centre at s // 2) holding every voxel >= level in any orientation."""
    centre = np.array(density.shape) // 2
    idx = np.argwhere(density >= level)
    half = int(np.ceil(np.linalg.norm(idx - centre, axis=1).max())) + 1
    padded = np.pad(density, half)  # the centre moves to centre + half; the cube starts half before it
    z, y, x = centre
    return padded[z:z + 2 * half + 1, y:y + 2 * half + 1, x:x + 2 * half + 1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("polnet", type=Path, help="PolNet's git directory (a bare snapshot is enough)")
    args = parser.parse_args(argv)

    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        return _vendor(args.polnet, Path(scratch))


def _vendor(polnet: Path, scratch: Path) -> int:
    import gemmi
    import mrcfile

    from mvgtutor.paths import atomic_write
    from mvgtutor.simulate.templates import template_from_atoms

    commit = _git(polnet, "rev-parse", "HEAD").decode().strip()
    table = _weights_kda(_show(polnet, "docs/molecules_table.md").decode())
    arrays, records, heavy = {}, {}, {}
    for name in PROTEINS:
        raw = _show(polnet, f"data/templates/mrcs_10A/{name.lower()}.mrc")
        with mrcfile.open(_write(scratch / f"{name}.mrc", raw), permissive=True) as mrc:
            density = np.asarray(mrc.data, dtype=np.float32)
            voxel_a = float(mrc.voxel_size.x)
        if abs(voxel_a - 10.0) > 1e-3:
            raise SystemExit(f"{name}: PolNet map has {voxel_a} A voxels, expected 10 A")
        arrays[f"map_{name}"] = _crop(density, 1e-3 * float(density.max()))
        record = {"map": f"PolNet data/templates/mrcs_10A/{name.lower()}.mrc", "map_shape": list(density.shape)}
        pdb = _show(polnet, f"data/templates/pdbs/{name.lower()}.pdb")
        if pdb is not None:
            path = _write(scratch / f"{name}.pdb", pdb)
            structure = gemmi.read_structure(str(path))
            heavy[name] = sum(a.element.weight for r in (r for c in structure[0] for r in c) for a in r) / 1000.0
            atoms = template_from_atoms(path, voxel_size_nm=1.0, name=name, blur_nm=0.5)
            arrays[f"atoms_{name}"] = atoms.density.numpy()
            record["atomic_model"] = f"PolNet data/templates/pdbs/{name.lower()}.pdb"
            record["atomic_model_heavy_atom_kda"] = round(heavy[name], 2)
        records[name] = record
    ratios = [table[n] / heavy[n] for n in heavy if n in table]  # hydrogens and unmodelled parts
    for name, record in records.items():
        if name in table:
            record["molecular_weight_kda"], record["weight_source"] = table[name], "PolNet docs/molecules_table.md"
        else:
            record["molecular_weight_kda"] = round(heavy[name] * float(np.median(ratios)), 2)
            record["weight_source"] = (f"atomic model's heavy-atom mass x {np.median(ratios):.3f} (the median "
                                       f"ratio of table weight to heavy-atom mass of the other models)")
    manifest = {"source": "https://github.com/anmartinezs/polnet", "commit": commit, "licence": "Apache-2.0",
                "voxel_size_nm": 1.0, "proteins": records}
    OUT.mkdir(parents=True, exist_ok=True)
    with atomic_write(OUT / "shrec2021_10A.npz", "wb") as handle:
        np.savez_compressed(handle, **arrays)
    with atomic_write(OUT / "shrec2021.json", "w") as handle:
        json.dump(manifest, handle, indent=1)
    for source, target in (("LICENSE", "LICENSE-polnet"), ("NOTICE", "NOTICE-polnet")):
        with atomic_write(OUT / target, "wb") as handle:
            handle.write(_show(polnet, source))
    print(json.dumps({n: r["molecular_weight_kda"] for n, r in records.items()}))
    return 0


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


if __name__ == "__main__":
    sys.exit(main())
