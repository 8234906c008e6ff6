"""Table 9's extra loss terms, added to eq. 9's cross-entropy by ``TrainConfig.loss``.

The paper names them only ("CE+boundary": "we set the Boundary Dice Loss as the boundary-aware loss"; "CE+CL":
"adding contrastive regularization", Sec. 5.3.3) and gives no formula, so both definitions below are **our
readings**, the simplest standard ones:

* ``boundary_dice_loss``: one minus the soft Dice of the fused prediction, per class present, computed only on
  the voxels of a one-voxel band around the true label boundaries (where a class meets another);
* ``token_contrastive_loss``: the supervised contrastive loss (SupCon, Khosla et al. 2020) of the encoder's
  last-layer tokens of every view, each labelled with the most frequent class of the 4^3 cube it covers; tokens
  of the same class (in any view) are positives, the rest negatives. The alternative
  reading, a self-supervised cross-view InfoNCE (same place in two views = positive), needs no labels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def label_boundary(target: torch.Tensor) -> torch.Tensor:
    """Voxels whose 3x3x3 neighbourhood holds more than one label: ``(B, D, H, W) int -> (B, D, H, W) bool``."""
    labels = target.float().unsqueeze(1)  # (B, 1, D, H, W)
    highest = F.max_pool3d(labels, 3, stride=1, padding=1)
    lowest = -F.max_pool3d(-labels, 3, stride=1, padding=1)
    return (highest != lowest).squeeze(1)


def boundary_dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """``1 - mean_c Dice_c`` on the boundary band, ``logits (B, K, D, H, W)``, ``target (B, D, H, W)`` -> scalar.

    Soft Dice ``(2 sum p y + eps) / (sum p + sum y + eps)`` per class present in the truth on the band; zero when
    the batch has no boundary (a patch of one class).
    """
    band = label_boundary(target)  # (B, D, H, W)
    if not band.any():
        return logits.sum() * 0.0
    probs = logits.float().softmax(1).movedim(1, -1)[band]  # (M, K) on the band's voxels
    truth = F.one_hot(target[band].long(), logits.shape[1]).float()  # (M, K)
    present = truth.sum(0) > 0  # (K,)
    dice = (2 * (probs * truth).sum(0) + eps) / (probs.sum(0) + truth.sum(0) + eps)  # (K,)
    return 1.0 - dice[present].mean()


def token_labels(target: torch.Tensor, patch: int, num_classes: int) -> torch.Tensor:
    """The most frequent class of each token's cube: ``(B, D, H, W) -> (B, D/p, H/p, W/p)`` (in the input's own
    axis order: pass ``to_view(target, view)`` for a view's tokens, then ``flatten(1)`` for its sequence order)."""
    one_hot = F.one_hot(target.long(), num_classes).movedim(-1, 1).float()  # (B, K, D, H, W)
    return F.avg_pool3d(one_hot, patch).argmax(1)


def token_contrastive_loss(tokens: torch.Tensor, labels: torch.Tensor, temperature: float = 0.1,
                           max_tokens: int = 4096) -> torch.Tensor:
    """SupCon over tokens: ``tokens (M, C)``, ``labels (M,)`` -> scalar (our reading of Table 9's "CL").

    At most ``max_tokens`` tokens take part (every ``ceil(M / max_tokens)``-th one, no randomness); anchors
    without a positive are skipped; zero when no anchor has one.
    """
    stride = -(-tokens.shape[0] // max_tokens)
    features = F.normalize(tokens[::stride].float(), dim=-1)  # (m, C)
    labels = labels[::stride]
    logits = features @ features.T / temperature  # (m, m)
    self_mask = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    positives = (labels[:, None] == labels[None, :]) & ~self_mask  # (m, m)
    log_prob = logits.log_softmax(-1).masked_fill(~positives, 0.0)
    counts = positives.sum(-1)
    anchors = counts > 0
    if not anchors.any():
        return tokens.sum() * 0.0
    return -(log_prob.sum(-1)[anchors] / counts[anchors]).mean()
