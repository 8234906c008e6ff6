"""The run cache: train once, reuse afterwards; a run folder never mixes settings."""

import dataclasses

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
