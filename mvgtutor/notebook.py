"""What the first cell of every chapter calls: Colab set-up and the environment report.

The first cell of each chapter (the same text in every chapter, see ``FIRST_CELL``) installs mvgtutor with the
``book`` extra (every package a chapter imports) when it is missing (Colab) and then calls ``setup_notebook()``,
which

* turns on Colab's custom widget manager (needed by ipywidgets and k3d there; a no-op elsewhere),
* resolves the profile (an argument, ``MVGTUTOR_PROFILE``, or colab/cpu by hardware) and, independently, the
  device (an argument, ``MVGTUTOR_DEVICE``, or CUDA whenever the hardware has it: ``mvgtutor.runtime``),
* seeds the random generators, and prints one line saying what the chapter will run on.
"""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass

import torch

from mvgtutor.config import Profile, get_profile
from mvgtutor.runtime.device import choose_device, describe_device

REPOSITORY_URL = "https://github.com/mvgtutor/mvgtutor"  # keep equal to _config.yml's repository.url (tested)
INSTALL_EXTRA = "book"  # pyproject's optional dependencies that the chapters import (gemmi, scikit-learn, monai)

FIRST_CELL = f'''# Set-up: on Colab this installs the course library and what the chapters import (a no-op elsewhere),
# then reports the profile. To keep data and runs when Colab recycles its VM, see chapter 0 (Google Drive).
import importlib.util, subprocess, sys
if importlib.util.find_spec("mvgtutor") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "mvgtutor[{INSTALL_EXTRA}] @ git+{REPOSITORY_URL}"],
                   check=True)
import mvgtutor
env = mvgtutor.setup_notebook()'''


@dataclass(frozen=True)
class NotebookEnv:
    """What ``setup_notebook`` found: the active profile and the torch device to use."""

    profile: Profile
    device: torch.device
    in_colab: bool

    def summary(self) -> str:
        """Two lines: the profile, then device, torch and Python versions; on Colab, a third when the runs would
        be lost with the VM (``MVGTUTOR_RUNS_DIR`` unset: ``mvgtutor.colab.use_drive()`` keeps them)."""
        dev = describe_device(self.device)
        text = (f"mvgtutor profile '{self.profile.name}': {self.profile.description}\n"
                f"device {dev} · torch {torch.__version__} · Python {platform.python_version()}")
        if self.in_colab and not os.environ.get("MVGTUTOR_RUNS_DIR"):
            text += ("\nruns and data live on this Colab VM and go with it: mvgtutor.colab.use_drive() keeps them "
                     "on Google Drive (chapter 0)")
        return text


def in_colab() -> bool:
    """True inside Google Colab."""
    return "google.colab" in sys.modules


def enable_colab_widgets() -> bool:
    """Turn on Colab's custom widget manager (ipywidgets 8, k3d). Returns True when it did something."""
    if not in_colab():
        return False
    from google.colab import output  # type: ignore[import-not-found]

    output.enable_custom_widget_manager()
    return True


def setup_notebook(profile: str | Profile | None = None, seed: int = 0, quiet: bool = False,
                   device: str | None = None) -> NotebookEnv:
    """Prepare a chapter: Colab widgets, profile, device, seeds; print (unless ``quiet``) and return the environment.

    ``profile`` is a name, a ``Profile`` of your own (``mvgtutor.config.profile_from``) or None (the
    environment variable, else by hardware); ``device`` overrides ``choose_device``'s choice (CUDA when present).
    """
    colab = enable_colab_widgets()
    active = get_profile(profile)
    torch.manual_seed(seed)
    env = NotebookEnv(profile=active, device=choose_device(device), in_colab=colab or in_colab())
    if not quiet:
        print(env.summary())
    return env


def _memory_gib() -> float | None:
    """Physical memory of this machine in GiB (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return None


def environment_report(env: NotebookEnv | None = None) -> dict[str, str]:
    """What this machine offers the course: versions, device, memory, and where data and runs live."""
    from mvgtutor import __version__
    from mvgtutor.paths import data_root, runs_root

    env = env or setup_notebook(quiet=True)
    memory = _memory_gib()
    report = {
        "mvgtutor": __version__,
        "Python": platform.python_version(),
        "torch": torch.__version__,
        "profile": f"{env.profile.name} ({env.profile.description})",
        "device": str(env.device),
        "CPU cores": str(os.cpu_count()),
        "memory": f"{memory:.1f} GiB" if memory else "unknown",
        "CUDA available": str(torch.cuda.is_available()),
        "Colab": str(env.in_colab),
        "data folder": str(data_root()),
        "runs folder": str(runs_root()),
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        report["GPU"] = f"{props.name}, {props.total_memory / 2**30:.1f} GiB, compute capability {props.major}.{props.minor}"
        report["bf16 on GPU"] = str(props.major >= 8)
        report["cuDNN"] = str(torch.backends.cudnn.version())
    return report


def print_environment_report(env: NotebookEnv | None = None) -> None:
    """Print ``environment_report`` as an aligned two-column table."""
    report = environment_report(env)
    width = max(map(len, report))
    for key, value in report.items():
        print(f"{key:<{width}}  {value}")


def markdown_table(rows: list[dict], headers: list[str] | None = None):
    """Render a list of dicts as a Markdown table (an ``IPython.display.Markdown`` object)."""
    from IPython.display import Markdown

    headers = headers or list(rows[0])
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(row.get(h, "")) for h in headers) + " |" for row in rows]
    return Markdown("\n".join(lines))
