"""The results table: one CSV row per (experiment, seed, profile, budget), written atomically.

Scores are in percent, as in the paper's tables: ``miou`` and ``dice`` are the foreground means of IoU and Dice
on the held-out patches. Each row carries its provenance: the commit, the hardware, the load average while it ran,
the training time and the samples seen.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from mvgtutor.errors import DataError
from mvgtutor.paths import atomic_write, project_root, runs_root

COLUMNS: tuple[str, ...] = (
    "experiment", "seed", "profile", "budget", "miou", "dice", "epochs", "samples_seen", "train_seconds",
    "samples_per_s", "wall_seconds", "load_1min", "run", "commit", "hardware", "torch", "finished_at",
)
KEY: tuple[str, ...] = ("experiment", "seed", "profile", "budget")
_NUMERIC = {"seed": int, "miou": float, "dice": float, "epochs": int, "samples_seen": int,
            "train_seconds": float, "samples_per_s": float, "wall_seconds": float, "load_1min": float}


REFERENCE_DIR = Path(__file__).resolve().parent / "results"  # shipped with the package, so Colab installs have it


def reference_results_path(profile_name: str) -> Path:
    """The committed reference table of a profile, ``mvgtutor/ablations/results/ablations_<profile>.csv``."""
    return REFERENCE_DIR / f"ablations_{profile_name}.csv"


def default_results_path(profile_name: str) -> Path:
    """Where ``ablate`` appends: the reference table itself in a source checkout (so that running the registry
    updates it), else ``ablations_<profile>.csv`` beside the runs (an installed package is never written to)."""
    if project_root() is not None:
        return reference_results_path(profile_name)
    return runs_root() / f"ablations_{profile_name}.csv"


def read_results(path: str | os.PathLike) -> list[dict]:
    """The rows of a results file (numbers parsed); ``[]`` when it does not exist."""
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in KEY + ("miou", "dice") if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{path}: not an ablation results file (no column {', '.join(missing)}); pass the CSV "
                            f"that `python -m mvgtutor ablate` writes")
        rows = []
        for line, row in enumerate(reader, start=2):
            try:
                rows.append({k: (_NUMERIC[k](v) if k in _NUMERIC and v not in ("", None) else v)
                             for k, v in row.items()})
            except ValueError:
                raise DataError(f"{path}, line {line}: a value that is not a number; fix or delete that line") from None
        return rows


def append_result(path: str | os.PathLike, row: dict) -> Path:
    """Add ``row`` to the results file, replacing an earlier row with the same experiment, seed, profile and
    budget (a rerun); the whole file is rewritten atomically, so a crash never leaves half a table."""
    path = Path(path)
    unknown = sorted(set(row) - set(COLUMNS))
    if unknown or any(k not in row for k in KEY):
        raise DataError(f"result row with columns {sorted(row)}: needs {', '.join(KEY)} and only {', '.join(COLUMNS)}")
    key = tuple(str(row[k]) for k in KEY)
    rows = [r for r in read_results(path) if tuple(str(r[k]) for k in KEY) != key] + [row]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({c: ("" if r.get(c) is None else r.get(c)) for c in COLUMNS})
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w") as handle:
        handle.write(buffer.getvalue())
    return path
