"""Build any model of the course by name: ``build_model("mvgformer" | "voxresnet" | ..., model_config)``."""

from __future__ import annotations

from torch import nn

from mvgtutor.config import ModelConfig
from mvgtutor.errors import ConfigError

# MVGFormer, our two convolutional baselines, and four from MONAI (mvgtutor.baselines.monai_nets)
MODEL_NAMES = ("mvgformer", "voxresnet", "unet3d", "dynunet", "mednext", "unetr", "swin_unetr")


def build_model(name: str, config: ModelConfig) -> nn.Module:
    """A freshly initialised model. Baselines read ``in_channels``, ``num_classes`` and take their width from
    ``decoder_channels`` (VoxResNet: stem width; U-Net: widths w, 1.5w, 2w as DeepFinder's 32, 48, 64; the MONAI
    networks: their published width times ``decoder_channels / 64``, see ``mvgtutor.baselines.monai_nets``)."""
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
