"""The decoders of Sec. 4.3: per-view token features -> per-view voxel logits (in that view's axis order).

Every decoder takes the list of the encoder's layer outputs for one view stack, ``hidden[n] (N, L, C)``
(N = views x batch), and returns logits ``(N, num_classes, S, S, S)``.

* ``MLPDecoder``: a per-token MLP that predicts the ``p^3`` voxels under each token (the paper's "MLP").
* ``MFDecoder`` (Fig. 2c): layers Ln/N, 2Ln/N, ..., Ln, each through 2 x (conv3 + BN + ReLU) and an
  up-sampling to the voxel grid, concatenated, then a 1x1x1 conv.
* ``P3DADecoder`` (Fig. 2d): the last layer re-shaped to the voxel grid (learned unpatchify by default, or
  trilinear up-sampling), four parallel atrous branches (a 1x1x1 conv, then 3x3x3 with dilations 6, 12, 18),
  each conv + BN + ReLU, concatenated, and a two-layer 1x1x1 head.
* ``"swin_unetr"``: Swin UNETR's decoder on these tokens, the "Base" of Fig. 9(a)
  (``mvgtutor.baselines.swin_decoders.SwinUNETRDecoder``; it also reads the patch, ``reads_input``).

At 32^3 a dilation-18 kernel's outer taps mostly read zero padding; ``valid_tap_conv3d`` computes only the
overlap of each tap with the volume (same result as the dense convolution, fewer multiply-adds).
"""

from __future__ import annotations

import contextlib

import itertools

import torch
import torch.nn as nn
import torch.nn.functional as F

from mvgtutor.config import ModelConfig
from mvgtutor.errors import ConfigError, check_choice
from mvgtutor.model.embed import token_grid, unpatchify

DECODERS: tuple[str, ...] = ("p3da", "mf", "mlp", "swin_unetr")
P3DA_UPSAMPLES: tuple[str, ...] = ("unpatchify", "trilinear")
P3DA_CONVS: tuple[str, ...] = ("valid_taps", "dense")


def tokens_to_grid(tokens: torch.Tensor, grid: int) -> torch.Tensor:
    """``(N, L, C) -> (N, C, g, g, g)`` (tokens are row-major over the view's token grid)."""
    n, _, c = tokens.shape
    return tokens.transpose(1, 2).reshape(n, c, grid, grid, grid)


def _tap_ranges(offset: int, size: int) -> tuple[slice, slice] | None:
    """Output and input slices along one axis where a tap shifted by ``offset`` reads real voxels."""
    start, stop = max(0, -offset), min(size, size - offset)
    if start >= stop:
        return None
    return slice(start, stop), slice(start + offset, stop + offset)


def valid_taps(shape: tuple[int, int, int], dilation: int) -> list[tuple[tuple[int, int, int], tuple, tuple]]:
    """The taps of a dilated 3x3x3 kernel that read real voxels of a ``shape`` volume (padding = dilation).

    Each entry: ``(kernel index (a, b, c), output slices, input slices)``, slices over the three spatial dims.
    """
    taps = []
    for kernel_index in itertools.product(range(3), repeat=3):
        ranges = [_tap_ranges((t - 1) * dilation, size) for t, size in zip(kernel_index, shape)]
        if all(r is not None for r in ranges):
            out_slices, in_slices = zip(*ranges)
            taps.append((kernel_index, out_slices, in_slices))
    return taps


class _ValidTapConv3d(torch.autograd.Function):
    """Forward and backward of ``valid_tap_conv3d`` on channels-last tensors, one matrix product per tap."""

    @staticmethod
    def forward(ctx, x_last: torch.Tensor, weight: torch.Tensor, dilation: int) -> torch.Tensor:
        # x_last (N, D, H, W, Cin) contiguous, weight (Cout, Cin, 3, 3, 3) -> (N, D, H, W, Cout)
        taps = valid_taps(tuple(x_last.shape[1:4]), dilation)
        out = x_last.new_zeros(*x_last.shape[:4], weight.shape[0])
        for (a, b, c), out_slices, in_slices in taps:
            region = x_last[(slice(None), *in_slices)]  # (N, d, h, w, Cin), a strided view
            product = region.reshape(-1, region.shape[-1]) @ weight[:, :, a, b, c].T  # (N*d*h*w, Cout)
            out[(slice(None), *out_slices)] += product.view(*region.shape[:4], -1)
        ctx.save_for_backward(x_last, weight)
        ctx.taps = taps
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        x_last, weight = ctx.saved_tensors
        grad_out = grad_out.contiguous()
        grad_x = torch.zeros_like(x_last) if ctx.needs_input_grad[0] else None
        grad_weight = torch.zeros_like(weight) if ctx.needs_input_grad[1] else None
        for (a, b, c), out_slices, in_slices in ctx.taps:
            grad_region = grad_out[(slice(None), *out_slices)]  # (N, d, h, w, Cout)
            grad_rows = grad_region.reshape(-1, grad_region.shape[-1])  # (N*d*h*w, Cout)
            if grad_x is not None:
                product = grad_rows @ weight[:, :, a, b, c]  # (N*d*h*w, Cin)
                grad_x[(slice(None), *in_slices)] += product.view(*grad_region.shape[:4], -1)
            if grad_weight is not None:
                x_rows = x_last[(slice(None), *in_slices)].reshape(-1, x_last.shape[-1])  # (N*d*h*w, Cin)
                grad_weight[:, :, a, b, c] = grad_rows.T @ x_rows  # (Cout, Cin)
        return grad_x, grad_weight, None


def valid_tap_conv3d(x: torch.Tensor, weight: torch.Tensor, dilation: int) -> torch.Tensor:
    """Zero-padded dilated 3x3x3 convolution that skips taps reading only padding.

    ``x (N, Cin, D, H, W)``, ``weight (Cout, Cin, 3, 3, 3)`` -> ``(N, Cout, D, H, W)``; equal to
    ``F.conv3d(x, weight, padding=dilation, dilation=dilation)``. Each tap is one matrix product over the region
    where it overlaps the volume (channels-last), in the forward and in the backward pass.
    """
    x_last = x.permute(0, 2, 3, 4, 1).contiguous()  # (N, D, H, W, Cin)
    out_last = _ValidTapConv3d.apply(x_last, weight.to(x.dtype), dilation)  # (N, D, H, W, Cout)
    return out_last.permute(0, 4, 1, 2, 3).contiguous()  # (N, Cout, D, H, W), like the other branches


class CpuChannelsLastConv3d(nn.Conv3d):
    """``nn.Conv3d`` that, on the CPU, runs channels-last inside this layer only (input and weight converted, the
    output converted back to channels-first): the same convolution, with oneDNN's faster kernels.

    P3DA's convolutions work on the full 32^3 grid with few channels, where oneDNN's channels-first kernels are
    slow. Forward + backward at 32^3, one thread, N=6, 8 channels: a dilated 3x3x3 conv 301 -> 145 ms (d=6) and
    354 -> 122 ms (d=18); 64 channels 3.2 -> 2.0 s and 3.3 -> 1.5 s. The rest of the model keeps its layout
    (``mvgtutor.runtime.layout``: channels-last everywhere made BatchNorm's backward slower on the CPU). On a GPU,
    or for an input that is already channels-last, this is ``nn.Conv3d``.
    """

    enabled = True  # False: a plain nn.Conv3d everywhere (``as_on_gpu``)

    @classmethod
    @contextlib.contextmanager
    def as_on_gpu(cls):
        """Within the block, run every such layer as a GPU would (plain ``nn.Conv3d``): the CPU's count of a GPU
        step's saved activations (``mvgtutor.train.estimate``) must not include the channels-last copies."""
        previous, cls.enabled = cls.enabled, False
        try:
            yield
        finally:
            cls.enabled = previous

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, Cin, D, H, W) -> (N, Cout, D', H', W')``."""
        last = torch.channels_last_3d
        if not self.enabled or x.device.type != "cpu" or x.is_contiguous(memory_format=last):
            return super().forward(x)
        weight = self.weight.contiguous(memory_format=last)
        return self._conv_forward(x.contiguous(memory_format=last), weight, self.bias).contiguous()


class DilatedConv3d(CpuChannelsLastConv3d):
    """A bias-free 3x3x3 conv with ``padding = dilation``; ``valid_taps=True`` uses ``valid_tap_conv3d``."""

    def __init__(self, in_channels: int, out_channels: int, dilation: int, valid_taps: bool):
        super().__init__(in_channels, out_channels, 3, padding=dilation, dilation=dilation, bias=False)
        self.valid_taps = valid_taps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, Cin, D, H, W) -> (N, Cout, D, H, W)``."""
        if self.valid_taps:
            return valid_tap_conv3d(x, self.weight, self.dilation[0])
        return super().forward(x)


def bn_relu(conv: nn.Module, channels: int) -> nn.Sequential:
    """``conv`` followed by BatchNorm3d and ReLU."""
    return nn.Sequential(conv, nn.BatchNorm3d(channels), nn.ReLU(inplace=True))


class MLPDecoder(nn.Module):
    """Per-token MLP predicting the ``p^3`` voxels under each token: last layer ``(N, L, C) -> (N, K, S, S, S)``."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.patch, self.grid = config.token_patch, token_grid(config)
        self.norm = nn.LayerNorm(config.embed_dim)
        self.mlp = nn.Sequential(nn.Linear(config.embed_dim, config.embed_dim), nn.GELU(),
                                 nn.Linear(config.embed_dim, config.num_classes * self.patch**3))

    @property
    def classifier(self) -> nn.Module:
        """The last layer, the one that outputs class logits."""
        return self.mlp[-1]

    def forward(self, hidden: list[torch.Tensor]) -> torch.Tensor:
        """``hidden[-1] (N, L, C) -> (N, num_classes, S, S, S)``."""
        voxels = self.mlp(self.norm(hidden[-1]))  # (N, L, num_classes * p^3)
        return unpatchify(voxels, self.patch, self.grid)


def mf_layer_indices(depth: int, levels: int) -> list[int]:
    """0-based indices of layers Ln/N, 2Ln/N, ..., Ln that MF reads (Sec. 4.3.1)."""
    if not 1 <= levels <= depth:
        raise ConfigError(f"mf_levels={levels} must be between 1 and depth={depth}")
    return [depth * i // levels - 1 for i in range(1, levels + 1)]


def mf_width(config: ModelConfig) -> int:
    """Channels of each MF level's conv block: ``mf_channels``, or ``decoder_channels // 2`` when it is 0.

    The paper gives no width, but writes that "the lightweight MF design provides stable feature refinement
    with fewer parameters" than P3DA (Sec. 5.2.2, on the zero-shot results of Table 6). Its first 3x3x3
    convolution reads C channels at every level, so at the full C' per level (4 levels, C = 256, C' = 64) MF would
    hold 2.2M parameters against P3DA's 1.4M; half of C' per level (ours) gives 1.0M.
    ``mf_channels=decoder_channels`` is the other reading.
    """
    return config.mf_channels or max(1, config.decoder_channels // 2)


def mf_level(in_channels: int, width: int, scale: int = 1) -> nn.Sequential:
    """One MF level: 2 x (conv3 + BN + ReLU) at the level's grid, then trilinear up-sampling by ``scale`` (none
    at 1), ``(N, in_channels, g, g, g) -> (N, width, g * scale, ...)``."""
    layers = [bn_relu(nn.Conv3d(in_channels, width, 3, padding=1, bias=False), width),
              bn_relu(nn.Conv3d(width, width, 3, padding=1, bias=False), width)]
    if scale != 1:
        layers.append(nn.Upsample(scale_factor=scale, mode="trilinear", align_corners=False))
    return nn.Sequential(*layers)


class MFDecoder(nn.Module):
    """Multi-level feature fusion (Fig. 2c): ``hidden`` -> ``(N, num_classes, S, S, S)``."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.grid = token_grid(config)
        self.layers = mf_layer_indices(config.depth, config.mf_levels)
        dim, width = config.embed_dim, mf_width(config)
        self.norms = nn.ModuleList([nn.LayerNorm(dim) for _ in self.layers])
        self.blocks = nn.ModuleList([mf_level(dim, width, config.token_patch) for _ in self.layers])
        self.classify = nn.Conv3d(width * len(self.layers), config.num_classes, 1)

    @property
    def classifier(self) -> nn.Module:
        """The last layer, the one that outputs class logits."""
        return self.classify

    def forward(self, hidden: list[torch.Tensor]) -> torch.Tensor:
        """``hidden[n] (N, L, C)`` for every layer -> ``(N, num_classes, S, S, S)``."""
        levels = [block(tokens_to_grid(norm(hidden[i]), self.grid))  # (N, C', S, S, S)
                  for i, norm, block in zip(self.layers, self.norms, self.blocks)]
        return self.classify(torch.cat(levels, dim=1))  # (N, N_levels * C', S, S, S) -> (N, K, S, S, S)


def atrous_branches(width: int, dilations: tuple[int, ...], valid_taps: bool) -> nn.ModuleList:
    """P3DA's parallel branches on ``(N, width, S, S, S)``: a 1x1x1 conv, then a 3x3x3 conv per further
    dilation (the paper's 6, 12, 18), each + BN + ReLU and keeping the shape."""
    return nn.ModuleList([
        bn_relu(CpuChannelsLastConv3d(width, width, 1, bias=False) if i == 0 else
                DilatedConv3d(width, width, dilation, valid_taps), width)
        for i, dilation in enumerate(dilations)
    ])


def atrous_head(width: int, num_branches: int, num_classes: int) -> nn.Sequential:
    """P3DA's two-layer 1x1x1 head: the concatenated branches ``(N, num_branches * width, ...)`` -> logits
    ``(N, num_classes, ...)``; its last layer is the classifier."""
    return nn.Sequential(
        bn_relu(CpuChannelsLastConv3d(width * num_branches, width, 1, bias=False), width),
        CpuChannelsLastConv3d(width, num_classes, 1),
    )


class P3DADecoder(nn.Module):
    """Parallel 3D atrous convolutions (Fig. 2d): ``hidden[-1]`` -> ``(N, num_classes, S, S, S)``."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        check_choice("p3da_upsample", config.p3da_upsample, P3DA_UPSAMPLES)
        check_choice("p3da_conv", config.p3da_conv, P3DA_CONVS)
        self.patch, self.grid, self.upsample = config.token_patch, token_grid(config), config.p3da_upsample
        dim, width = config.embed_dim, config.decoder_channels
        self.norm = nn.LayerNorm(dim)
        if self.upsample == "unpatchify":
            self.expand = nn.Linear(dim, width * self.patch**3)  # each token paints its p^3 voxels
        else:
            self.expand = nn.Conv3d(dim, width, 1)  # project, then trilinear up-sampling
        self.branches = atrous_branches(width, config.p3da_dilations, config.p3da_conv == "valid_taps")
        self.head = atrous_head(width, len(self.branches), config.num_classes)

    @property
    def classifier(self) -> nn.Module:
        """The last layer, the one that outputs class logits."""
        return self.head[-1]

    def to_voxel_grid(self, tokens: torch.Tensor) -> torch.Tensor:
        """"Reshape F_Ln to the original size": ``(N, L, C) -> (N, C', S, S, S)``."""
        tokens = self.norm(tokens)
        if self.upsample == "unpatchify":
            return unpatchify(self.expand(tokens), self.patch, self.grid)  # (N, L, C' p^3) -> (N, C', S, S, S)
        coarse = self.expand(tokens_to_grid(tokens, self.grid))  # (N, C', g, g, g)
        return F.interpolate(coarse, scale_factor=self.patch, mode="trilinear", align_corners=False)

    def forward(self, hidden: list[torch.Tensor]) -> torch.Tensor:
        """``hidden[-1] (N, L, C) -> (N, num_classes, S, S, S)``."""
        features = self.to_voxel_grid(hidden[-1])  # (N, C', S, S, S)
        branches = [branch(features) for branch in self.branches]  # each (N, C', S, S, S)
        return self.head(torch.cat(branches, dim=1))  # (N, 4C', S, S, S) -> (N, K, S, S, S)


def make_decoder(config: ModelConfig) -> nn.Module:
    """The decoder named by ``config.decoder`` (one of ``DECODERS``)."""
    check_choice("decoder", config.decoder, DECODERS)
    if config.decoder == "swin_unetr":  # Fig. 9(a)'s "Base": Swin UNETR's decoder on our tokens (needs MONAI)
        from mvgtutor.baselines.swin_decoders import SwinUNETRDecoder

        return SwinUNETRDecoder(config)
    return {"p3da": P3DADecoder, "mf": MFDecoder, "mlp": MLPDecoder}[config.decoder](config)
