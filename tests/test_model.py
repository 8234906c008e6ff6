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
    {"views": ("xy", "xy", "xy")}, {"encoder_sequence": "joint"}, {"encoder_sequence": "joint", "position": "rotary"},
    {"vsl_reading": "realigned"}, {"xz_input_noise": 0.05},
]


@pytest.mark.parametrize("option", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "paper")
def test_forward_contract_for_every_option(option):
    config = dataclasses.replace(SMALL, **option)
    model = MVGFormer(config)
    x = batch(config)
    outputs = model(x)
    shape = (2, 16, 16, 16, 16)
    assert outputs["logits"].shape == shape
    assert set(outputs["view_logits"]) == set(model.view_keys) and len(model.view_keys) == len(config.views)
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
                            ({"views": ("xy", "zz")}, "views"), ({"input_size": 18}, "input_size=18"),
                            ({"encoder_sequence": "mixed"}, "encoder_sequence")]:
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


def test_a_patch_gets_the_same_prediction_alone_and_anywhere_in_any_batch():
    torch.manual_seed(0)
    model = MVGFormer(SMALL).eval()
    patches = batch(SMALL, size=9, seed=4)
    with torch.no_grad():
        together = model(patches)["logits"]
        for index in (0, 4, 8):
            alone = model(patches[index:index + 1])["logits"][0]
            assert torch.allclose(alone, together[index], atol=1e-4)
            assert torch.equal(alone.argmax(0), together[index].argmax(0))
        reversed_batch = model(patches.flip(0))["logits"].flip(0)
        assert torch.allclose(reversed_batch, together, atol=1e-4)


def test_repeated_views_have_their_own_positions_and_outputs():
    config = dataclasses.replace(SMALL, views=("yz", "yz", "yz"), vsl=False)
    model = MVGFormer(config)
    assert model.view_keys == ("yz", "yz_2", "yz_3") and model.positions.table.shape[0] == 3
    with torch.no_grad():
        outputs = model.eval()(batch(config))
    logits = list(outputs["view_logits"].values())
    assert not torch.allclose(logits[0], logits[1])  # the same input, different position tables


def test_joint_sequence_mixes_views_and_equals_per_view_for_one_view():
    one = dataclasses.replace(SMALL, views=("xz",), vsl=False)
    torch.manual_seed(0)
    per_view = MVGFormer(one).eval()
    joint = MVGFormer(dataclasses.replace(one, encoder_sequence="joint")).eval()
    joint.load_state_dict(per_view.state_dict())
    x = batch(one)
    with torch.no_grad():
        assert torch.allclose(per_view(x)["logits"], joint(x)["logits"], atol=1e-5)
    for sequence, mixes in (("per_view", False), ("joint", True)):
        torch.manual_seed(0)
        model = MVGFormer(dataclasses.replace(SMALL, vsl=False, encoder_sequence=sequence)).eval()
        with torch.no_grad():
            base = model.forward_features(x).per_view()
            model.positions.table.data[2] += 1.0  # change what the XZ view's tokens are
            moved = model.forward_features(x).per_view()
        assert torch.equal(base[0], moved[0]) != mixes  # only in the joint sequence does XY attend to XZ


def test_view_diversity_metrics_of_table_14():
    from mvgtutor.model.diversity import cosine_similarity, feature_diversity, view_diversity

    features = torch.randn(2, 64, 8, generator=torch.Generator().manual_seed(0))
    assert cosine_similarity(features, features) == pytest.approx(1.0)
    assert feature_diversity(features, features) == pytest.approx(0.0)
    assert feature_diversity(features, -features) == pytest.approx(4.0)  # opposite unit tokens: ||2u||^2
    assert cosine_similarity(features, -features) == pytest.approx(-1.0)
    same = dataclasses.replace(SMALL, views=("xy", "xy"), position="sinusoidal", vsl=False)
    scores = view_diversity(MVGFormer(same), batch(same))
    assert scores[("xy", "xy_2")]["cos_sim"] == pytest.approx(1.0) and scores[("xy", "xy_2")]["fds"] < 1e-6
    paper = view_diversity(MVGFormer(dataclasses.replace(SMALL, vsl=False)), batch(SMALL))
    assert set(paper) == {("xy", "yz"), ("xy", "xz"), ("yz", "xz")}
    with pytest.raises(ConfigError, match="view features"):
        cosine_similarity(features, features[:, :5])


@pytest.mark.parametrize("loss", ["ce_boundary_dice", "ce_contrastive"])
def test_table_9_loss_variants_train_the_model(loss):
    from mvgtutor.config import TrainConfig

    config = dataclasses.replace(SMALL, views=("xy", "xz", "xz"), vsl=False)  # a repeated view too
    model = MVGFormer(config)
    target = torch.zeros(2, 16, 16, 16, dtype=torch.long)
    target[:, 4:12, 4:12, 4:12] = 5
    total, parts = segmentation_loss(model(batch(config)), target, TrainConfig(loss=loss))
    term = "boundary_dice" if loss == "ce_boundary_dice" else "contrastive"
    assert term in parts and parts[term] > 0
    total.backward()
    assert model.patch_embed.proj.weight.grad.abs().sum() > 0
