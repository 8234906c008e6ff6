"""The training objective, eq. 9: CE on the fused logits + lambda1 * sum of per-view CE + lambda2 * recon.

``segmentation_loss`` works for every model of the course: for a model that returns ``"logits"`` only (the
baselines) it is plain cross-entropy. MinCutPool's auxiliary loss (``"graph_loss"``) is added with weight 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mvgtutor.config import TrainConfig
from mvgtutor.errors import DataError


def _check_target(logits: torch.Tensor, target: torch.Tensor) -> None:
    if target.shape != (logits.shape[0], *logits.shape[2:]):
        raise DataError(f"target has shape {tuple(target.shape)} but the logits {tuple(logits.shape)} need "
                        f"{(logits.shape[0], *logits.shape[2:])}: pass the class mask (B, D, H, W) of the same patches")
    if target.dtype.is_floating_point:
        raise DataError(f"target has dtype {target.dtype}: pass integer class labels (torch.long), not one-hot "
                        f"or probabilities")


def class_weights(num_classes: int, background_weight: float, device) -> torch.Tensor | None:
    """CE class weights ``(num_classes,)``: ``background_weight`` for label 0, 1 for the others (None if all 1).

    The paper uses plain CE (Table 9). A short training run on a small budget (the cpu profile) spends its
    first epochs predicting background everywhere (nine voxels in ten are background); weighting the background
    down makes the particle classes count from the first step.
    """
    if background_weight == 1.0:
        return None
    weight = torch.ones(num_classes, device=device)
    weight[0] = background_weight
    return weight


def segmentation_loss(outputs: dict, target: torch.Tensor,
                      train_config: TrainConfig) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Eq. 9. ``outputs``: the model's dict; ``target (B, D, H, W)`` integer labels -> ``(loss, parts)``.

    ``parts`` maps ``"ce_fused"``, ``"ce_<view>"``, ``"recon"``, ``"graph"`` (those present) and ``"total"`` to
    detached scalars (call ``float()`` to log them; no device sync happens here).
    """
    logits = outputs["logits"]  # (B, K, D, H, W)
    _check_target(logits, target)
    target = target.long()
    weight = class_weights(logits.shape[1], train_config.background_weight, logits.device)  # (K,) or None
    parts = {"ce_fused": F.cross_entropy(logits, target, weight=weight)}  # seg(y, y_hat)
    loss = parts["ce_fused"]
    view_logits = outputs.get("view_logits") or {}
    if view_logits:
        view_terms = {f"ce_{view}": F.cross_entropy(view_logit, target, weight=weight)
                      for view, view_logit in view_logits.items()}
        parts.update(view_terms)
        loss = loss + train_config.lambda_views * sum(view_terms.values())  # lambda1 * sum_obv seg(y, y_obv)
    if "recon_loss" in outputs:
        parts["recon"] = outputs["recon_loss"]
        loss = loss + train_config.lambda_recon * outputs["recon_loss"]  # lambda2 * recon
    if "graph_loss" in outputs:
        parts["graph"] = outputs["graph_loss"]
        loss = loss + outputs["graph_loss"]
    parts["total"] = loss
    return loss, {name: value.detach() for name, value in parts.items()}
