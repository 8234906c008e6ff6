"""Fig. 9(a): our decoders on another transformer encoder, Swin UNETR's.

The paper: "We replace the decoders of Swin UNETR, MedNeXt and SwiFT with our proposed decoder designs ...
As our proposed MF is similar to their existing decoder design, which are all based on multi-layer feature
fusion, the improvement brought about is not significant ... Our proposed P3DA significantly improves all
methods' performance" (Sec. 5.3, Fig. 9(a); the values are only in the figure).

Swin UNETR's encoder (MONAI's ``SwinTransformer``, built exactly as ``monai_nets.swin_unetr`` builds it) is
hierarchical: at a 32^3 patch its five stages are F channels on 16^3, 2F on 8^3, 4F on 4^3, 8F on 2^3 and 16F
on 1^3. Swin UNETR's own decoder reads all five (and the input). MVGFormer's decoders read one token grid, so
the paper leaves open which maps they read here. **Our reading**: both of our decoders read all five stages, so
that Swin UNETR's decoder, MF and P3DA see the same information and differ only in how they mix it:

* **MF** (Fig. 2c): each stage is one level, 2 x (conv3 + BN + ReLU) at its own grid, up-sampled to the voxel
  grid; the levels are concatenated and a 1x1x1 conv classifies.
* **P3DA** (Fig. 2d): "reshape to the original size" becomes a feature pyramid: each stage projected to C' by a
  1x1x1 conv, up-sampled trilinearly to the voxel grid, and summed; then P3DA's four atrous branches and head.

**The alternative** is the literal one: P3DA on the encoder's last output alone (``stages=(4,)``, model name
``swin_unetr_p3da_deepest``). At a 32^3 patch that map is one voxel (3^3 at the 96^3 patch Swin UNETR was
published with), so the head sees one feature vector per patch: the atrous branches have nothing to dilate over.

The figure's "Base" for MVGFormer is the other direction, "our transformer encoder with the decoder proposed in
Swin UNETR" (``SwinUNETRDecoder``, ``ModelConfig(decoder="swin_unetr")``). That decoder reads five maps at 1/2 ...
1/32 of the patch and the patch itself; our encoder has one token grid (1/p of the patch) per layer. **Our
reading** builds the pyramid as UNETR (Hatamizadeh et al. 2022) does for a plain ViT: maps 0-2 come from layers
Ln/4, Ln/2 and 3Ln/4, maps 3-4 from the last layer, each layer-normed, projected by a 1x1x1 conv to the width
Swin UNETR has at that scale, and resized to its grid (trilinear up, average-pooled down). UNETR up-samples with
transposed convolutions instead; the paper does not say which it used.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mvgtutor.config import ModelConfig
from mvgtutor.errors import ConfigError, check_choice
from mvgtutor.model.decoders import atrous_branches, atrous_head, mf_layer_indices, mf_level, mf_width, \
    tokens_to_grid
from mvgtutor.model.embed import token_grid

OUR_DECODERS: tuple[str, ...] = ("p3da", "mf")
SWIN_STAGES = 5  # MONAI's SwinTransformer returns the patch embedding and four stages


class PyramidP3DA(nn.Module):
    """P3DA on a feature pyramid: ``[(N, C_i, g_i, g_i, g_i)]`` -> ``(N, num_classes, S, S, S)``."""

    def __init__(self, in_channels: list[int], width: int, dilations: tuple[int, ...], num_classes: int,
                 valid_taps: bool = True):
        super().__init__()
        self.project = nn.ModuleList([nn.Conv3d(c, width, 1, bias=False) for c in in_channels])
        self.norm = nn.Sequential(nn.BatchNorm3d(width), nn.ReLU(inplace=True))
        self.branches = atrous_branches(width, dilations, valid_taps)
        self.head = atrous_head(width, len(self.branches), num_classes)

    @property
    def classifier(self) -> nn.Module:
        """The last layer, the one that outputs class logits."""
        return self.head[-1]

    def forward(self, stages: list[torch.Tensor], size: tuple[int, int, int]) -> torch.Tensor:
        """``stages[i] (N, C_i, g_i, g_i, g_i)`` and the voxel grid ``size`` -> ``(N, num_classes, *size)``."""
        features = sum(F.interpolate(project(x), size=size, mode="trilinear", align_corners=False)
                       for project, x in zip(self.project, stages, strict=True))  # (N, C', *size)
        features = self.norm(features)
        return self.head(torch.cat([branch(features) for branch in self.branches], dim=1))


class PyramidMF(nn.Module):
    """MF on a feature pyramid: ``[(N, C_i, g_i, g_i, g_i)]`` -> ``(N, num_classes, S, S, S)``."""

    def __init__(self, in_channels: list[int], width: int, num_classes: int):
        super().__init__()
        self.levels = nn.ModuleList([mf_level(c, width) for c in in_channels])  # up-sampled in forward
        self.classify = nn.Conv3d(width * len(in_channels), num_classes, 1)

    @property
    def classifier(self) -> nn.Module:
        """The last layer, the one that outputs class logits."""
        return self.classify

    def forward(self, stages: list[torch.Tensor], size: tuple[int, int, int]) -> torch.Tensor:
        """``stages[i] (N, C_i, g_i, g_i, g_i)`` and the voxel grid ``size`` -> ``(N, num_classes, *size)``."""
        levels = [F.interpolate(level(x), size=size, mode="trilinear", align_corners=False)
                  for level, x in zip(self.levels, stages, strict=True)]  # each (N, C', *size)
        return self.classify(torch.cat(levels, dim=1))


class SwinEncoderOurDecoder(nn.Module):
    """Swin UNETR's encoder with MF or P3DA as its decoder: ``x (B, C, S, S, S)`` -> ``{"logits": (B, K, S, S,
    S)}``. ``stages`` picks the encoder maps the decoder reads (0 = the patch embedding ... 4 = the deepest)."""

    def __init__(self, config: ModelConfig, decoder: str = "p3da", stages: tuple[int, ...] = (0, 1, 2, 3, 4)):
        super().__init__()
        from mvgtutor.baselines.monai_nets import swin_unetr

        check_choice("decoder", decoder, OUR_DECODERS)
        if not stages or any(not 0 <= i < SWIN_STAGES for i in stages):
            raise ConfigError(f"stages={stages} must be a non-empty tuple of Swin UNETR stage indices 0..4")
        self.stages, self.num_classes = tuple(stages), config.num_classes
        self.encoder = swin_unetr(config).net.swinViT  # the whole encoder, as Swin UNETR has it
        channels = [self.encoder.embed_dim * 2**i for i in self.stages]
        if decoder == "p3da":
            self.decoder = PyramidP3DA(channels, config.decoder_channels, config.p3da_dilations, config.num_classes,
                                       valid_taps=config.p3da_conv == "valid_taps")
        else:
            self.decoder = PyramidMF(channels, mf_width(config), config.num_classes)

    @torch.no_grad()
    def init_class_prior(self, log_prior: torch.Tensor) -> None:
        """Start the classifier's bias at ``log_prior (num_classes,)`` (``mvgtutor.train.prior``)."""
        self.decoder.classifier.bias.copy_(log_prior)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """See the class docstring."""
        if x.ndim != 5 or any(s % 32 for s in x.shape[2:]):
            raise ConfigError(f"Swin UNETR's encoder needs (B, C, D, H, W) with sides divisible by 32, got shape "
                              f"{tuple(x.shape)}: use a patch size that is a multiple of 32")
        maps = self.encoder(x, normalize=True)  # 5 x (B, F 2^i, S / 2^(i+1), ...)
        return {"logits": self.decoder([maps[i] for i in self.stages], tuple(x.shape[2:]))}


def resize(x: torch.Tensor, side: int) -> torch.Tensor:
    """``(N, C, g, g, g) -> (N, C, side, side, side)``: trilinear up-sampling, average pooling down."""
    if side >= x.shape[-1]:
        return F.interpolate(x, size=(side,) * 3, mode="trilinear", align_corners=False)
    return F.adaptive_avg_pool3d(x, side)


class SwinUNETRDecoder(nn.Module):
    """Swin UNETR's decoder on our encoder's tokens (Fig. 9(a)'s "Base"): ``hidden[n] (N, L, C)`` for every layer
    and the patch ``inputs (N, C_in, S, S, S)`` (in each view's axis order) -> ``(N, num_classes, S, S, S)``."""

    reads_input = True  # MVGFormer passes the view-arranged patch too (Swin UNETR's first skip reads it)

    def __init__(self, config: ModelConfig):
        super().__init__()
        from mvgtutor.baselines.monai_nets import swin_unetr

        self.net = swin_unetr(config).net  # MONAI's SwinUNETR, sized as the baseline; its encoder is removed
        del self.net.swinViT
        width, self.size, self.grid = config.embed_dim, config.input_size, token_grid(config)
        quarters = mf_layer_indices(config.depth, min(4, config.depth))  # UNETR's z3, z6, z9, z12 of 12 layers
        self.layers = [quarters[min(i, len(quarters) - 1)] for i in range(3)] + [config.depth - 1] * 2
        feature = self.net.encoder2.layer.conv1.conv.in_channels  # Swin UNETR's feature_size F
        self.norms = nn.ModuleList([nn.LayerNorm(width) for _ in self.layers])
        self.project = nn.ModuleList([nn.Conv3d(width, feature * 2**i, 1) for i in range(len(self.layers))])

    @property
    def classifier(self) -> nn.Module:
        """The last layer, the one that outputs class logits."""
        return self.net.out.conv.conv

    def pyramid(self, hidden: list[torch.Tensor]) -> list[torch.Tensor]:
        """The five maps Swin UNETR's encoder would give: map i ``(N, F 2^i, S / 2^(i+1), ...)``."""
        return [resize(project(tokens_to_grid(norm(hidden[layer]), self.grid)), self.size // 2 ** (i + 1))
                for i, (layer, norm, project) in enumerate(zip(self.layers, self.norms, self.project))]

    def forward(self, hidden: list[torch.Tensor], inputs: torch.Tensor) -> torch.Tensor:
        """See the class docstring; the order of the blocks is Swin UNETR's (MONAI's ``SwinUNETR.forward``)."""
        maps, net = self.pyramid(hidden), self.net
        enc0, enc1, enc2, enc3 = net.encoder1(inputs), net.encoder2(maps[0]), net.encoder3(maps[1]), \
            net.encoder4(maps[2])
        dec3 = net.decoder5(net.encoder10(maps[4]), maps[3])
        dec0 = net.decoder2(net.decoder3(net.decoder4(dec3, enc3), enc2), enc1)
        return net.out(net.decoder1(dec0, enc0))


__all__ = ["OUR_DECODERS", "PyramidMF", "PyramidP3DA", "SwinEncoderOurDecoder", "SwinUNETRDecoder"]
