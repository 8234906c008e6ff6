"""Four baselines from MONAI (Cardoso et al. 2022), wrapped in the course's forward contract.

A well-kept library implements these better than we would, so we do not rewrite them; each builder below only
chooses the settings that a 32^3 patch needs, and says why:

* ``swin_unetr``: Swin UNETR (Hatamizadeh et al. 2022), in the paper's Table 2 (79.4 mIoU).
* ``unetr``: UNETR (Hatamizadeh et al. 2022), a plain ViT encoder with a convolutional decoder.
* ``dynunet``: MONAI's DynUNet, the nnU-Net architecture (Isensee et al. 2021), with residual blocks as nnU-Net's
  ResEnc variant: the strong CNN every 3D segmentation paper is now asked to beat. We chose it over SegResNet
  because it is the nnU-Net network itself, configured here the way nnU-Net's planner configures a 32^3 patch.
* ``mednext``: MedNeXt (Roy et al. 2023), in the paper's Table 2 (82.7 mIoU); MONAI ships it since 1.5.

Widths: at the paper's profile (``decoder_channels=64``) each network has its published width; smaller profiles
scale it by ``decoder_channels / 64``, with a floor of 8 channels (12 for Swin UNETR, whose width must be a
multiple of 12). UNETR's transformer takes MVGFormer's own C, heads and MLP ratio (``embed_dim``, ``num_heads``,
``mlp_ratio``), so the two transformers have the same width in every profile.
"""

from __future__ import annotations

import torch
from torch import nn

from mvgtutor.config import ModelConfig
from mvgtutor.errors import ConfigError

PAPER_DECODER_CHANNELS = 64  # ModelConfig.decoder_channels of the paper's profile: widths scale from it
SWIN_NORM_GROUPS = 4  # divides every Swin UNETR width (multiples of 12): see swin_unetr()
SWIN_WINDOW = 4  # attention window of Swin UNETR at 32^3 (ours; MONAI: 7): see swin_unetr()


def _monai():
    try:
        import monai.networks.nets as nets
    except ImportError:
        raise ConfigError("the MONAI baselines need MONAI: pip install 'monai>=1.5'") from None
    return nets


def scaled_width(config: ModelConfig, published: int, floor: int = 8, multiple: int = 1) -> int:
    """``published`` channels scaled by ``decoder_channels / 64``, at least ``floor``, rounded to ``multiple``."""
    width = max(floor, round(published * config.decoder_channels / PAPER_DECODER_CHANNELS))
    return max(multiple, round(width / multiple) * multiple)


class MonaiSegmenter(nn.Module):
    """A MONAI network that maps ``(B, 1, D, H, W)`` to a logits tensor, with the course's forward contract.

    ``head`` names the network's last convolution (``net.get_submodule(head)``), whose bias
    ``init_class_prior`` sets.
    """

    def __init__(self, net: nn.Module, head: str, num_classes: int):
        super().__init__()
        self.net = net
        self.head = head
        self.num_classes = num_classes

    @torch.no_grad()
    def init_class_prior(self, log_prior: torch.Tensor) -> None:
        """Start the last convolution's bias at ``log_prior (num_classes,)`` (``mvgtutor.train.prior``)."""
        self.net.get_submodule(self.head).bias.copy_(log_prior)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, C_in, D, H, W) -> {"logits": (B, num_classes, D, H, W)}."""
        logits = self.net(x)
        return {"logits": torch.as_tensor(logits)}  # MONAI may return a MetaTensor subclass


def _check_size(config: ModelConfig, divisor: int, name: str) -> None:
    if config.input_size % divisor:
        raise ConfigError(f"{name} needs an input size divisible by {divisor}, got input_size="
                          f"{config.input_size}: use a patch size that is a multiple of {divisor}")


def swin_unetr(config: ModelConfig, window_size: int = SWIN_WINDOW) -> MonaiSegmenter:
    """Swin UNETR with group norm (4 groups) instead of MONAI's instance norm, and 4^3 attention windows.

    Norm: Swin UNETR embeds 2^3 patches and halves the grid four more times, so a 32^3 patch reaches a 1^3
    bottleneck (16 -> 8 -> 4 -> 2 -> 1). Instance norm normalises each channel over space; over one voxel it is
    undefined and PyTorch refuses it in training mode. The stage count is built into MONAI's decoder (it reads all
    five scales), so a shallower Swin UNETR would be a rewrite, not a setting. Batch norm would work, but the cpu
    profile trains at batch 2: two numbers per statistic at the bottleneck. Group norm (Wu and He 2018) pools each
    statistic over a group of channels and space, so it is defined on a 1^3 map and does not depend on the batch;
    4 groups divide every Swin UNETR width (a multiple of 12).
    Window (ours; MONAI's and the Swin UNETR paper's 7 is ``window_size=7``): the published model windows a 48^3
    map (96^3 input) in 7^3 windows, 15% of a side. At 32^3 the first map is 16^3: a 7^3 window is padded to
    21^3 (2.3x the tokens) and covers 44% of a side; a 4^3 window tiles 16^3 exactly and covers 25%. At the cpu
    profile's width it counts 1.48 forward GFLOPs per sample against 1.96, and a training step at batch 2 took
    3.5 s against 13.5 s in one measurement on a shared 2-core CPU. Maps of 4^3 or less are attended whole either
    way. Published width 48 (``feature_size``); depths 2-2-2-2 and heads 3-6-12-24 are MONAI's.
    """
    _check_size(config, 32, "Swin UNETR")
    net = _monai().SwinUNETR(in_channels=config.in_channels, out_channels=config.num_classes,
                             feature_size=scaled_width(config, 48, floor=12, multiple=12), window_size=window_size,
                             norm_name=("group", {"num_groups": SWIN_NORM_GROUPS}), spatial_dims=3)
    return MonaiSegmenter(net, "out.conv.conv", config.num_classes)


def unetr(config: ModelConfig) -> MonaiSegmenter:
    """UNETR: a 12-layer ViT on 16^3 patches (fixed in MONAI) and a convolutional decoder, instance norm.

    At 32^3 the ViT sees only 2^3 = 8 tokens (MVGFormer: 8^3 = 512 per view). The transformer takes MVGFormer's
    ``embed_dim``, ``num_heads`` and ``mlp_ratio``; the decoder's width is UNETR's 16, scaled. Instance norm
    (MONAI's default) is kept: the smallest map it normalises is 4^3. The ViT blocks' unused cross-attention
    norms are removed (see below).
    """
    _check_size(config, 16, "UNETR")
    net = _monai().UNETR(in_channels=config.in_channels, out_channels=config.num_classes,
                         img_size=config.input_size, feature_size=scaled_width(config, 16),
                         hidden_size=config.embed_dim, mlp_dim=int(config.embed_dim * config.mlp_ratio),
                         num_heads=config.num_heads, spatial_dims=3)
    for block in net.vit.blocks:  # MONAI registers a cross-attention norm that a block without cross-attention
        block.norm_cross_attn = nn.Identity()  # never calls: dropped, so every parameter trains (DDP needs it)
    return MonaiSegmenter(net, "out.conv.conv", config.num_classes)


def dynunet(config: ModelConfig) -> MonaiSegmenter:
    """DynUNet as nnU-Net's planner would set it for a 32^3 patch, with residual blocks (ResEnc).

    nnU-Net halves an axis while it stays at least 8 voxels, so 32 -> 16 -> 8 -> 4: strides 1, 2, 2, 2, 3^3
    kernels, widths 32-64-128-256 (nnU-Net's base 32, doubling), instance norm and leaky ReLU (its defaults; the
    smallest map is 4^3). Deep supervision is off: every model of this chapter trains on the same loss
    (``segmentation_loss`` on one logits map).
    """
    _check_size(config, 8, "DynUNet")
    base = scaled_width(config, 32)
    net = _monai().DynUNet(spatial_dims=3, in_channels=config.in_channels, out_channels=config.num_classes,
                           kernel_size=[3, 3, 3, 3], strides=[1, 2, 2, 2], upsample_kernel_size=[2, 2, 2],
                           filters=[base, 2 * base, 4 * base, 8 * base], res_block=True)
    return MonaiSegmenter(net, "output_block.conv.conv", config.num_classes)


def mednext(config: ModelConfig) -> MonaiSegmenter:
    """MedNeXt-M (3^3 kernels): the variant whose 17.6M parameters the paper's Table 7 lists for MedNeXt.

    Our reading: the paper does not name the variant; M with k=3 is the one of MedNeXt's Table 1 with 17.6M.
    Four downsamplings take 32^3 to a 2^3 bottleneck; MedNeXt's group norm (one group per channel) is defined
    there. Published width 32 (``init_filters``), scaled. Deep supervision off, as for DynUNet.
    """
    _check_size(config, 16, "MedNeXt")
    net = _monai().MedNeXt(spatial_dims=3, in_channels=config.in_channels, out_channels=config.num_classes,
                           init_filters=scaled_width(config, 32), kernel_size=3, use_residual_connection=True,
                           encoder_expansion_ratio=(2, 3, 4, 4), decoder_expansion_ratio=(4, 4, 3, 2),
                           bottleneck_expansion_ratio=4, blocks_down=(3, 4, 4, 4), blocks_bottleneck=4,
                           blocks_up=(4, 4, 4, 3), norm_type="group")
    return MonaiSegmenter(net, "out_0.conv_out", config.num_classes)


BUILDERS = {"swin_unetr": swin_unetr, "unetr": unetr, "dynunet": dynunet, "mednext": mednext}
