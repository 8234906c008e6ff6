"""Build any model of the course by name: ``build_model("mvgformer" | "voxresnet" | ..., model_config)``."""

from __future__ import annotations

from torch import nn

from mvgtutor.config import ModelConfig
from mvgtutor.errors import ConfigError

# MVGFormer, our two convolutional baselines, and four from MONAI (mvgtutor.baselines.monai_nets)
BASELINE_NAMES = ("voxresnet", "unet3d", "dynunet", "mednext", "unetr", "swin_unetr")
# each baseline with the paper's MVP around it (Table 11, mvgtutor.baselines.mvp): one backbone shared by the
# views (our reading), or one per view (the alternative)
MVP_NAMES = tuple(f"{name}_mvp{kind}" for kind in ("", "_unshared") for name in BASELINE_NAMES)
# Swin UNETR's encoder with our decoders instead of its own (Fig. 9(a), mvgtutor.baselines.swin_decoders)
# (our reading: the decoder reads all five Swin stages; "_deepest": P3DA on the last stage alone, the literal one)
OUR_DECODER_NAMES = ("swin_unetr_p3da", "swin_unetr_mf", "swin_unetr_p3da_deepest")
MODEL_NAMES = ("mvgformer",) + BASELINE_NAMES + MVP_NAMES + OUR_DECODER_NAMES


def build_model(name: str, config: ModelConfig) -> nn.Module:
    """A freshly initialised model. Baselines read ``in_channels``, ``num_classes`` and take their width from
    ``decoder_channels`` (VoxResNet: stem width; U-Net: widths w, 1.5w, 2w as DeepFinder's 32, 48, 64; the MONAI
    networks: their published width times ``decoder_channels / 64``, see ``mvgtutor.baselines.monai_nets``).
    ``<baseline>_mvp`` wraps the baseline in MVP with ``config.views`` and ``config.fusion``; ``_mvp_unshared``
    gives each view its own copy (``mvgtutor.baselines.mvp``); ``swin_unetr_p3da`` and ``swin_unetr_mf`` put our
    decoders on Swin UNETR's encoder (``mvgtutor.baselines.swin_decoders``)."""
    if name in OUR_DECODER_NAMES:
        from mvgtutor.baselines.swin_decoders import SwinEncoderOurDecoder

        decoder, _, deepest = name.removeprefix("swin_unetr_").partition("_")
        return SwinEncoderOurDecoder(config, decoder, stages=(4,) if deepest else (0, 1, 2, 3, 4))
    if name in MVP_NAMES:
        from mvgtutor.baselines.mvp import MultiViewPerspective

        base, _, kind = name.partition("_mvp")
        return MultiViewPerspective(build_model(base, config), views=config.views, fusion=config.fusion,
                                    shared_backbone=kind != "_unshared")
    if name == "mvgformer":
        from mvgtutor.model.mvgformer import MVGFormer

        return MVGFormer(config)
    width = config.decoder_channels
    if name == "voxresnet":
        from mvgtutor.baselines import VoxResNet

        return VoxResNet(config.in_channels, config.num_classes, width=width)
    if name == "unet3d":
        from mvgtutor.baselines import UNet3D

        return UNet3D(config.in_channels, config.num_classes, widths=(width, width * 3 // 2, width * 2))
    from mvgtutor.baselines.monai_nets import BUILDERS

    if name in BUILDERS:
        return BUILDERS[name](config)
    raise ConfigError(f"unknown model {name!r}: use one of {', '.join(MODEL_NAMES)}")
