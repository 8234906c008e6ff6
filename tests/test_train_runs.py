"""The run cache: train once, reuse afterwards; a run folder never mixes settings."""

import dataclasses
import json

import pytest
import torch

from mvgtutor.errors import ConfigError, DataError
from mvgtutor.train import runs
from mvgtutor.train.runs import dataset_fingerprint, load_run, train_run, trained_run
from train_helpers import tiny_profile, write_tiny_dataset


@pytest.fixture()
def setting(tmp_path, monkeypatch):
    monkeypatch.setenv("MVGTUTOR_RUNS_DIR", str(tmp_path / "runs"))
    profile = tiny_profile()
    profile = dataclasses.replace(profile, train=dataclasses.replace(profile.train, epochs=1, batch_size=2),
                                  model=dataclasses.replace(profile.model, decoder_channels=2))
    return profile, write_tiny_dataset(tmp_path / "data")


def test_trained_run_trains_once_then_comes_from_the_cache(setting, monkeypatch):
    profile, data = setting
    first = trained_run(profile, data, model_name="voxresnet", progress=False)
    assert first.finished and first.directory.parent.name == "runs"
    assert first.directory.name.startswith("voxresnet-")

    def no_training(*args, **kwargs):
        raise AssertionError("the cached run was trained again")

    monkeypatch.setattr(runs, "train_model", no_training)
    second = trained_run(profile, data, model_name="voxresnet", progress=False)
    assert second.directory == first.directory and second.history == first.history
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a, b)


def test_other_settings_or_data_give_another_run(setting, tmp_path):
    profile, data = setting
    base = runs.run_key(runs.run_description("voxresnet", profile.model, profile.train, profile.data, data))
    longer = dataclasses.replace(profile.train, epochs=2)
    assert runs.run_key(runs.run_description("voxresnet", profile.model, longer, profile.data, data)) != base
    other_data = write_tiny_dataset(tmp_path / "other", seed=1)
    assert dataset_fingerprint(other_data) != dataset_fingerprint(data)


def test_a_run_folder_refuses_other_settings(setting, tmp_path):
    profile, data = setting
    kwargs = dict(model_name="voxresnet", model_config=profile.model, data_config=profile.data, progress=False)
    run = train_run(tmp_path / "run", data, train_config=profile.train, **kwargs)
    assert load_run(run.directory).model_name == "voxresnet"
    with pytest.raises(ConfigError, match="other settings"):
        train_run(tmp_path / "run", data, train_config=dataclasses.replace(profile.train, lr=0.1), **kwargs)


def test_missing_folders(tmp_path):
    with pytest.raises(DataError, match="not a training run"):
        load_run(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        dataset_fingerprint(tmp_path / "nowhere")


# ------------------------------------------------------------- issue 11: bad settings and damaged run files
def _train(run_dir, data, profile, **train_changes):
    return runs.train_run(run_dir, data, model_name="voxresnet", model_config=profile.model,
                          train_config=dataclasses.replace(profile.train, **train_changes),
                          data_config=profile.data, progress=False)


@pytest.mark.parametrize("changes, message", [(dict(epochs=0), "epochs"), (dict(epochs=-1), "epochs"),
                                              (dict(batch_size=0), "batch size"), (dict(lr=float("nan")), "learning"),
                                              (dict(seed=-1), "seed")])
def test_nonsense_training_settings_are_refused_before_anything_is_written(setting, tmp_path, changes, message):
    profile, data = setting
    with pytest.raises(ConfigError, match=message):
        _train(tmp_path / "run", data, profile, **changes)
    assert not (tmp_path / "run").exists()


def test_a_failed_run_can_be_retried_with_corrected_settings(setting, tmp_path):
    profile, data = setting
    with pytest.raises(ConfigError, match="larger than the training set"):
        _train(tmp_path / "run", data, profile, batch_size=50)
    assert _train(tmp_path / "run", data, profile).finished  # same folder, corrected batch size


def test_run_files_that_are_truncated_or_mixed_are_one_line_errors(setting, tmp_path):
    profile, data = setting
    run = _train(tmp_path / "run", data, profile).directory
    history = (run / "history.json").read_text()
    (run / "history.json").write_text(history[: len(history) // 2])
    with pytest.raises(DataError, match="history.json.*not valid JSON"):
        runs.load_run(run)
    (run / "history.json").write_text(history)
    description = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**description, "model_name": "unet3d"}))
    with pytest.raises(DataError, match="do not fit"):
        runs.load_run(run)
    (run / "run.json").write_text(json.dumps(description)[:40])
    with pytest.raises(DataError, match="run.json.*not valid JSON"):
        runs.load_run(run)


def test_stale_checkpoint_temporaries_are_removed_on_start(setting, tmp_path):
    profile, data = setting
    run = _train(tmp_path / "run", data, profile).directory
    stale = run / ".checkpoint.pt.abc123.tmp"  # what a SIGKILL during torch.save leaves
    stale.write_bytes(b"half a checkpoint")
    other = run / "notes.txt"
    other.write_text("mine")
    _train(tmp_path / "run", data, profile)
    assert not stale.exists() and other.read_text() == "mine"
