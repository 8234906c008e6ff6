"""Fig. 9(a): Swin UNETR's encoder with our decoders (MF, P3DA) instead of its own."""

import pytest
import torch

from mvgtutor.baselines.monai_nets import swin_unetr
from mvgtutor.baselines.swin_decoders import PyramidMF, PyramidP3DA, SwinEncoderOurDecoder
from mvgtutor.config import make_profile
from mvgtutor.errors import ConfigError
from mvgtutor.model.views import to_view
from mvgtutor.train.models import OUR_DECODER_NAMES, build_model

CONFIG = make_profile("test").model


@pytest.mark.parametrize("name", OUR_DECODER_NAMES)
def test_swin_with_our_decoder_trains_end_to_end(name):
    torch.manual_seed(0)
    model = build_model(name, CONFIG)
    logits = model(torch.randn(2, 1, 32, 32, 32))["logits"]
    assert logits.shape == (2, CONFIG.num_classes, 32, 32, 32)
    logits.square().mean().backward()
    assert model.encoder.patch_embed.proj.weight.grad.abs().sum() > 0  # the gradient reaches the encoder's start
    assert model.decoder.classifier.weight.grad.abs().sum() > 0


def test_the_encoder_is_swin_unetrs_own_and_its_decoder_is_gone():
    ours = build_model("swin_unetr_p3da", CONFIG)
    theirs = swin_unetr(CONFIG).net.swinViT
    assert [(k, v.shape) for k, v in ours.encoder.state_dict().items()] == \
           [(k, v.shape) for k, v in theirs.state_dict().items()]
    assert not any(k.startswith(("decoder1", "encoder10", "out.")) for k in ours.state_dict())


@pytest.mark.parametrize("decoder", [PyramidP3DA, PyramidMF])
def test_our_decoders_read_every_stage_of_the_pyramid(decoder):
    torch.manual_seed(0)
    channels = [4, 8, 16]
    head = (PyramidP3DA(channels, 6, (1, 2, 3), 5) if decoder is PyramidP3DA else PyramidMF(channels, 6, 5)).eval()
    stages = [torch.randn(1, c, 8 // 2**i, 8 // 2**i, 8 // 2**i) for i, c in enumerate(channels)]
    out = head(stages, (8, 8, 8))
    assert out.shape == (1, 5, 8, 8, 8)
    for i in range(len(stages)):  # changing any one stage, the deepest included, changes the prediction
        changed = [s + 1.0 if j == i else s for j, s in enumerate(stages)]
        assert not torch.allclose(head(changed, (8, 8, 8)), out), i


def test_the_class_prior_starts_the_classifier_and_the_literal_reading_is_an_option():
    model = build_model("swin_unetr_p3da_deepest", CONFIG)  # the alternative: the deepest map alone
    assert model.stages == (4,) and len(model.decoder.project) == 1
    prior = torch.log_softmax(torch.arange(CONFIG.num_classes, dtype=torch.float32), 0)
    model.init_class_prior(prior)
    torch.testing.assert_close(model.decoder.classifier.bias, prior)
    assert model(torch.randn(1, 1, 32, 32, 32))["logits"].shape == (1, CONFIG.num_classes, 32, 32, 32)


def test_bad_inputs_say_what_to_change():
    with pytest.raises(ConfigError, match="stage"):
        SwinEncoderOurDecoder(CONFIG, "p3da", stages=(5,))
    with pytest.raises(ConfigError, match="decoder"):
        SwinEncoderOurDecoder(CONFIG, "mlp")
    with pytest.raises(ConfigError, match="multiple of 32"):
        build_model("swin_unetr_mf", CONFIG)(torch.randn(1, 1, 24, 24, 24))


def _base(depth=None, **overrides):
    import dataclasses

    config = dataclasses.replace(CONFIG, decoder="swin_unetr", **overrides)
    return build_model("mvgformer", dataclasses.replace(config, depth=depth or config.depth))


def test_our_encoder_with_swin_unetrs_decoder_trains_end_to_end():
    torch.manual_seed(0)
    model = _base().train()
    out = model(torch.randn(2, 1, 32, 32, 32))
    assert out["logits"].shape == (2, CONFIG.num_classes, 32, 32, 32) and set(out["view_logits"]) == {"xy", "yz", "xz"}
    out["logits"].square().mean().backward()
    assert model.patch_embed.proj.weight.grad.abs().sum() > 0  # through the pyramid into our encoder
    assert model.decoder.net.encoder1.layer.conv1.conv.weight.grad.abs().sum() > 0  # the raw-patch skip


def test_the_pyramid_has_swin_unetrs_scales_and_reads_unetrs_layers():
    model = _base(depth=12)
    assert model.decoder.layers == [2, 5, 8, 11, 11]  # UNETR's z3, z6, z9, z12; the last feeds the two deepest
    assert _base(depth=2).decoder.layers == [0, 1, 1, 1, 1]
    hidden = [torch.randn(2, 8**3, CONFIG.embed_dim) for _ in range(CONFIG.depth)]
    feature = model.decoder.net.encoder2.layer.conv1.conv.in_channels
    maps = _base().decoder.pyramid(hidden)
    assert [tuple(m.shape[1:]) for m in maps] == [(feature * 2**i, *(32 // 2 ** (i + 1),) * 3) for i in range(5)]


def test_the_decoder_does_not_see_the_voxels_vsl_hid():
    model = _base().train()
    features = model.forward_features(torch.randn(2, 1, 32, 32, 32) + 5.0, torch.Generator().manual_seed(1))
    assert features.masked is not None and features.inputs.shape == (3 * 2, 1, 32, 32, 32)
    view = int(features.masked.view)
    hidden = to_view(model.vsl.voxel_mask(features.masked), model.views[view])  # (B, 1, S, S, S)
    seen = features.inputs.view(3, 2, 1, 32, 32, 32)
    assert hidden.any() and (seen[view][hidden] == 0).all() and (seen[view][~hidden] != 0).all()
    assert all((seen[v] != 0).all() for v in range(3) if v != view)  # the other views are whole
    assert build_model("mvgformer", CONFIG).forward_features(torch.randn(1, 1, 32, 32, 32)).inputs is None
