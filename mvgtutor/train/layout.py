"""Moved to ``mvgtutor.runtime.layout`` (one home for training and inference); this name still imports."""

from mvgtutor.runtime.layout import MEMORY_FORMATS, apply_memory_format, memory_format_for, resolve_memory_format

__all__ = ["MEMORY_FORMATS", "apply_memory_format", "memory_format_for", "resolve_memory_format"]
