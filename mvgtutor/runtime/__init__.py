"""Where and how tensors are computed, for training and inference alike: device, precision, memory layout.

Below both ``mvgtutor.train`` and ``mvgtutor.evaluate`` (each imports from here, neither from the other for
these), and free of the course's configuration:

* ``device``: ``choose_device`` (the hardware decides; ``MVGTUTOR_DEVICE`` overrides), ``describe_device``;
* ``precision``: bf16 on GPUs with native bf16, fp16 + ``GradScaler`` on older ones (Colab's T4), fp32 on a CPU;
* ``layout``: channels-first or channels-last 3D feature maps.
"""

from mvgtutor.runtime.device import DEVICE_ENV, choose_device, cuda_available, describe_device
from mvgtutor.runtime.layout import MEMORY_FORMATS, apply_memory_format, memory_format_for, resolve_memory_format
from mvgtutor.runtime.precision import PRECISIONS, autocast, grad_scaler, native_bf16, resolve_precision

__all__ = ["DEVICE_ENV", "MEMORY_FORMATS", "PRECISIONS", "apply_memory_format", "autocast", "choose_device",
           "cuda_available", "describe_device", "grad_scaler", "memory_format_for", "native_bf16",
           "resolve_memory_format", "resolve_precision"]
