"""Fig. 9(a): Swin UNETR's encoder with our decoders (MF, P3DA) instead of its own."""

import pytest
import torch

from mvgtutor.baselines.monai_nets import swin_unetr
from mvgtutor.baselines.swin_decoders import PyramidMF, PyramidP3DA, SwinEncoderOurDecoder
from mvgtutor.config import make_profile
from mvgtutor.errors import ConfigError
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
    model = SwinEncoderOurDecoder(CONFIG, "p3da", stages=(4,))  # the alternative: the deepest map alone
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
