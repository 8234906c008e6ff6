"""The training loop: determinism, resume after an interruption, checkpoints, history, precision."""

import dataclasses
import json

import pytest
import torch

from mvgtutor.config import make_profile
from mvgtutor.errors import ConfigError, DataError
from mvgtutor.train import PatchTensors, build_model, train_model
from mvgtutor.train.checkpoint import load_checkpoint
from mvgtutor.train.precision import resolve_precision
from train_helpers import PointwiseNet, cross_entropy, random_patches


class Interrupt(Exception):
    """Stands for a Colab disconnect in the middle of an epoch."""


def interrupt_at(epoch: int, step: int):
    def callback(current_epoch, current_step, loss):
        if (current_epoch, current_step) == (epoch, step):
            raise Interrupt
    return callback


def tiny_config(**changes):
    base = dataclasses.replace(make_profile("test").train, epochs=3, batch_size=4, lr_step_epochs=2,
                               checkpoint_every_epochs=1)
    return dataclasses.replace(base, **changes)


def pointwise(seed=0):
    torch.manual_seed(seed)
    return PointwiseNet()


def weights_equal(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_same_seed_same_weights_and_loss_goes_down():
    data = PatchTensors(*random_patches(12))
    first, second = pointwise(), pointwise()
    history = train_model(first, data, tiny_config(), loss_fn=cross_entropy, progress=False)
    train_model(second, data, tiny_config(), loss_fn=cross_entropy, progress=False)
    assert weights_equal(first, second)
    assert history[-1]["loss"] < history[0]["loss"]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert [h["lr"] for h in history] == pytest.approx([1e-3, 1e-3, 1e-4])  # x0.1 after lr_step_epochs
    assert set(history[0]) >= {"loss", "ce_fused", "seconds", "samples_per_s"}


def test_held_out_dice_after_every_epoch_leaves_training_unchanged():
    data, held_out = PatchTensors(*random_patches(12)), PatchTensors(*random_patches(6, seed=1))
    plain, validated = pointwise(), pointwise()
    train_model(plain, data, tiny_config(), loss_fn=cross_entropy, progress=False)
    history = train_model(validated, data, tiny_config(), loss_fn=cross_entropy, progress=False,
                          validation_set=held_out)
    assert weights_equal(plain, validated)  # scoring touches no RNG and no weights
    assert all(len(entry["val_dice"]) == 16 for entry in history)
    assert all(d is None or 0.0 <= d <= 1.0 for entry in history for d in entry["val_dice"])
    assert validated.training  # given back in training mode


def test_patch_scores_equal_scoring_the_predictions_at_once():
    from mvgtutor.evaluate import segmentation_scores
    from mvgtutor.train.validation import patch_scores

    images, labels = random_patches(7)
    model = pointwise().eval()
    with torch.no_grad():
        predictions = model(images)["logits"].argmax(1)
    expected = segmentation_scores(predictions, labels)
    scores = patch_scores(model, images, labels, batch_size=3)  # three batches, the last one short
    assert (scores.matrix == expected.matrix).all()


def test_resume_after_interruption_gives_the_same_weights(tmp_path):
    data = PatchTensors(*random_patches(12))
    uninterrupted = pointwise()
    train_model(uninterrupted, data, tiny_config(), loss_fn=cross_entropy, progress=False)
    with pytest.raises(Interrupt):
        train_model(pointwise(), data, tiny_config(), loss_fn=cross_entropy, run_dir=tmp_path, progress=False,
                    on_step=interrupt_at(epoch=1, step=1))  # epoch 0 is checkpointed, epoch 1 is lost
    assert load_checkpoint(tmp_path / "checkpoint.pt")["epoch"] == 1
    torch.manual_seed(1234)  # a fresh session: the global RNG is somewhere else
    resumed = pointwise(seed=99)  # the weights are overwritten by the checkpoint
    history = train_model(resumed, data, tiny_config(), loss_fn=cross_entropy, run_dir=tmp_path, progress=False)
    assert weights_equal(uninterrupted, resumed)
    assert len(history) == 3
    assert json.loads((tmp_path / "history.json").read_text()) == history


def test_resume_mvgformer_with_vsl_and_augmentation(tmp_path):
    """The real model draws VSL masks and k-means seeds from the global RNG: saved and restored."""
    from mvgtutor.data.patches import augment_patches

    profile = make_profile("test")
    images, labels = random_patches(2, size=32)
    config = dataclasses.replace(profile.train, epochs=2, batch_size=1, checkpoint_every_epochs=1)

    def fresh():
        torch.manual_seed(0)
        return build_model("mvgformer", profile.model)

    uninterrupted = fresh()
    train_model(uninterrupted, PatchTensors(images, labels), config, augment=augment_patches, progress=False)
    with pytest.raises(Interrupt):
        train_model(fresh(), PatchTensors(images, labels), config, augment=augment_patches, run_dir=tmp_path,
                    progress=False, on_step=interrupt_at(epoch=1, step=0))
    torch.manual_seed(7)
    resumed = fresh()
    train_model(resumed, PatchTensors(images, labels), config, augment=augment_patches, run_dir=tmp_path,
                progress=False)
    assert weights_equal(uninterrupted, resumed)


def test_checkpoints_load_with_weights_only_and_a_finished_run_is_not_retrained(tmp_path):
    data = PatchTensors(*random_patches(8))
    model = pointwise()
    train_model(model, data, tiny_config(epochs=2), loss_fn=cross_entropy, run_dir=tmp_path, progress=False)
    for name in ("checkpoint.pt", "model.pt"):
        torch.load(tmp_path / name, weights_only=True)
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["epoch"] == 2 and set(state["rng"]) == {"cpu", "cuda"}
    before = {k: v.clone() for k, v in model.state_dict().items()}
    again = pointwise(seed=5)
    history = train_model(again, data, tiny_config(epochs=2), loss_fn=cross_entropy, run_dir=tmp_path,
                          progress=False, on_step=interrupt_at(0, 0))  # would raise if it trained
    assert len(history) == 2
    assert all(torch.equal(before[k], v) for k, v in again.state_dict().items())
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave no temporary files


def test_corrupt_checkpoint_is_a_data_error(tmp_path):
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="checkpoint"):
        train_model(pointwise(), PatchTensors(*random_patches(8)), tiny_config(), loss_fn=cross_entropy,
                    run_dir=tmp_path, progress=False)


def test_batch_larger_than_the_data():
    with pytest.raises(ConfigError, match="batch_size"):
        train_model(pointwise(), PatchTensors(*random_patches(3)), tiny_config(), loss_fn=cross_entropy,
                    progress=False)


def test_precision_choice(monkeypatch):
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == "fp32"
    assert resolve_precision("bf16", cpu) == "bf16"
    with pytest.raises(ConfigError, match="fp16"):
        resolve_precision("fp16", cpu)
    with pytest.raises(ConfigError, match="precision"):
        resolve_precision("fp8", cpu)
    cuda = torch.device("cuda", 0)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))  # a T4
    assert resolve_precision("auto", cuda) == "fp16"
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 0))  # an A100
    assert resolve_precision("auto", cuda) == "bf16"
