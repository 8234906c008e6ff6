"""Reference runs: longer runs of exactly the course's code, shipped with the book so later chapters can study a
trained model (the pattern of the UvA deep-learning notebooks).

A reference folder is a run folder (``run.json``, ``history.json``) whose weights are ``model.safetensors``
in fp16 (no pickle, half the bytes) instead of ``model.pt``, plus ``card.json``, the run card:

* ``description``: what ``run.json`` holds (model name, the three configs, the data fingerprint);
* ``data``: the dataset's seed, size and fingerprint, the profile that made it, the held-out tomograms;
* ``training``: epochs, samples seen, wall time (the history's seconds, validation excluded), the machine;
* ``commit``: the course's git commit at export;
* ``held_out``: per held-out tomogram, the per-class Dice of whole-tomogram inference (overlap 0.5, Gaussian
  window) with the fp16 weights, and the means chapter 7's bars use;
* ``check``: the same Dice on the ``test`` profile's held-out tomogram, which CI regenerates in seconds, so a
  test can confirm that the committed weights still reproduce their card (``tests/test_reference.py``).

``python -m mvgtutor export-reference RUN_DIR OUT_DIR`` writes one; ``load_reference("cpu")`` loads the one
committed under ``mvgtutor/references/`` for a profile; ``python -m mvgtutor evaluate --run OUT_DIR`` works on it as on any
run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from mvgtutor.config import make_profile
from mvgtutor.errors import ConfigError, DataError
from mvgtutor.paths import atomic_write, data_root, project_root
from mvgtutor.train.bars import bar_means
from mvgtutor.train.checkpoint import save_fp16_safetensors
from mvgtutor import provenance
from mvgtutor.train.engine import HISTORY_FILE
from mvgtutor.train.runs import MACHINE_FILE, RUN_FILE, SAFETENSORS_FILE, Run, dataset_fingerprint, load_run

CARD_FILE = "card.json"

REFERENCES_ENV = "MVGTUTOR_REFERENCES_DIR"
CHECK_PROFILE = "test"  # the card's reproduction check runs on this profile's held-out tomogram


machine_description = provenance.machine_description


def git_commit() -> str:
    """The course checkout's commit (``+dirty`` when tracked files differ), or ``unknown`` outside a checkout."""
    root = project_root()
    return "unknown" if root is None else provenance.git_commit(root)


REFERENCES_DIR = Path(__file__).resolve().parent.parent / "references"  # mvgtutor/references: ships with the package


def references_root() -> Path:
    """Where the committed references live: ``$MVGTUTOR_REFERENCES_DIR``, else ``mvgtutor/references`` (package
    data, so a pip-installed copy on Colab has them too)."""
    if os.environ.get(REFERENCES_ENV):
        return Path(os.environ[REFERENCES_ENV]).expanduser()
    return REFERENCES_DIR


def find_dataset(fingerprint: str) -> Path:
    """The dataset folder under ``data_root()`` whose fingerprint is ``fingerprint``; ``DataError`` if none."""
    root = data_root()
    for folder in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        try:
            if dataset_fingerprint(folder) == fingerprint:
                return folder
        except DataError:
            continue
    raise DataError(f"no dataset under {root} has the run's fingerprint {fingerprint}: pass --data DIR (the "
                    f"folder the run trained on)")


def held_out_dice(model: torch.nn.Module, data_dir: str | os.PathLike, data_config, tile: int, device="cpu",
                  tomograms: list[str] | None = None) -> dict[str, list[float | None]]:
    """Per held-out tomogram (the last ``data_config.n_test`` of ``data_dir``, or ``tomograms``), the per-class
    Dice of whole-tomogram inference (overlap 0.5, Gaussian window): ``{name: [16 floats or None]}``."""
    from mvgtutor.data.formats import list_tomograms, read_shrec_tomogram
    from mvgtutor.evaluate import predict_tomogram, segmentation_scores

    folders = list_tomograms(Path(data_dir))
    chosen = [Path(data_dir) / name for name in tomograms] if tomograms else folders[len(folders) - data_config.n_test:]
    result = {}
    for folder in chosen:
        tomogram = read_shrec_tomogram(folder, expected_voxel_size_nm=data_config.voxel_size_nm, with_extras=False)
        labels = predict_tomogram(model, tomogram.reconstruction, tile=tile, overlap=0.5, window="gaussian",
                                  device=device)  # (Z, Y, X) uint8
        dice = segmentation_scores(labels, tomogram.class_mask).dice
        result[folder.name] = [None if np.isnan(d) else round(float(d), 4) for d in dice]
    return result


def check_dice(model: torch.nn.Module, tile: int, device="cpu") -> dict:
    """The reproduction check: Dice on the ``test`` profile's held-out tomogram (regenerated on first use)."""
    from mvgtutor.data.default import default_dataset

    profile = make_profile(CHECK_PROFILE)
    folder = default_dataset(profile)
    dice = held_out_dice(model, folder, profile.data, tile, device=device)
    return dict(profile=CHECK_PROFILE, data_fingerprint=dataset_fingerprint(folder), dice=dice)


def export_reference(run_dir: str | os.PathLike, out_dir: str | os.PathLike, data_dir: str | os.PathLike | None
                     = None, *, name: str | None = None, overwrite: bool = False, check: bool = True,
                     device="cpu") -> dict:
    """Write the reference folder ``out_dir`` from the finished run ``run_dir``; returns its card.

    ``data_dir``: the dataset the run trained on (default: the folder under ``data_root()`` with the run's
    fingerprint). The held-out Dice is measured with the fp16 weights as saved, so the card describes exactly
    what a reader loads. ``check``: also score the ``test`` profile's held-out tomogram (the card's
    reproduction check; simulated on first use).
    """
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    run = load_run(run_dir, device)
    if not run.finished:
        raise ConfigError(f"{run_dir}: the run is unfinished ({len(run.history)}/{run.train_config.epochs} epochs); "
                          f"finish it (re-run the same train command) before exporting it")
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise ConfigError(f"{out_dir} exists and is not empty: choose another OUT_DIR or pass --overwrite")
    if out_dir.resolve() == run_dir.resolve():
        raise ConfigError("OUT_DIR must differ from RUN_DIR (the run folder is never written over)")
    description = json.loads((run_dir / RUN_FILE).read_text())
    data_dir = Path(data_dir) if data_dir is not None else find_dataset(description["data_fingerprint"])
    if dataset_fingerprint(data_dir) != description["data_fingerprint"]:
        raise DataError(f"{data_dir} is not the dataset the run trained on (fingerprints differ): pass the right "
                        f"--data DIR")
    out_dir.mkdir(parents=True, exist_ok=True)
    save_fp16_safetensors(run.model.state_dict(), out_dir / SAFETENSORS_FILE)
    with atomic_write(out_dir / RUN_FILE, "w") as handle:
        json.dump(description, handle, indent=1)
    with atomic_write(out_dir / HISTORY_FILE, "w") as handle:
        json.dump(run.history, handle, indent=1)
    reference = load_run(out_dir, device)  # the fp16 weights, as a reader will load them
    manifest = json.loads((data_dir / "dataset.json").read_text()) if (data_dir / "dataset.json").is_file() else {}
    tile = run.model_config.input_size
    held_out = held_out_dice(reference.model, data_dir, run.data_config, tile, device=device)
    machine = run_dir / MACHINE_FILE
    card = dict(
        name=name or out_dir.name, model_name=run.model_name, description=description,
        data=dict(seed=run.data_config.seed, tomogram_size=run.data_config.tomogram_size,
                  n_tomograms=run.data_config.n_tomograms, fingerprint=description["data_fingerprint"],
                  profile=manifest.get("profile"), held_out=list(held_out)),
        training=dict(epochs=len(run.history),
                      samples_seen=int(sum(round(h["seconds"] * h["samples_per_s"]) for h in run.history)),
                      wall_seconds=round(sum(h["seconds"] for h in run.history), 1),
                      machine=json.loads(machine.read_text()) if machine.is_file() else "not recorded"),
        exported_on=machine_description(), commit=git_commit(),
        weights=dict(file=SAFETENSORS_FILE, dtype="float16", bytes=(out_dir / SAFETENSORS_FILE).stat().st_size),
        held_out={tomo: dict(dice=dice, **bar_means(dice)) for tomo, dice in held_out.items()},
        check=check_dice(reference.model, tile, device=device) if check else None)
    with atomic_write(out_dir / CARD_FILE, "w") as handle:
        json.dump(card, handle, indent=1)
    return card


def read_card(reference_dir: str | os.PathLike) -> dict:
    """The run card of a reference folder."""
    path = Path(reference_dir) / CARD_FILE
    if not path.is_file():
        raise DataError(f"{reference_dir} is not a reference run (no {CARD_FILE}): make one with `python -m "
                        f"mvgtutor export-reference RUN_DIR OUT_DIR`")
    return json.loads(path.read_text())


def reference_dir(name: str) -> Path:
    """The folder of the committed reference ``name`` (``"cpu"`` means ``mvgformer-cpu``)."""
    root = references_root()
    for candidate in (root / name, root / f"mvgformer-{name}"):
        if (candidate / CARD_FILE).is_file():
            return candidate
    known = sorted(p.name for p in root.iterdir() if (p / CARD_FILE).is_file()) if root.is_dir() else []
    raise DataError(f"no reference run {name!r} under {root}: choose one of {', '.join(known) or '(none)'}")


def load_reference(name: str = "cpu", device: torch.device | str = "cpu") -> Run:
    """The committed reference run ``name`` (e.g. ``"cpu"``), its model in eval mode on ``device``; the card is
    ``read_card(run.directory)``."""
    return load_run(reference_dir(name), device)


def reproduce_card(reference: str | os.PathLike, data_dir: str | os.PathLike | None = None,
                   device="cpu") -> list[dict]:
    """Measure a reference's held-out Dice again and compare it with its card, class by class.

    ``reference``: a folder or a committed name. ``data_dir``: the dataset it trained on (default: the folder
    under ``data_root()`` with the card's fingerprint; regenerate it with ``python -m mvgtutor simulate
    --default`` in the card's profile). Returns one row per held-out tomogram and class: ``tomogram``, ``label``,
    ``card``, ``measured``, ``difference`` (None where the class is absent).
    """
    folder = Path(reference) if Path(reference).is_dir() else reference_dir(str(reference))
    card, run = read_card(folder), load_run(folder, device)
    data_dir = Path(data_dir) if data_dir is not None else find_dataset(card["data"]["fingerprint"])
    if dataset_fingerprint(data_dir) != card["data"]["fingerprint"]:
        raise DataError(f"{data_dir} is not the dataset of {folder.name} (fingerprints differ): regenerate the "
                        f"card's dataset or pass the right one")
    measured = held_out_dice(run.model, data_dir, run.data_config, run.model_config.input_size, device=device,
                             tomograms=list(card["held_out"]))
    rows = []
    for tomogram, scores in card["held_out"].items():
        for label, (expected, got) in enumerate(zip(scores["dice"], measured[tomogram])):
            difference = None if expected is None or got is None else round(got - expected, 4)
            rows.append(dict(tomogram=tomogram, label=label, card=expected, measured=got, difference=difference))
    return rows
