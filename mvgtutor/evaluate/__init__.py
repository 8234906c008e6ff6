"""Evaluation: exact confusion-matrix metrics and whole-tomogram overlap-tile inference."""

from mvgtutor.evaluate.inference import predict_tomogram, predict_volume, smooth_window, window_starts
from mvgtutor.evaluate.metrics import (
    SegmentationScores,
    confusion_matrix,
    format_table,
    scores_from_matrix,
    segmentation_scores,
)

__all__ = ["SegmentationScores", "confusion_matrix", "format_table", "predict_tomogram", "predict_volume", "scores_from_matrix",
           "segmentation_scores", "smooth_window", "window_starts"]
