"""What the first cell of every chapter calls: Colab set-up and the environment report.

The first cell of each chapter (the same text in every chapter, see ``FIRST_CELL``) installs mvgtutor when
it is missing (Colab) and then calls ``setup_notebook()``, which

* turns on Colab's custom widget manager (needed by ipywidgets and k3d there; a no-op elsewhere),
* resolves the profile (``MVGTUTOR_PROFILE``, or gpu/cpu by hardware),
* seeds the random generators, and prints one line saying what the chapter will run on.
"""

from __future__ import annotations

import platform
import sys
from dataclasses import dataclass

import torch

from mvgtutor.config import Profile, get_profile

REPOSITORY_URL = "https://github.com/mvgtutor/mvgtutor"  # keep equal to _config.yml's repository.url (tested)

FIRST_CELL = f'''# Set-up: on Colab this installs the course library (a no-op elsewhere), then reports the profile.
import importlib.util, subprocess, sys
if importlib.util.find_spec("mvgtutor") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "mvgtutor @ git+{REPOSITORY_URL}"], check=True)
import mvgtutor
env = mvgtutor.setup_notebook()'''


@dataclass(frozen=True)
class NotebookEnv:
    """What ``setup_notebook`` found: the active profile and the torch device to use."""

    profile: Profile
    device: torch.device
    in_colab: bool

    def summary(self) -> str:
        """One line: profile, device, torch and Python versions."""
        dev = str(self.device)
        if self.device.type == "cuda":
            dev += f" ({torch.cuda.get_device_name(self.device)})"
        return (f"mvgtutor profile '{self.profile.name}' ({self.profile.description}) · device {dev} · "
                f"torch {torch.__version__} · Python {platform.python_version()}")


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


def default_device(profile: Profile) -> torch.device:
    """``cuda`` for the gpu profile, else ``cpu``."""
    return torch.device("cuda" if profile.name == "gpu" else "cpu")


def setup_notebook(profile: str | None = None, seed: int = 0, quiet: bool = False) -> NotebookEnv:
    """Prepare a chapter: Colab widgets, profile, seeds; print (unless ``quiet``) and return the environment."""
    colab = enable_colab_widgets()
    active = get_profile(profile)
    torch.manual_seed(seed)
    env = NotebookEnv(profile=active, device=default_device(active), in_colab=colab or in_colab())
    if not quiet:
        print(env.summary())
    return env
