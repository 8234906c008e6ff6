"""Where the course keeps its data and its training runs, and atomic file writes.

* ``MVGTUTOR_DATA_DIR`` (default: ``<checkout>/data`` in a source checkout, else ``~/.cache/mvgtutor/data``)
* ``MVGTUTOR_RUNS_DIR`` (default: ``<checkout>/runs`` in a source checkout, else ``~/.cache/mvgtutor/runs``)

Both are read at each call, so setting them mid-session (``mvgtutor.colab.use_drive()`` does, on Colab) moves every
later read and write.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def project_root() -> Path | None:
    """The source checkout holding this package (the folder with ``_config.yml``), or None when installed."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "_config.yml").is_file() and (root / "mvgtutor").is_dir() else None


def _default_dir(env: str, leaf: str) -> Path:
    if os.environ.get(env):
        return Path(os.environ[env]).expanduser()
    root = project_root()
    return (root / leaf) if root is not None else Path.home() / ".cache" / "mvgtutor" / leaf


def data_root() -> Path:
    """The folder that holds the course's datasets (one sub-folder per dataset)."""
    return _default_dir("MVGTUTOR_DATA_DIR", "data")


def runs_root() -> Path:
    """The folder that holds training runs (checkpoints, histories), keyed by config hash."""
    return _default_dir("MVGTUTOR_RUNS_DIR", "runs")


def _umask() -> int:
    """The process's umask, read without changing it where Linux shows it (``/proc/self/status``)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    umask = os.umask(0o022)  # elsewhere reading the umask means setting it: put it back at once
    os.umask(umask)
    return umask


def file_mode() -> int:
    """The permission bits ``open()`` would give a new file: ``0o666`` less the process's umask."""
    return 0o666 & ~_umask()


def folder_mode() -> int:
    """The permission bits ``mkdir`` would give a new folder: ``0o777`` less the process's umask."""
    return 0o777 & ~_umask()


def remove_stale_temporaries(folder: str | os.PathLike, names) -> list[Path]:
    """Delete the temporary files ``atomic_write`` / ``atomic_path`` left in ``folder`` for ``names`` when a
    process was killed mid-write (``.NAME.*.tmp``); returns what was removed. Call it only while no other
    process writes those files (e.g. under ``exclusive_lock``)."""
    folder = Path(folder)
    removed = []
    for name in names:
        for tmp in folder.glob(f".{name}.*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
                removed.append(tmp)
    return removed


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb"):
    """Open a temporary file beside ``path``; on success rename it over ``path`` (never a half-written file).

    >>> with atomic_write("x.json", "w") as f:
    ...     f.write("{}")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, file_mode())  # mkstemp makes the file private; the renamed file follows the umask
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_path(path: str | os.PathLike):
    """A context manager yielding a temporary path beside ``path``, renamed onto it on success.

    For libraries that want a file name rather than a handle (``torch.save``, ``mrcfile.new``).
    """

    @contextlib.contextmanager
    def _ctx():
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        os.close(fd)
        try:
            os.chmod(tmp, file_mode())
            yield Path(tmp)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    return _ctx()


@contextlib.contextmanager
def exclusive_lock(target: str | os.PathLike):
    """Hold an exclusive lock on ``target`` (a lock file beside it) for the block: one process at a time.

    Used where two processes may build the same thing at once (pytest-xdist workers making the default
    dataset or training the same cached run). POSIX ``flock``; where that is missing, or the file system refuses
    it (some FUSE mounts, such as Google Drive on Colab), a no-op (the atomic renames alone keep readers safe).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(target.parent / f".{target.name}.lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
            locked = True
        except OSError:  # no locks on this file system: the atomic renames still keep readers safe
            locked = False
        try:
            yield
        finally:
            if locked:
                fcntl.flock(handle, fcntl.LOCK_UN)
