"""The baselines follow the forward contract and learn."""

import dataclasses

import pytest
import torch

from mvgtutor.baselines import UNet3D, VoxResNet
from mvgtutor.config import make_profile
from mvgtutor.errors import ConfigError
from mvgtutor.train.models import build_model


@pytest.mark.parametrize("model", [VoxResNet(1, 16, width=4), UNet3D(1, 16, widths=(4, 6, 8))])
def test_forward_contract(model):
    outputs = model(torch.randn(2, 1, 32, 32, 32))
    assert set(outputs) == {"logits"}
    assert outputs["logits"].shape == (2, 16, 32, 32, 32)


@pytest.mark.parametrize("name", ["voxresnet", "unet3d"])
def test_build_model_and_a_few_steps_lower_the_loss(name):
    config = dataclasses.replace(make_profile("test").model, decoder_channels=4)
    torch.manual_seed(0)
    model = build_model(name, config)
    images = torch.randn(2, 1, 16, 16, 16)
    labels = (images[:, 0] > 0).long()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(8):
        loss = torch.nn.functional.cross_entropy(model(images)["logits"], labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.9 * losses[0]


def test_unknown_model_name():
    with pytest.raises(ConfigError, match="voxresnet"):
        build_model("resnet", make_profile("test").model)
