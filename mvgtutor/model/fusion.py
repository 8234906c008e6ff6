"""View fusion (eq. 8 and Table 9): per-view logits, already in the canonical grid, -> one prediction.

* ``"sum"`` (the paper): ``y = y_XY + y_YZ + y_XZ``;
* ``"norm_sum"``: each view's logits normalised to log-probabilities first (``log_softmax`` over classes), so no
  view dominates by scale; the sum is then the log of the product of the views' probabilities;
* ``"learned"``: ``y = sum_v w_v y_v`` with ``w = V * softmax(a)``, ``a`` learned and zero at init (= "sum").
"""

from __future__ import annotations

import torch
import torch.nn as nn

from mvgtutor.errors import check_choice

FUSIONS: tuple[str, ...] = ("sum", "norm_sum", "learned")


class ViewFusion(nn.Module):
    """``view_logits (V, B, K, D, H, W) -> (B, K, D, H, W)`` by ``fusion`` (one of ``FUSIONS``)."""

    def __init__(self, fusion: str, num_views: int):
        super().__init__()
        check_choice("fusion", fusion, FUSIONS)
        self.fusion = fusion
        self.view_logits_weight = nn.Parameter(torch.zeros(num_views)) if fusion == "learned" else None

    def weights(self) -> torch.Tensor | None:
        """The learned per-view weights ``(V,)`` (they sum to V), or None."""
        if self.view_logits_weight is None:
            return None
        return self.view_logits_weight.softmax(0) * self.view_logits_weight.numel()

    def forward(self, view_logits: torch.Tensor) -> torch.Tensor:
        """``(V, B, K, D, H, W) -> (B, K, D, H, W)``."""
        if self.fusion == "sum":
            return view_logits.sum(0)  # eq. 8
        if self.fusion == "norm_sum":
            return view_logits.log_softmax(dim=2).sum(0)
        return torch.einsum("v,vb...->b...", self.weights().to(view_logits.dtype), view_logits)

    def outputs(self, view_logits: torch.Tensor, keys: tuple[str, ...]) -> dict:
        """``view_logits (V, B, K, D, H, W)`` -> ``{"logits": fused (B, K, D, H, W), "view_logits": {key: (B, K,
        D, H, W)}}``, the output every multi-view model returns (``keys`` from ``views.view_keys``)."""
        return {"logits": self(view_logits),  # eq. 8
                "view_logits": {key: view_logits[i] for i, key in enumerate(keys)}}
