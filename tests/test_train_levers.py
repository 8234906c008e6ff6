"""Learning in the reader's budget: foreground-biased random crops and the warm-up + cosine schedule."""

import dataclasses

import pytest
import torch

from mvgtutor.config import make_profile
from mvgtutor.data.patches import RandomCrops, load_training_crops
from mvgtutor.errors import ConfigError, DataError
from mvgtutor.train import train_model
from mvgtutor.train.engine import make_scheduler
from mvgtutor.train.runs import check_train_config
from train_helpers import PointwiseNet, cross_entropy, tiny_profile, write_tiny_dataset


def sparse_volumes(count=2, size=24, seed=0):
    """Noise volumes ``(T, s, s, s)`` with one 2^3 cube of label 15 and one 3^3 cube of label 4 each."""
    generator = torch.Generator().manual_seed(seed)
    volumes = torch.randn(count, size, size, size, generator=generator)
    labels = torch.zeros(count, size, size, size, dtype=torch.uint8)
    labels[:, 3:5, 3:5, 3:5] = 15
    labels[:, 16:19, 10:13, 18:21] = 4
    return volumes, labels


def test_forced_crops_hold_foreground_and_random_ones_mostly_do_not():
    volumes, labels = sparse_volumes()
    forced = RandomCrops(volumes, labels, patch_size=8, foreground_fraction=1.0)
    images, crop_labels = forced.sample(64, torch.Generator().manual_seed(0))
    assert images.shape == (64, 1, 8, 8, 8) and crop_labels.shape == (64, 8, 8, 8)
    assert bool((crop_labels.flatten(1).amax(1) > 0).all())  # every forced crop holds a foreground voxel
    present = {int(c) for c in crop_labels.unique()}
    assert {4, 15} <= present  # classes drawn uniformly: the 8-voxel bead is seen as often as the protein
    plain = RandomCrops(volumes, labels, patch_size=8, foreground_fraction=0.0)
    _, plain_labels = plain.sample(64, torch.Generator().manual_seed(0))
    assert (plain_labels.flatten(1).amax(1) > 0).float().mean() < 0.5


def test_crops_match_the_volume_they_were_cut_from_and_repeat_with_the_seed():
    volumes, labels = sparse_volumes()
    crops = RandomCrops(volumes, labels, patch_size=8, foreground_fraction=1 / 3)
    corners = crops.corners(16, torch.Generator().manual_seed(3))
    assert torch.equal(corners, crops.corners(16, torch.Generator().manual_seed(3)))
    images, crop_labels = crops.crops(corners)
    for (t, z, y, x), image, label in zip(corners.tolist(), images, crop_labels):
        assert torch.equal(image[0], volumes[t, z:z + 8, y:y + 8, x:x + 8])
        assert torch.equal(label, labels[t, z:z + 8, y:y + 8, x:x + 8])
    assert len(crops) == 2 * 3**3  # an epoch shows as many samples as the grid has patches


def test_crops_refuse_bad_input():
    volumes, labels = sparse_volumes()
    with pytest.raises(DataError):
        RandomCrops(volumes, labels[:, :-1], patch_size=8)
    with pytest.raises(ConfigError):
        RandomCrops(volumes, labels, patch_size=8, foreground_fraction=1.5)


def test_training_crops_come_from_the_training_tomograms_only(tmp_path):
    data = write_tiny_dataset(tmp_path / "data", n_tomograms=3)
    crops = load_training_crops(data, tiny_profile().data, foreground_fraction=1 / 3)
    assert crops.volumes.shape == (2, 32, 32, 32)  # model_0 and model_1; model_2 is held out
    assert set(crops.locations) == {3, 14}


def test_warmup_cosine_rises_then_falls_to_zero():
    config = dataclasses.replace(make_profile("test").train, epochs=4, lr=1.0, lr_schedule="warmup_cosine",
                                 warmup_fraction=0.25)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=config.lr)
    scheduler, per_step = make_scheduler(optimizer, config, steps_per_epoch=10)
    assert per_step
    rates = []
    for _ in range(40):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates[0] == pytest.approx(0.01) and rates[10] == pytest.approx(1.0)
    assert all(a < b for a, b in zip(rates[:10], rates[1:11]))  # linear warm-up over 10 of 40 steps
    assert all(a >= b for a, b in zip(rates[10:], rates[11:]))  # then the half cosine
    assert rates[-1] < 0.01


def test_the_step_schedule_is_still_the_papers():
    config = dataclasses.replace(make_profile("test").train, lr_step_epochs=2, lr_gamma=0.1)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler, per_step = make_scheduler(optimizer, config, steps_per_epoch=10)
    assert not per_step and isinstance(scheduler, torch.optim.lr_scheduler.StepLR)


def test_train_model_on_random_crops_is_deterministic_and_learns():
    volumes, labels = sparse_volumes(size=16)
    labels[:, :8] = (volumes[:, :8] > 0.5).to(torch.uint8)  # a learnable rule in half of each volume
    config = dataclasses.replace(make_profile("test").train, epochs=3, batch_size=4, lr=1e-2,
                                 lr_schedule="warmup_cosine", patch_sampling="foreground")
    first, second = PointwiseNet(), PointwiseNet()
    second.load_state_dict(first.state_dict())
    crops = RandomCrops(volumes, labels, patch_size=8, foreground_fraction=0.5)
    history = train_model(first, crops, config, loss_fn=cross_entropy, progress=False)
    train_model(second, crops, config, loss_fn=cross_entropy, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
    assert history[-1]["loss"] < history[0]["loss"]
    assert history[-1]["lr"] < config.lr  # annealed by the end


@pytest.mark.parametrize("change", [dict(lr_schedule="linear"), dict(patch_sampling="random"),
                                    dict(foreground_fraction=2.0), dict(warmup_fraction=1.0)])
def test_bad_lever_settings_are_one_line_config_errors(change):
    with pytest.raises(ConfigError) as error:
        check_train_config(dataclasses.replace(make_profile("test").train, **change))
    assert "\n" not in str(error.value)
