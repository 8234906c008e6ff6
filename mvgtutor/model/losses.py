"""The training objective, eq. 9, with the balance of Sec. 5.3.3: lambda1 * (CE fused + sum of per-view CE) +
lambda2 * recon.

Eq. 9 itself has no coefficients: ``seg(y, y_XY) + seg(y, y_YZ) + seg(y, y_XZ) + seg(y, y_hat) + recon``. Sec. 5.3.3
introduces "two coefficients, lambda1 and lambda2, to balance the two losses", the segmentation loss CE and the
reconstruction loss MSE, so lambda1 multiplies *every* CE term, the fused one included (Fig. 9c's sweep); at
lambda1 = lambda2 = 1 this is eq. 9.

``TrainConfig.loss`` adds Table 9's variants to the CE (``mvgtutor.model.regularizers``, our readings):
``"ce_boundary_dice"`` adds the boundary Dice loss of the fused prediction, ``"ce_contrastive"`` the supervised
contrastive loss of the encoder's tokens (``outputs["tokens"]``, MVGFormer in training), each with weight
``TrainConfig.loss_weight``. ``segmentation_loss`` works for every model of the course: for a model that returns
``"logits"`` only (the baselines) it is plain cross-entropy, without lambda1 (plus the boundary Dice if asked). MinCutPool's
auxiliary loss (``"graph_loss"``) is added with weight 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mvgtutor.config import TrainConfig
from mvgtutor.errors import DataError, check_choice
from mvgtutor.model.regularizers import boundary_dice_loss, token_contrastive_loss, token_labels
from mvgtutor.model.views import to_view

LOSSES: tuple[str, ...] = ("ce", "ce_boundary_dice", "ce_contrastive")  # Table 9: CE, CE+boundary, CE+CL


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
    """Eq. 9 balanced as in Sec. 5.3.3. ``outputs``: the model's dict; ``target (B, D, H, W)`` integer labels ->
    ``(loss, parts)``.

    ``parts`` maps ``"ce_fused"``, ``"ce_<view>"``, ``"boundary_dice"``, ``"contrastive"``, ``"recon"``,
    ``"graph"`` (those present) and ``"total"`` to detached scalars (call ``float()`` to log them; no device sync
    happens here).
    """
    check_choice("loss", train_config.loss, LOSSES)
    logits = outputs["logits"]  # (B, K, D, H, W)
    _check_target(logits, target)
    target = target.long()
    weight = class_weights(logits.shape[1], train_config.background_weight, logits.device)  # (K,) or None
    parts = {"ce_fused": F.cross_entropy(logits, target, weight=weight)}  # seg(y, y_hat)
    segmentation = parts["ce_fused"]
    view_logits = outputs.get("view_logits") or {}
    for view, view_logit in view_logits.items():
        parts[f"ce_{view}"] = F.cross_entropy(view_logit, target, weight=weight)  # seg(y, y_obv)
        segmentation = segmentation + parts[f"ce_{view}"]
    # lambda1 * (every CE term), Sec. 5.3.3; a model without views (a baseline) keeps plain CE
    loss = train_config.lambda_views * segmentation if view_logits else segmentation
    if train_config.loss == "ce_boundary_dice":
        parts["boundary_dice"] = boundary_dice_loss(logits, target)
        loss = loss + train_config.loss_weight * parts["boundary_dice"]
    elif train_config.loss == "ce_contrastive" and "tokens" in outputs:
        tokens = outputs["tokens"]  # (V, B, L, C), each view's tokens in its own order
        patch = round((target[0].numel() / tokens.shape[2]) ** (1 / 3))  # voxels per token side
        labels = torch.stack([token_labels(to_view(target, key.split("_")[0]), patch, logits.shape[1]).flatten(1)
                              for key in view_logits])  # (V, B, L), the same order as the tokens
        parts["contrastive"] = token_contrastive_loss(tokens.reshape(-1, tokens.shape[-1]), labels.reshape(-1))
        loss = loss + train_config.loss_weight * parts["contrastive"]
    if "recon_loss" in outputs:
        parts["recon"] = outputs["recon_loss"]
        loss = loss + train_config.lambda_recon * outputs["recon_loss"]  # lambda2 * recon
    if "graph_loss" in outputs:
        parts["graph"] = outputs["graph_loss"]
        loss = loss + outputs["graph_loss"]
    parts["total"] = loss
    return loss, {name: value.detach() for name, value in parts.items()}
