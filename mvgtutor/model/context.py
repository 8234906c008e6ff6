"""The context encoder of Sec. 4.1: three conv blocks bring the patch to the token grid.

Each block is a 3x3x3 convolution, batch normalisation and a ReLU. The paper says only that the output
``f_c`` has C channels on the ``Hp x Wp x Dp`` token grid; we reach that grid with stride-2 convolutions
(log2 of the token patch of them, the last blocks keep stride 1) and widen the channels C/4 -> C/2 -> C.
For the paper's 32^3 patch and 4^3 tokens: 32^3 -> 16^3 -> 8^3 -> 8^3. Table 8's 16^3 token needs four
halvings: then a fourth block (C -> C, stride 2) follows the three (ours; the paper does not say).
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn as nn

from mvgtutor.config import ModelConfig
from mvgtutor.errors import ConfigError

NUM_BLOCKS = 3


def conv_bn_relu(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """3x3x3 conv (no bias: the BN that follows has one) + BatchNorm3d + ReLU; ``stride`` 1 or 2."""
    return nn.Sequential(
        nn.Conv3d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm3d(out_channels),
        nn.ReLU(inplace=True),
    )


MAX_TOKEN_PATCH = 16  # Table 8's largest


def block_strides(token_patch: int) -> list[int]:
    """Strides of the blocks so that their product is ``token_patch`` (1, 2, 4, 8: three blocks; 16: four)."""
    halvings = token_patch.bit_length() - 1
    if token_patch < 1 or 2**halvings != token_patch or token_patch > MAX_TOKEN_PATCH:
        raise ConfigError(f"token_patch={token_patch}: the context encoder needs a power of two up to "
                          f"{MAX_TOKEN_PATCH} (e.g. 4, the paper's)")
    return [2] * halvings + [1] * (NUM_BLOCKS - halvings)


class ContextEncoder(nn.Module):
    """``x (B, 1, D, H, W) -> f_c (B, C, D/p, H/p, W/p)``, the context features of the visual graph."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        strides = block_strides(config.token_patch)
        channels = [config.in_channels, config.embed_dim // 4, config.embed_dim // 2, config.embed_dim]
        channels += [config.embed_dim] * (len(strides) - NUM_BLOCKS)  # a fourth block for 16^3 tokens
        self.blocks = nn.Sequential(*[
            conv_bn_relu(channels[i], channels[i + 1], stride) for i, stride in enumerate(strides)
        ])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 1, D, H, W) -> (B, C, D/p, H/p, W/p)``."""
        return self.blocks(x)


@contextlib.contextmanager
def frozen_running_stats(module: nn.Module):
    """Within the block, batch norms of ``module`` still normalise with the batch's statistics (training mode)
    but leave their running statistics untouched: for an extra pass on altered inputs (VSL's masked patch)."""
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, None if m.num_batches_tracked is None else m.num_batches_tracked.clone()) for m in norms]
    for m in norms:
        m.momentum = 0.0  # running = (1 - 0) * running + 0 * batch
    try:
        yield
    finally:
        for m, (momentum, tracked) in zip(norms, saved):
            m.momentum = momentum
            if tracked is not None:
                m.num_batches_tracked.copy_(tracked)
