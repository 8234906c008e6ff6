"""MVGFormer assembled: the forward contract for every option, gradients, overfitting one batch, the size."""

import dataclasses

import pytest
import torch

from mvgtutor.config import make_profile, paper_config
from mvgtutor.errors import ConfigError
from mvgtutor.model import MVGFormer, segmentation_loss

PROFILE = make_profile("test")
SMALL = dataclasses.replace(PROFILE.model, input_size=16, p3da_dilations=(1, 2, 4, 6))  # 4^3 tokens: fast
PAPER_P3DA_PARAMETERS = 13.7e6  # Table 7


def batch(config, size=2, seed=0):
    generator = torch.Generator().manual_seed(seed)
    side = config.input_size
    return torch.randn(size, 1, side, side, side, generator=generator)


OPTIONS = [
    {}, {"decoder": "mf"}, {"decoder": "mlp"}, {"fusion": "norm_sum"}, {"fusion": "learned"},
    {"position": "shared"}, {"position": "sinusoidal"}, {"position": "rotary"},
    {"graph_method": "spectral"}, {"graph_method": "mincut"}, {"graph_method": "none"},
    {"graph_query": "token_plus_node"}, {"vsl": False}, {"p3da_upsample": "trilinear"}, {"p3da_conv": "valid_taps"},
    {"views": ("xy", "xz")}, {"views": ("yz",), "vsl": False},
]


@pytest.mark.parametrize("option", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "paper")
def test_forward_contract_for_every_option(option):
    config = dataclasses.replace(SMALL, **option)
    model = MVGFormer(config)
    x = batch(config)
    outputs = model(x)
    shape = (2, 16, 16, 16, 16)
    assert outputs["logits"].shape == shape
    assert set(outputs["view_logits"]) == set(config.views)
    assert all(v.shape == shape for v in outputs["view_logits"].values())
    assert ("recon_loss" in outputs) == config.vsl
    assert ("graph_loss" in outputs) == (config.graph_method == "mincut")
    loss, _ = segmentation_loss(outputs, torch.zeros(shape[:1] + shape[2:], dtype=torch.long), PROFILE.train)
    assert torch.isfinite(loss)
    model.eval()
    with torch.no_grad():
        first, second = model(x), model(x)
    assert "recon_loss" not in first
    assert torch.equal(first["logits"], second["logits"])  # eval is deterministic (seeded graph)


def test_fused_logits_are_the_sum_of_the_views_in_the_canonical_grid():
    model = MVGFormer(SMALL).eval()
    with torch.no_grad():
        outputs = model(batch(SMALL))
    assert torch.allclose(outputs["logits"], sum(outputs["view_logits"].values()), atol=1e-5)  # eq. 8


def test_a_feature_seen_in_every_view_lands_in_the_same_place():
    config = dataclasses.replace(SMALL, decoder="mlp", vsl=False)
    model = MVGFormer(config).eval()
    x = batch(config, size=1)
    with torch.no_grad():
        base = model(x)["view_logits"]
        bumped = x.clone()
        bumped[0, 0, 0:4, 4:8, 8:12] += 5.0  # one token-cube in the canonical grid
        changed = model(bumped)["view_logits"]
    for view in config.views:
        moved = (changed[view] - base[view]).abs().sum(1)[0]  # (D, H, W)
        inside = moved[0:4, 4:8, 8:12].mean()
        outside = moved.sum() - moved[0:4, 4:8, 8:12].sum()
        assert inside > 0 and outside / moved.numel() < inside  # the MLP head paints only under its own token


@pytest.mark.parametrize("option", [{}, {"graph_method": "mincut", "fusion": "learned"},
                                    {"decoder": "mf", "graph_query": "token_plus_node", "position": "rotary"}])
def test_gradient_reaches_every_parameter(option):
    config = dataclasses.replace(SMALL, **option)
    model = MVGFormer(config)
    outputs = model(batch(config))
    target = torch.randint(16, (2, 16, 16, 16), generator=torch.Generator().manual_seed(1))
    loss, _ = segmentation_loss(outputs, target, PROFILE.train)
    loss.backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_overfits_one_batch():
    config = dataclasses.replace(SMALL, decoder="mlp", vsl=False)
    torch.manual_seed(0)
    model = MVGFormer(config)
    generator = torch.Generator().manual_seed(0)
    coarse = torch.randint(16, (1, 1, 4, 4, 4), generator=generator).float()
    target = torch.nn.functional.interpolate(coarse, scale_factor=4).long()[:, 0]  # (1, 16, 16, 16) blocky labels
    x = (target.float() / 8 - 1).unsqueeze(1) + 0.1 * torch.randn(1, 1, 16, 16, 16, generator=generator)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(300):
        loss, _ = segmentation_loss(model(x), target, PROFILE.train)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if losses[-1] < 0.1 * losses[0]:
            break
    assert losses[-1] < 0.1 * losses[0], f"loss went {losses[0]:.3f} -> {losses[-1]:.3f} in {len(losses)} steps"


def test_parameter_count_at_the_paper_settings():
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        count = MVGFormer(paper_config().model).num_parameters()
    print(f"MVGFormer (P3DA) at the paper's settings: {count / 1e6:.2f}M parameters (paper, Table 7: 13.7M)")
    assert abs(count / PAPER_P3DA_PARAMETERS - 1) < 0.10


def test_bad_inputs_and_options_raise_config_errors():
    model = MVGFormer(SMALL)
    with pytest.raises(ConfigError, match=r"expects a batch \(B, 1, 16, 16, 16\)"):
        model(torch.zeros(1, 1, 32, 32, 32))
    for option, message in [({"decoder": "unet"}, "decoder"), ({"position": "alibi"}, "position"),
                            ({"views": ("xy", "zz")}, "views"), ({"input_size": 18}, "input_size=18")]:
        with pytest.raises(ConfigError, match=message):
            MVGFormer(dataclasses.replace(SMALL, **option))


@pytest.mark.parametrize("decoder", ["p3da", "mf", "mlp"])
def test_untrained_model_predicts_nearly_uniform_probabilities(decoder):
    config = dataclasses.replace(SMALL, decoder=decoder, vsl=False)
    torch.manual_seed(0)
    with torch.no_grad():
        outputs = MVGFormer(config).eval()(batch(config))
    target = torch.randint(16, (2, 16, 16, 16), generator=torch.Generator().manual_seed(0))
    _, parts = segmentation_loss(outputs, target, PROFILE.train)
    uniform = torch.log(torch.tensor(16.0))
    assert all(abs(parts[name] - uniform) < 0.1 for name in ("ce_fused", "ce_xy", "ce_yz", "ce_xz"))
