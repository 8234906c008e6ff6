"""Where a result came from: the code's commit and the machine, recorded beside every measured figure."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path


def git_commit(folder: str | os.PathLike | None = None, short: bool = False) -> str:
    """The commit checked out at ``folder`` (default: this package's checkout), ``+dirty`` when tracked files
    differ from it; ``unknown`` outside a git checkout (e.g. an installed wheel). ``short``: 12 hex digits."""
    folder = Path(folder) if folder is not None else Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", *(["--short=12"] if short else []), "HEAD"], cwd=folder,
                              capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=folder,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def machine_description() -> dict:
    """This machine in a few fields: CPU, cores, torch threads, GPU (if any), torch and Python versions."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return dict(cpu=platform.processor() or platform.machine(), cores=os.cpu_count(),
                torch_threads=torch.get_num_threads(), gpu=gpu, torch=torch.__version__,
                python=platform.python_version())
