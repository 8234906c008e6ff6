"""Training runs on disk, and the run cache that lets later chapters reuse chapter 7's model.

A run folder holds ``run.json`` (model name, the three configs, the dataset fingerprint), ``checkpoint.pt``
(the latest checkpoint), ``model.pt`` (final weights) and ``history.json`` (per-epoch metrics).

``trained_run(profile, data_dir)`` names the folder ``<runs_root>/<model>-<hash>`` after a hash of everything
that determines the result (model name, model / train / data configs, dataset fingerprint): asking twice for the
same thing trains once, and an interrupted training resumes when asked again. A lock file beside the run folder
makes concurrent requests (two notebooks under pytest-xdist) wait for one training instead of running two.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from mvgtutor.config import DataConfig, ModelConfig, Profile, TrainConfig, get_profile
from mvgtutor.errors import ConfigError, DataError, check_choice
from mvgtutor.data.integrity import FILES_KEY, verify_dataset
from mvgtutor.paths import atomic_write, exclusive_lock, remove_stale_temporaries, runs_root
from mvgtutor.train.engine import CHECKPOINT_FILE, HISTORY_FILE, LR_SCHEDULES, WEIGHTS_FILE, train_model
from mvgtutor.train.models import build_model

RUN_FILE = "run.json"
SAFETENSORS_FILE = "model.safetensors"  # a reference run's fp16 weights (mvgtutor.train.reference), in place of model.pt
MACHINE_FILE = "machine.json"  # where the run trained (mvgtutor.train.reference.machine_description)
MANIFEST_FILE = "dataset.json"  # written last by the simulator: it describes the whole dataset


@dataclass
class Run:
    """A trained (or training) run: where it lives, what it was trained with, its history and its model."""

    directory: Path
    model_name: str
    model_config: ModelConfig
    train_config: TrainConfig
    data_config: DataConfig
    history: list[dict]
    model: nn.Module  # in eval mode, on the device it was loaded to

    @property
    def finished(self) -> bool:
        """True when every epoch of ``train_config`` ran."""
        return len(self.history) >= self.train_config.epochs


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _config_from_dict(cls, values: dict):
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: _tuples(v) for k, v in values.items() if k in names})


def dataset_fingerprint(data_dir: str | os.PathLike) -> str:
    """A short hash that changes whenever the data a run reads does.

    For a simulated dataset it is the hash of the file records of ``dataset.json`` (every file's path, size and
    SHA-256), not of the whole manifest: its timings differ from one simulation to the next, and the same data
    must give the same fingerprint on every machine (a reference run's card names its data by it). The files are
    checked against the records first (``mvgtutor.data.integrity.verify_dataset``: a file rewritten since is a
    ``DataError``, never a stale cached run). Without file records (real data, older datasets): every file's
    relative path, size and modification time.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"dataset folder {data_dir} does not exist: run `python -m mvgtutor simulate --default` "
                        f"or pass --data DIR")
    digest = hashlib.sha256()
    manifest = verify_dataset(data_dir)
    if manifest is not None and manifest.get(FILES_KEY):
        records = {path: (record["bytes"], record["sha256"]) for path, record in manifest[FILES_KEY].items()}
        digest.update(json.dumps(records, sort_keys=True).encode())  # not the mtimes: a copy keeps its fingerprint
    else:
        for path in sorted(p for p in data_dir.rglob("*") if p.is_file()):
            stat = path.stat()
            digest.update(f"{path.relative_to(data_dir)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def run_description(model_name: str, model_config: ModelConfig, train_config: TrainConfig,
                    data_config: DataConfig, data_dir: str | os.PathLike) -> dict:
    """What ``run.json`` stores, and what the run's hash is taken of (everything that sets the result)."""
    return dict(model_name=model_name, model=dataclasses.asdict(model_config),
                train=dataclasses.asdict(train_config), data=dataclasses.asdict(data_config),
                data_fingerprint=dataset_fingerprint(data_dir))


def run_key(description: dict) -> str:
    """A 12-hex-digit hash of a ``run_description``."""
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:12]


def check_train_config(config: TrainConfig) -> None:
    """Raise ``ConfigError`` for settings that would train nothing or nonsense: epochs or batch size below 1, a
    learning rate that is not a finite positive number, a negative seed."""
    if config.epochs < 1:
        raise ConfigError(f"epochs {config.epochs}: train for at least 1 epoch (--epochs N)")
    if config.batch_size < 1:
        raise ConfigError(f"batch size {config.batch_size}: must be at least 1 (--batch-size N)")
    if not (math.isfinite(config.lr) and config.lr > 0):
        raise ConfigError(f"learning rate {config.lr}: must be a finite number > 0 (--lr, e.g. 1e-3)")
    if config.seed < 0:
        raise ConfigError(f"seed {config.seed}: use a whole number >= 0 (--seed)")
    from mvgtutor.data.patches import PATCH_SAMPLINGS

    check_choice("lr_schedule", config.lr_schedule, LR_SCHEDULES)
    check_choice("patch_sampling", config.patch_sampling, PATCH_SAMPLINGS)
    if not 0.0 <= config.foreground_fraction <= 1.0:
        raise ConfigError(f"foreground_fraction {config.foreground_fraction}: must lie in [0, 1] (nnU-Net: 1/3)")
    if not 0.0 <= config.warmup_fraction < 1.0:
        raise ConfigError(f"warmup_fraction {config.warmup_fraction}: must lie in [0, 1) (e.g. 0.05)")


def _read_json(path: Path, what: str):
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: {what} is not valid JSON ({error.__class__.__name__}, truncated?); delete the "
                        f"run folder {path.parent} and train again") from None


def _read_description(run_dir: Path) -> dict:
    path = run_dir / RUN_FILE
    if not path.is_file():
        raise DataError(f"{run_dir} is not a training run (no {RUN_FILE}): pass the folder given to "
                        f"`python -m mvgtutor train --out`")
    description = _read_json(path, "the run description")
    needed = ("model_name", "model", "train", "data")
    if not isinstance(description, dict) or any(key not in description for key in needed):
        raise DataError(f"{path}: not a run description (needs {', '.join(needed)}); pass a folder written by "
                        f"`python -m mvgtutor train --out`")
    return description


def _has_started(run_dir: Path) -> bool:
    """True once a run folder holds a checkpoint or final weights (a run.json alone is a run that never
    trained: its settings may be replaced)."""
    return (run_dir / CHECKPOINT_FILE).is_file() or (run_dir / WEIGHTS_FILE).is_file()


def _load_weights(model: nn.Module, path: Path, from_checkpoint: bool) -> None:
    """Load the state dict at ``path`` (a checkpoint's ``"model"`` entry when ``from_checkpoint``; safetensors
    for a ``.safetensors`` file) into ``model``; weights of another architecture or size are a one-line
    ``DataError``."""
    from mvgtutor.train.checkpoint import load_checkpoint, load_safetensors_state

    state = load_safetensors_state(path) if path.suffix == ".safetensors" else load_checkpoint(path)
    if from_checkpoint:
        state = state.get("model") if isinstance(state, dict) else None
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError, KeyError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(f"{path}: the weights do not fit the model that {RUN_FILE} describes ({first}); the "
                        f"files of two runs were mixed: delete the run folder and train again") from None


def load_run(run_dir: str | os.PathLike, device: torch.device | str = "cpu") -> Run:
    """The run in ``run_dir`` with its model rebuilt and loaded (final weights: ``model.pt``, or a reference's
    ``model.safetensors``; else the latest checkpoint)."""
    run_dir = Path(run_dir)
    description = _read_description(run_dir)
    try:
        model_config = _config_from_dict(ModelConfig, description["model"])
        train_config = _config_from_dict(TrainConfig, description["train"])
        data_config = _config_from_dict(DataConfig, description["data"])
        model = build_model(description["model_name"], model_config)
    except (TypeError, ValueError, AttributeError) as error:
        if isinstance(error, ConfigError):
            raise
        raise DataError(f"{run_dir / RUN_FILE}: settings that cannot build a model ({error}); pass a run folder "
                        f"written by this version of mvgtutor") from None
    if (run_dir / WEIGHTS_FILE).is_file():
        _load_weights(model, run_dir / WEIGHTS_FILE, from_checkpoint=False)
    elif (run_dir / SAFETENSORS_FILE).is_file():  # a reference run: fp16 weights, no checkpoint
        _load_weights(model, run_dir / SAFETENSORS_FILE, from_checkpoint=False)
    else:
        _load_weights(model, run_dir / CHECKPOINT_FILE, from_checkpoint=True)
    history = _read_json(run_dir / HISTORY_FILE, "the history") if (run_dir / HISTORY_FILE).is_file() else []
    if not isinstance(history, list):
        raise DataError(f"{run_dir / HISTORY_FILE}: expected a list of epochs; delete the run folder and train "
                        f"again")
    return Run(directory=run_dir, model_name=description["model_name"], model_config=model_config,
               train_config=train_config, data_config=data_config, history=history, model=model.to(device).eval())


def train_run(run_dir: str | os.PathLike, data_dir: str | os.PathLike, *, model_name: str,
              model_config: ModelConfig, train_config: TrainConfig, data_config: DataConfig,
              device: torch.device | str | None = None, progress: bool = True, on_step=None) -> Run:
    """Train (or resume, or just load) the run in ``run_dir`` on the dataset in ``data_dir``.

    A folder that already holds a run with other settings raises ``ConfigError`` rather than mixing them.
    """
    from mvgtutor.data.patches import augment_patches, load_patch_datasets, load_training_crops
    from mvgtutor.train.distributed import barrier, current_group

    group = current_group()
    run_dir = Path(run_dir)
    check_train_config(train_config)
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: exists and is not a folder; choose another --out")
    description = run_description(model_name, model_config, train_config, data_config, data_dir)
    started = _has_started(run_dir)
    if (run_dir / RUN_FILE).is_file() and started:
        if _read_description(run_dir) != json.loads(json.dumps(description)):
            raise ConfigError(f"{run_dir} holds a run trained with other settings or data: choose another "
                              f"--out folder or delete {run_dir}")
    elif group.is_main:  # a new run, or one whose earlier attempt failed before its first checkpoint
        if run_dir.is_dir():
            remove_stale_temporaries(run_dir, (RUN_FILE, CHECKPOINT_FILE, WEIGHTS_FILE, HISTORY_FILE))
        with atomic_write(run_dir / RUN_FILE, "w") as handle:
            json.dump(description, handle, indent=1)
    if started and group.is_main:  # a process killed mid-write left its temporary files behind
        remove_stale_temporaries(run_dir, (RUN_FILE, CHECKPOINT_FILE, WEIGHTS_FILE, HISTORY_FILE))
    barrier(group)  # under torchrun: every process sees run.json (and the same "done") from here on
    done = (run_dir / WEIGHTS_FILE).is_file() and (run_dir / HISTORY_FILE).is_file() and len(
        _read_json(run_dir / HISTORY_FILE, "the history")) >= train_config.epochs
    if not done:
        torch.manual_seed(train_config.seed)
        model = build_model(model_name, model_config)
        if (run_dir / CHECKPOINT_FILE).is_file():  # resuming: the checkpoint must belong to this model
            _load_weights(model, run_dir / CHECKPOINT_FILE, from_checkpoint=True)
        if group.is_main:
            from mvgtutor.train.reference import machine_description

            with atomic_write(run_dir / MACHINE_FILE, "w") as handle:
                json.dump(dict(machine_description(), device=str(device or "auto"),
                               world_size=group.world_size), handle, indent=1)
        train_set, test_set = load_patch_datasets(data_dir, data_config)
        if train_config.patch_sampling == "foreground":  # random crops instead of the grid's patches
            train_set = load_training_crops(data_dir, data_config, train_config.foreground_fraction,
                                            seed=train_config.seed)
        augment = augment_patches if train_config.augment else None
        train_model(model, train_set, train_config, run_dir=run_dir, device=device, augment=augment,
                    progress=progress, on_step=on_step,
                    validation_set=test_set if train_config.validate else None)
    barrier(group)  # rank 0 has written model.pt and history.json
    return load_run(run_dir, device or "cpu")


def trained_run(profile: Profile | None = None, data_dir: str | os.PathLike | None = None, *,
                model_name: str = "mvgformer", model_config: ModelConfig | None = None,
                train_config: TrainConfig | None = None, device: torch.device | str | None = None,
                progress: bool = True) -> Run:
    """The run cache: the model ``model_name`` trained with the given (default: the profile's) configs on
    ``data_dir`` (default: the profile's default dataset), from ``runs_root()`` if it was trained before,
    otherwise trained now (resuming an interrupted attempt)."""
    profile = profile or get_profile()
    if data_dir is None:
        from mvgtutor.data.default import default_dataset

        data_dir = default_dataset(profile)
    model_config = model_config or profile.model
    train_config = train_config or profile.train
    description = run_description(model_name, model_config, train_config, profile.data, data_dir)
    run_dir = runs_root() / f"{model_name}-{run_key(description)}"
    with exclusive_lock(run_dir):  # two chapters asking at once (pytest-xdist): one trains, the other waits
        return train_run(run_dir, data_dir, model_name=model_name, model_config=model_config,
                         train_config=train_config, data_config=profile.data, device=device, progress=progress)
