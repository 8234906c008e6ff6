"""Training: the loop, mixed precision, checkpoints and resume, DDP, and the run cache."""

from mvgtutor.train.engine import PatchTensors, as_patch_tensors, train_model
from mvgtutor.train.models import MODEL_NAMES, build_model

__all__ = ["MODEL_NAMES", "PatchTensors", "as_patch_tensors", "build_model", "train_model"]
