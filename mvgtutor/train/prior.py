"""Start the classifier at the class prior ("initialise well", Karpathy's recipe for training neural nets).

Nine voxels in ten are background. A network whose last layer starts near zero predicts every class with
probability 1/16, and Adam moves each bias by about ``lr`` per step: at lr 1e-3 it takes thousands of steps just
to learn how rare the particles are, and a short run ends before it has learnt anything else (the loss curve's
"hockey stick", a plateau near the class prior). Setting the classifier's bias to the log class frequencies of
the training labels makes the untrained model predict the prior, so training starts where that plateau would
have ended. The paper does not say how it initialises; ``TrainConfig.prior_bias=False`` is the ablation.
"""

from __future__ import annotations

import torch
from torch import nn

from mvgtutor.data.patches import label_counts


def log_class_prior(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Log class frequencies of integer ``labels`` (any shape), centred to mean 0: ``(num_classes,)`` float32.

    Classes absent from ``labels`` count as one voxel, so that their log frequency is finite.
    """
    counts = label_counts(labels, num_classes).double()
    log_prior = (counts.clamp_min(1) / counts.sum().clamp_min(1)).log()
    return (log_prior - log_prior.mean()).float().cpu()


def init_class_prior(model: nn.Module, labels: torch.Tensor) -> bool:
    """Set ``model``'s classifier bias to the log class prior of ``labels``; False if the model has no such hook.

    A model takes part by defining ``init_class_prior(log_prior (num_classes,))`` (MVGFormer and the baselines do).
    """
    hook = getattr(model, "init_class_prior", None)
    if hook is None:
        return False
    num_classes = int(getattr(getattr(model, "config", None), "num_classes", 0) or model.num_classes)
    hook(log_class_prior(labels, num_classes))
    return True
