"""Colab as students meet it: keep the course's data and runs on Google Drive, which outlives the VM.

Colab deletes ``~/.cache/mvgtutor`` (and everything else on the VM) when it recycles the machine, so "resume after a
disconnect" only holds while the VM lives. One call at the top of a chapter keeps them on Drive instead::

    import mvgtutor.colab
    mvgtutor.colab.use_drive()   # asks for permission once, then data and runs live in MyDrive/mvgtutor

It mounts Drive and sets ``MVGTUTOR_DATA_DIR`` and ``MVGTUTOR_RUNS_DIR`` (``mvgtutor.paths``), which every later
read and write of the course follows in this session.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from mvgtutor.errors import ConfigError

MOUNT_POINT = Path("/content/drive")  # where Colab mounts Google Drive
DRIVE_FOLDER = "mvgtutor"  # under MyDrive
ENV_VARS = {"data": "MVGTUTOR_DATA_DIR", "runs": "MVGTUTOR_RUNS_DIR"}


def drive_folders(mount_point: str | os.PathLike = MOUNT_POINT, folder: str = DRIVE_FOLDER) -> dict[str, Path]:
    """Where data and runs go on a Drive mounted at ``mount_point``: ``{"data": .../MyDrive/<folder>/data, ...}``."""
    root = Path(mount_point) / "MyDrive" / folder
    return {kind: root / kind for kind in ENV_VARS}


def _colab_mount() -> Callable[[str], None]:
    """Colab's ``drive.mount``; ``ConfigError`` outside Colab."""
    try:
        from google.colab import drive  # type: ignore[import-not-found]
    except ImportError:
        raise ConfigError("use_drive: Google Drive can only be mounted inside Colab; elsewhere set "
                          "MVGTUTOR_DATA_DIR and MVGTUTOR_RUNS_DIR to folders that last") from None
    return drive.mount


def use_drive(folder: str = DRIVE_FOLDER, *, data: bool = True, runs: bool = True,
              mount_point: str | os.PathLike = MOUNT_POINT,
              mount: Callable[[str], None] | None = None) -> dict[str, Path]:
    """Mount Google Drive (Colab) and point the course's data and/or runs folders into ``MyDrive/<folder>``.

    Returns the folders now in use, e.g. ``{"data": Path("/content/drive/MyDrive/mvgtutor/data"), ...}``.
    ``mount`` replaces Colab's ``drive.mount`` (tests). ``ConfigError`` outside Colab, for a ``folder`` that is
    not a plain relative name, or when Drive did not mount.
    """
    if not folder or Path(folder).is_absolute() or ".." in Path(folder).parts:
        raise ConfigError(f"use_drive: folder {folder!r} must be a name inside MyDrive, such as 'mvgtutor'")
    if not (data or runs):
        raise ConfigError("use_drive: data=False and runs=False leaves nothing to keep on Drive; keep one")
    (mount or _colab_mount())(str(mount_point))
    if not (Path(mount_point) / "MyDrive").is_dir():
        raise ConfigError(f"use_drive: Drive did not mount at {mount_point} (no MyDrive there); run the cell "
                          f"again and allow access")
    chosen = {kind: path for kind, path in drive_folders(mount_point, folder).items()
              if (kind == "data" and data) or (kind == "runs" and runs)}
    for kind, path in chosen.items():
        path.mkdir(parents=True, exist_ok=True)
        os.environ[ENV_VARS[kind]] = str(path)
        print(f"mvgtutor {kind}: {path}")
    return chosen
