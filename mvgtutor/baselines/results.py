"""Committed results of the baselines (chapter 10): one JSON file per profile, each row with its provenance.

``data_scripts/bench_baselines.py`` trains and scores models and writes rows here; the chapter reads them, so that
in the cpu profile a reader sees every baseline without paying for every training. A file looks like

    {"profile": "cpu", "rows": {"voxresnet": {...BaselineScore.to_json(), "provenance": {...}}, ...}}

and provenance records the commit, profile, machine, torch version and threads, the load average before and
after, the wall time, and the date.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
from pathlib import Path

import torch

from mvgtutor.baselines.compare import BaselineScore
from mvgtutor.errors import DataError
from mvgtutor import provenance
from mvgtutor.paths import atomic_write

RESULTS_DIR = Path(__file__).resolve().parent / "results"  # shipped with the package (Colab installs)


def results_path(profile_name: str) -> Path:
    """The committed results file of a profile: ``mvgtutor/baselines/results/baselines_<profile>.json``."""
    return RESULTS_DIR / f"baselines_{profile_name}.json"


def git_commit(folder: str | os.PathLike | None = None) -> str | None:
    """The checkout's commit (``+dirty`` for uncommitted changes), or None outside a checkout."""
    commit = provenance.git_commit(folder)
    return None if commit == "unknown" else commit


def machine_provenance(device: torch.device | str = "cpu") -> dict:
    """What a measurement ran on: processor, CPU count, torch version and threads, device, load, date."""
    device = torch.device(device)
    return dict(
        processor=platform.processor() or platform.machine(), cpu_count=os.cpu_count(),
        torch=torch.__version__, torch_threads=torch.get_num_threads(),
        device=str(device) + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
        load_average=list(os.getloadavg()), date=datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"))


def read_results(path: str | os.PathLike) -> list[BaselineScore]:
    """The rows of a results file as ``BaselineScore`` (with their provenance), in the file's order."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no results file {path}: run data_scripts/bench_baselines.py --profile P to make it")
    try:
        content = json.loads(path.read_text())
        rows = content["rows"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as error:
        raise DataError(f"{path}: not a baselines results file ({error.__class__.__name__}); regenerate it with "
                        f"data_scripts/bench_baselines.py") from None
    return [BaselineScore.from_json(row) for row in rows.values()]


def write_result(path: str | os.PathLike, score: BaselineScore, profile_name: str) -> None:
    """Add (or replace) ``score``'s row in the results file at ``path``, written atomically."""
    path = Path(path)
    content = {"profile": profile_name, "rows": {}}
    if path.is_file():
        content = json.loads(path.read_text())
        if content.get("profile") != profile_name:
            raise DataError(f"{path} holds results of profile {content.get('profile')!r}, not {profile_name!r}: "
                            f"write to results_path({profile_name!r})")
    content["rows"][score.model] = score.to_json()
    with atomic_write(path, "w") as handle:
        json.dump(content, handle, indent=1)
