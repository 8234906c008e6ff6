"""VSL (Sec. 4.4): in our default reading the reconstruction depends on the mask and the masked view's stream
cannot see the hidden voxels; the literal reading does not depend on the mask (the check chapter 9 reports)."""

import dataclasses

import pytest
import torch

from mvgtutor.config import make_profile
from mvgtutor.errors import ConfigError
from mvgtutor.model import MVGFormer
from mvgtutor.model.vsl import ViewMaskedSSL

SMALL = dataclasses.replace(make_profile("test").model, input_size=16, p3da_dilations=(1, 2, 4, 6), decoder="mlp")


def patches(size=2, seed=0):
    return torch.randn(size, 1, 16, 16, 16, generator=torch.Generator().manual_seed(seed))


def recon_loss(model, x, seed=0):
    torch.manual_seed(0)
    return model(x, generator=torch.Generator().manual_seed(seed))["recon_loss"]


@pytest.mark.parametrize("reading", ["cross_view", "realigned"])
def test_reconstruction_depends_on_the_mask_only_in_the_cross_view_reading(reading):
    torch.manual_seed(0)
    model = MVGFormer(dataclasses.replace(SMALL, vsl_reading=reading)).train()
    x = patches()
    with torch.no_grad():
        base = recon_loss(model, x)
        model.vsl.mask_token.mul_(50.0)  # the encoder's mask token, as in issue 10's check
        scaled = recon_loss(model, x)
    if reading == "realigned":
        assert torch.equal(base, scaled)  # the literal reading never reads the masked view
    else:
        assert abs(float(base - scaled)) > 1e-6  # the masked view's encoded tokens reach the decoder


def test_another_mask_gives_another_cross_view_loss():
    torch.manual_seed(0)
    model = MVGFormer(SMALL).train()
    x = patches()
    with torch.no_grad():
        features = model.forward_features(x, torch.Generator().manual_seed(0))
        last = features.per_view()
        masked = features.masked
        flipped = dataclasses.replace(masked, mask=~masked.mask)
        assert not torch.allclose(model.vsl.loss(last, x, masked), model.vsl.loss(last, x, flipped), rtol=1e-3)


def test_masked_view_stream_is_blind_to_the_hidden_voxels():
    torch.manual_seed(0)
    model = MVGFormer(SMALL).train()
    x = patches()
    with torch.no_grad():
        first = model.forward_features(x, torch.Generator().manual_seed(3))
        hidden = model.vsl.voxel_mask(first.masked)  # (B, 1, S, S, S)
        assert hidden.float().mean() == pytest.approx(SMALL.mask_ratio)
        changed = torch.where(hidden, x + 5 * patches(seed=1), x)  # new content under the masked tokens only
        second = model.forward_features(changed, torch.Generator().manual_seed(3))
    view = first.masked.view
    assert second.masked.view == view and torch.equal(second.masked.mask, first.masked.mask)
    assert torch.allclose(first.per_view()[view], second.per_view()[view], atol=1e-5)  # blind
    others = [v for v in range(3) if v != view]
    assert not torch.allclose(first.per_view()[others], second.per_view()[others], atol=1e-3)  # they see it


def test_batch_norm_running_statistics_ignore_the_masked_pass():
    torch.manual_seed(0)
    with_vsl, without = MVGFormer(SMALL).train(), MVGFormer(dataclasses.replace(SMALL, vsl=False)).train()
    without.load_state_dict(with_vsl.state_dict(), strict=False)
    x = patches()
    with torch.no_grad():
        with_vsl(x, generator=torch.Generator().manual_seed(0))
        without(x, generator=torch.Generator().manual_seed(0))
    for a, b in zip(with_vsl.context.modules(), without.context.modules()):
        if isinstance(a, torch.nn.BatchNorm3d):
            assert torch.equal(a.running_mean, b.running_mean) and torch.equal(a.num_batches_tracked,
                                                                               b.num_batches_tracked)


def test_cross_view_decoder_trains_and_bad_readings_fail():
    torch.manual_seed(0)
    model = MVGFormer(SMALL).train()
    loss = recon_loss(model, patches())
    loss.backward()
    assert model.vsl.decoder_mask_token.grad.abs().sum() > 0 and model.vsl.position.grad.abs().sum() > 0
    with pytest.raises(ConfigError, match="vsl_reading"):
        ViewMaskedSSL(dataclasses.replace(SMALL, vsl_reading="mae"))


def test_xz_noise_perturbs_only_the_xz_view_and_only_in_training():
    torch.manual_seed(0)
    model = MVGFormer(dataclasses.replace(SMALL, xz_input_noise=0.05, vsl=False))
    x = patches()
    clean = [v for v in model.eval().view_inputs(x)]
    noisy = model.train().view_inputs(x, torch.Generator().manual_seed(0))
    for view, a, b in zip(model.views, clean, noisy):
        if view == "xz":
            assert (b - a).std() == pytest.approx(0.05, rel=0.1)
        else:
            assert torch.equal(a, b)
    with pytest.raises(ConfigError, match="xz_input_noise"):
        MVGFormer(dataclasses.replace(SMALL, xz_input_noise=-1.0))


def test_chapter_9_checks_tell_the_two_readings_apart():
    from mvgtutor.model.vsl_checks import mask_dependence, other_views_ablation, reconstruction_quality

    x = patches(size=3)
    torch.manual_seed(0)
    literal = mask_dependence(MVGFormer(dataclasses.replace(SMALL, vsl_reading="realigned")), x)
    assert len(set(literal.values())) == 1  # the literal reading's loss ignores the mask
    torch.manual_seed(0)
    model = MVGFormer(SMALL)
    ours = mask_dependence(model, x)
    assert len(set(ours.values())) == 3
    ablation = other_views_ablation(model, x)
    assert set(ablation) == {"own other views", "another patch's other views"}
    quality = reconstruction_quality(model, x)
    assert quality["mse_coarse_oracle"] <= quality["mse_mean_grey"] and -1 <= quality["corr_fine"] <= 1
    assert model.training  # the caller's model is left as it was
    with pytest.raises(Exception, match="at least 2 patches"):
        other_views_ablation(model, x[:1])
