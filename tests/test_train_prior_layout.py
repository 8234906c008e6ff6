"""Starting the classifier at the class prior, and the channels-last memory layout."""

import dataclasses

import pytest
import torch

from mvgtutor.baselines import UNet3D, VoxResNet
from mvgtutor.config import make_profile
from mvgtutor.errors import ConfigError
from mvgtutor.model.mvgformer import MVGFormer
from mvgtutor.train.engine import PatchTensors, train_model
from mvgtutor.train.layout import apply_memory_format, resolve_memory_format
from mvgtutor.train.prior import init_class_prior, log_class_prior


def test_log_class_prior_is_centred_log_frequency():
    labels = torch.tensor([0] * 6 + [1] * 3 + [2])  # frequencies 0.6, 0.3, 0.1, class 3 absent
    prior = log_class_prior(labels, 4)
    expected = torch.tensor([0.6, 0.3, 0.1, 0.1]).log()  # the absent class counts as one voxel
    assert torch.allclose(prior, expected - expected.mean(), atol=1e-6)
    assert torch.allclose(prior.softmax(0)[:3] / prior.softmax(0)[:3].sum(), torch.tensor([0.6, 0.3, 0.1]))


def _zero_last_layer_weights(module: torch.nn.Module, classifiers) -> None:
    with torch.no_grad():
        for layer in classifiers:
            layer.weight.zero_()


@pytest.mark.parametrize("decoder", ["p3da", "mf", "mlp", "swin_unetr"])
def test_mvgformer_starts_at_the_prior(decoder):
    config = dataclasses.replace(make_profile("test").model, decoder=decoder, vsl=False)
    model = MVGFormer(config).eval()
    labels = torch.randint(0, 3, (2, 8, 8, 8)) * 7  # classes 0, 7 and 14 only
    assert init_class_prior(model, labels)
    _zero_last_layer_weights(model, [model.decoder.classifier])
    with torch.no_grad():
        view_logits = model(torch.randn(1, 1, 32, 32, 32))["view_logits"]["yz"]  # (1, 16, 32, 32, 32)
    expected = log_class_prior(labels, 16).view(1, 16, 1, 1, 1).expand_as(view_logits)
    assert torch.allclose(view_logits, expected, atol=1e-5)  # every voxel predicts the class frequencies


@pytest.mark.parametrize("make", [lambda: UNet3D(1, 16, (4, 6, 8)), lambda: VoxResNet(1, 16, width=4)])
def test_baselines_start_at_the_prior(make):
    model = make().eval()
    labels = torch.randint(0, 16, (4, 8, 8, 8)) % 5
    assert init_class_prior(model, labels)
    classifiers = getattr(model, "classifiers", None) or [model.head]
    _zero_last_layer_weights(model, classifiers)
    with torch.no_grad():
        logits = model(torch.randn(1, 1, 16, 16, 16))["logits"]
    expected = log_class_prior(labels, 16).view(1, 16, 1, 1, 1).expand_as(logits)
    assert torch.allclose(logits, expected, atol=1e-5)


def test_models_without_the_hook_are_left_alone():
    assert not init_class_prior(torch.nn.Conv3d(1, 16, 1), torch.zeros(4, dtype=torch.long))


def test_training_starts_from_the_prior_only_when_asked():
    torch.manual_seed(0)
    data = PatchTensors(torch.randn(4, 1, 16, 16, 16), (torch.rand(4, 16, 16, 16) < 0.2).to(torch.uint8) * 5)
    base = dataclasses.replace(make_profile("test").train, epochs=1, batch_size=4, lr=0.0, augment=False)
    for prior_bias in (True, False):
        model = UNet3D(1, 16, (4, 6, 8))
        before = model.head.bias.detach().clone()
        train_model(model, data, dataclasses.replace(base, prior_bias=prior_bias), progress=False, device="cpu")
        if prior_bias:  # lr 0: the bias is exactly the prior the engine set
            assert torch.allclose(model.head.bias.detach(), log_class_prior(data.labels, 16))
        else:
            assert torch.equal(model.head.bias.detach(), before)


def test_memory_format_choice_and_conversion():
    assert resolve_memory_format("auto", torch.device("cpu")) == "channels_first"
    assert resolve_memory_format("auto", torch.device("cuda", 0)) == "channels_last"
    with pytest.raises(ConfigError, match="memory_format"):
        resolve_memory_format("nhwc", torch.device("cpu"))
    torch.manual_seed(0)
    model = MVGFormer(dataclasses.replace(make_profile("test").model, vsl=False)).eval()
    x = torch.randn(2, 1, 32, 32, 32)
    with torch.no_grad():
        reference = model(x)["logits"]
        apply_memory_format(model, "channels_last")
        assert model.context.blocks[0][0].weight.is_contiguous(memory_format=torch.channels_last_3d)
        assert torch.allclose(model(x)["logits"], reference, atol=1e-4)  # the layout never changes the result


def test_memory_format_for_gives_the_model_back_unchanged():
    from mvgtutor.train.layout import memory_format_for

    model = MVGFormer(dataclasses.replace(make_profile("test").model, vsl=False)).eval()
    conv = model.context.blocks[0][0].weight
    before = conv.detach().clone()
    with memory_format_for(model, "channels_last"):
        assert conv.is_contiguous(memory_format=torch.channels_last_3d)
    assert conv.is_contiguous() and torch.equal(conv.detach(), before)


def test_label_counts_in_chunks_and_bad_labels():
    from mvgtutor.data.patches import label_counts
    from mvgtutor.errors import DataError

    labels = torch.randint(0, 16, (3, 8, 8, 8), dtype=torch.uint8)
    expected = torch.bincount(labels.flatten().long(), minlength=16)
    assert torch.equal(label_counts(labels, 16, chunk=100), expected)  # chunks of 100 voxels add up exactly
    with pytest.raises(DataError, match="class 20"):
        label_counts(torch.tensor([0, 20]), 16)
