"""MVP around any backbone: the paper's multi-view perspective strategy added to a baseline (Table 11).

Table 11 deploys MVP on Swin UNETR, MedNeXt and SwiFT ("Swin UNETR + MVP 81.6 (79.4)"): each sees the patch
from the three perspectives of Sec. 4.2 and the outputs are aggregated. The paper does not say how; our reading
copies what MVGFormer itself does with its views:

* **one backbone, shared by the views** (MVGFormer shares its transformer), run on the three re-arranged copies
  of the patch (``mvgtutor.model.views``), batched together;
* each view's logits are brought back to the canonical grid and **fused by eq. 8** (``ViewFusion``: sum by
  default);
* the output has ``view_logits``, so ``segmentation_loss`` trains it with eq. 9's per-view CE terms, as MVGFormer.

The alternative reading, **one backbone per view** (three times the parameters, each view free to learn its own
spatial prior, as MVGFormer's per-view position tables do), is ``shared_backbone=False`` (model names
``<baseline>_mvp_unshared``). A convolutional backbone has no positions to tell the views apart: with shared
weights MVP is then an ensemble over axis swaps, trained as one model.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from mvgtutor.errors import ConfigError
from mvgtutor.model.fusion import ViewFusion
from mvgtutor.model.views import stack_from_views, to_view, view_keys


class MultiViewPerspective(nn.Module):
    """``x (B, C, S, S, S)`` -> ``{"logits": (B, K, S, S, S), "view_logits": {view: (B, K, S, S, S)}}``.

    ``backbone`` maps a batch ``(N, C, S, S, S)`` to ``{"logits": (N, K, S, S, S)}`` (every baseline does);
    ``views`` may repeat a view (Table 13); ``fusion`` is a name of ``mvgtutor.model.fusion.FUSIONS``.
    """

    def __init__(self, backbone: nn.Module, views: tuple[str, ...] = ("xy", "yz", "xz"), fusion: str = "sum",
                 shared_backbone: bool = True):
        super().__init__()
        self.views = tuple(views)
        self.view_keys = view_keys(self.views)  # checks the names too
        self.shared_backbone = shared_backbone
        copies = 1 if shared_backbone else len(self.views)
        self.backbones = nn.ModuleList([backbone] + [copy.deepcopy(backbone) for _ in range(copies - 1)])
        self.fusion = ViewFusion(fusion, len(self.views))
        self.num_classes = getattr(backbone, "num_classes", None)

    @torch.no_grad()
    def init_class_prior(self, log_prior: torch.Tensor) -> None:
        """Start every backbone's classifier at ``log_prior (num_classes,)``: each view predicts the class
        frequencies, as MVGFormer's views do (``mvgtutor.train.prior``)."""
        for backbone in self.backbones:
            backbone.init_class_prior(log_prior)

    def forward(self, x: torch.Tensor) -> dict:
        """See the class docstring; the patch must be a cube (a view swaps two of its axes)."""
        if x.ndim != 5 or len(set(x.shape[2:])) != 1:
            raise ConfigError(f"MVP needs cubic patches (B, C, S, S, S), got shape {tuple(x.shape)}: the views swap "
                              f"spatial axes, so all three sides must be equal")
        inputs = [to_view(x, view) for view in self.views]
        if self.shared_backbone:  # one call on all views: (V*B, C, S, S, S)
            logits = self.backbones[0](torch.cat(inputs))["logits"].chunk(len(self.views))
        else:
            logits = [net(v)["logits"] for net, v in zip(self.backbones, inputs)]
        return self.fusion.outputs(stack_from_views(logits, self.views), self.view_keys)  # eq. 8
