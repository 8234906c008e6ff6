"""Moved to ``mvgtutor.runtime.precision`` (one home for training and inference); this name still imports."""

from mvgtutor.runtime.precision import PRECISIONS, autocast, grad_scaler, native_bf16, resolve_precision

__all__ = ["PRECISIONS", "autocast", "grad_scaler", "native_bf16", "resolve_precision"]
