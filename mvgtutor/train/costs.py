"""What each profile costs, as chapter 0's table shows it: read from a committed ``bench`` results file.

``python -m mvgtutor bench --out mvgtutor/train/results/bench_profiles.json`` measures (where a profile can run on
the machine) and estimates (a T4's time and memory, ``mvgtutor.train.estimate``) every profile and writes the
figures with their provenance: the command, when, the machine's load average before and after, CPU count, torch,
and the commit. The book reads that file rather than re-running a bench that takes minutes.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from mvgtutor.errors import DataError
from mvgtutor.paths import atomic_write, project_root

RESULTS_FILE = Path(__file__).resolve().parent / "results" / "bench_profiles.json"


def _commit() -> str | None:
    """The checkout's commit (with ``+changes`` when the tree differs from it), or None outside a git checkout."""
    root = project_root()
    if root is None:
        return None
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (commit + ("+changes" if dirty else "")) or None


def machine_state() -> dict:
    """When and on what a measurement runs: UTC time, load average (1, 5, 15 min), CPU count, versions, commit."""
    import torch

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"time_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "load_average": [round(x, 2) for x in load] if load else None, "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "platform": platform.platform(), "commit": _commit()}


def write_results(path: str | os.PathLike, results: list[dict], *, started: dict, finished: dict) -> Path:
    """Write ``results`` (one dict per profile, as ``bench`` makes them) with their provenance to ``path``."""
    record = {"command": "python -m mvgtutor " + " ".join(sys.argv[1:]), "started": started,
              "finished": finished, "results": results}
    with atomic_write(path, "w") as handle:
        json.dump(record, handle, indent=1)
    return Path(path)


def read_results(path: str | os.PathLike | None = None) -> dict:
    """The recorded bench results (default: the committed ``RESULTS_FILE``); ``DataError`` when missing/broken."""
    path = Path(path) if path is not None else RESULTS_FILE
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: no bench results; run `python -m mvgtutor bench --out {path}`") from None
    except (OSError, json.JSONDecodeError) as error:
        raise DataError(f"{path}: unreadable bench results ({error}); run `python -m mvgtutor bench --out "
                        f"{path} --overwrite`") from None
    if not isinstance(record, dict) or not isinstance(record.get("results"), list):
        raise DataError(f"{path}: not a bench results file (no 'results' list); write it with `python -m "
                        f"mvgtutor bench --out {path}`")
    return record


def format_minutes(value: float) -> str:
    """``value`` minutes as "42 s", "7.5 min" or "3.2 h"."""
    if value >= 120:
        return f"{value / 60:,.1f} h"
    if value * 60 < 1:
        return "under 1 s"
    if value < 1:
        return f"{value * 60:.0f} s"
    return f"{value:,.1f} min"


def stale_results(record: dict) -> list[str]:
    """The recorded profiles whose model or batch size differ from the profile's now (their speeds are stale)."""
    from mvgtutor.config import make_profile, to_dict

    stale = []
    for result in record["results"]:
        profile = make_profile(result["profile"])
        as_recorded = json.loads(json.dumps(to_dict(profile.model)))  # tuples read back as lists
        if (result.get("model_config") != as_recorded
                or result.get("profile_batch_size") != profile.train.batch_size):
            stale.append(result["profile"])
    return stale


def profile_cost_rows(record: dict) -> list[dict]:
    """One row per profile for chapter 0's table: samples, FLOPs, time and memory, each marked measured or
    estimated, with its basis. Samples per run come from the profile as it is now (epochs and data may change
    without a new bench); speeds, FLOPs and memory from the record (``stale_results`` says when they no longer
    belong to the profile's model)."""
    from mvgtutor.config import make_profile
    from mvgtutor.train.estimate import samples_per_run

    where = record["started"]
    load = where.get("load_average")
    here = f"{where.get('cpu_count')}-core CPU, load {load[0]:.1f}" if load else "this CPU"
    rows = []
    for result in record["results"]:
        samples = samples_per_run(make_profile(result["profile"]))
        row = {"profile": f"`{result['profile']}`", "samples per run": f"{samples:,}",
               "GFLOP per sample": (f"{result['train_flops_per_sample'] / 1e9:,.1f}"
                                    if result.get("train_flops_per_sample") else "not counted")}
        if result.get("timed") and result["device"] == "cpu" and result.get("cpu_seconds_per_sample"):
            cpu_minutes = samples * result["cpu_seconds_per_sample"] / 60
            wall_minutes = samples / result["train_samples_per_s"] / 60
            threads = result.get("torch_threads")
            row["time per run, measured"] = (f"{format_minutes(cpu_minutes)} of CPU time ({threads} thread; "
                                             f"{format_minutes(wall_minutes)} of wall time on the {here})")
            row["memory, measured"] = f"{result['peak_memory_gib']:.1f} GiB ({result['peak_memory_kind']})"
        elif result.get("timed"):
            minutes = samples / result["train_samples_per_s"] / 60
            row["time per run, measured"] = (f"{format_minutes(minutes)} ({result['device']}, "
                                             f"{result['train_samples_per_s']:.1f} samples/s, {here})")
            row["memory, measured"] = f"{result['peak_memory_gib']:.1f} GiB ({result['peak_memory_kind']})"
        else:
            why = "needs CUDA" if result.get("untimed_reason", "needs CUDA") == "needs CUDA" else "sized for a GPU"
            row["time per run, measured"] = f"not timed on {result['device']} ({why})"
            row["memory, measured"] = "-"
        if "t4_samples_per_s" in result:
            minutes = samples / result["t4_samples_per_s"] / 60
            row["time per run on a T4, estimated"] = (f"{format_minutes(minutes)} "
                                                      f"({result['t4_samples_per_s']:,.0f} samples/s)")
        if "gpu_memory_estimate_gib" in result:
            row["GPU memory, estimated"] = (f"{result['gpu_memory_estimate_gib']:.1f} GiB at batch "
                                            f"{result['profile_batch_size']}")
        rows.append(row)
    return rows


def profile_cost_table(record: dict | None = None):
    """Chapter 0's table of ``profile_cost_rows`` (an ``IPython.display.Markdown``), from the committed results."""
    from mvgtutor.notebook import markdown_table

    return markdown_table(profile_cost_rows(record or read_results()))


def provenance(record: dict) -> str:
    """One line: how and where the recorded figures were made."""
    started, finished = record["started"], record["finished"]
    return (f"`{record['command']}` at commit {started.get('commit')}, {started.get('time_utc')}; "
            f"{started.get('cpu_count')} CPU cores ({started.get('torch_threads')} torch thread(s)), load average "
            f"{started.get('load_average')} at the start and {finished.get('load_average')} at the end; "
            f"torch {started.get('torch')}")
