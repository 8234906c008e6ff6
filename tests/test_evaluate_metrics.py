"""Confusion matrix, IoU and Dice against hand-computed values and exact integer counts."""

import math

import numpy as np
import pytest
import torch

from mvgtutor.errors import DataError
from mvgtutor.evaluate import metrics
from mvgtutor.evaluate.metrics import confusion_matrix, format_table, scores_from_matrix, segmentation_scores


def test_confusion_matrix_by_hand():
    truth = np.array([0, 0, 1, 1, 2, 2])
    prediction = np.array([0, 1, 1, 1, 2, 0])
    matrix = confusion_matrix(prediction, truth, num_classes=3)
    assert matrix.dtype == torch.int64
    assert matrix.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]


def test_iou_and_dice_by_hand():
    truth = np.array([0, 0, 1, 1, 2, 2])
    prediction = np.array([0, 1, 1, 1, 2, 0])
    scores = segmentation_scores(prediction, truth, num_classes=3)
    # class 1: TP 2, FP 1, FN 0 -> IoU 2/3, Dice 4/5; class 2: TP 1, FP 0, FN 1 -> IoU 1/2, Dice 2/3
    assert scores.iou[1] == pytest.approx(2 / 3) and scores.dice[1] == pytest.approx(4 / 5)
    assert scores.iou[2] == pytest.approx(1 / 2) and scores.dice[2] == pytest.approx(2 / 3)
    # means over the foreground labels only (1 and 2 here; 3..15 do not exist with num_classes=3)
    assert scores.miou == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert scores.mean_dice == pytest.approx((4 / 5 + 2 / 3) / 2)
    # background: TP 1, FP 1, FN 1
    assert scores.iou[0] == pytest.approx(1 / 3)


def test_absent_class_is_nan_and_left_out_of_the_means():
    truth = np.array([0, 1, 1, 0])
    scores = segmentation_scores(truth, truth, num_classes=16)
    assert scores.iou[1] == 1.0 and scores.dice[1] == 1.0
    assert all(math.isnan(scores.iou[c]) for c in range(2, 16))
    assert scores.miou == 1.0 and scores.mean_dice == 1.0


def test_a_class_predicted_but_absent_scores_zero():
    truth = np.array([0, 0, 1, 1])
    prediction = np.array([5, 0, 1, 1])
    scores = segmentation_scores(prediction, truth, num_classes=16)
    assert scores.iou[5] == 0.0 and scores.dice[5] == 0.0
    assert scores.miou == pytest.approx(0.5)  # classes 1 (IoU 1) and 5 (IoU 0)


def test_counts_are_exact_beyond_float32_precision(monkeypatch):
    monkeypatch.setattr(metrics, "_CHUNK_VOXELS", 1 << 22)  # several chunks
    voxels = (1 << 24) + 1  # float32 cannot hold this count
    truth = torch.zeros(voxels, dtype=torch.uint8)
    prediction = torch.zeros(voxels, dtype=torch.uint8)
    prediction[-1] = 1
    matrix = confusion_matrix(prediction, truth)
    assert int(matrix[0, 0]) == voxels - 1 and int(matrix[0, 1]) == 1
    assert int(matrix.sum()) == voxels


def test_chunked_counts_equal_numpy(monkeypatch):
    monkeypatch.setattr(metrics, "_CHUNK_VOXELS", 1000)
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 16, (17, 19, 23))
    prediction = rng.integers(0, 16, (17, 19, 23))
    expected = np.zeros((16, 16), np.int64)
    np.add.at(expected, (truth.ravel(), prediction.ravel()), 1)
    assert np.array_equal(confusion_matrix(prediction, truth).numpy(), expected)


def test_scores_from_matrix_match_scores_from_volumes():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 16, 5000)
    prediction = np.where(rng.random(5000) < 0.7, truth, rng.integers(0, 16, 5000))
    direct = segmentation_scores(prediction, truth)
    from_matrix = scores_from_matrix(confusion_matrix(prediction, truth).numpy())
    assert np.allclose(direct.dice, from_matrix.dice) and direct.miou == from_matrix.miou


def test_json_and_table():
    truth = np.array([0, 1, 1, 14])
    scores = segmentation_scores(truth, truth)
    report = scores.to_json()
    assert report["classes"][2]["iou"] is None and report["classes"][14]["dice"] == 1.0
    assert report["miou"] == 1.0 and len(report["confusion_matrix"]) == 16
    table = format_table(scores)
    assert "vesicle" in table and "mIoU" in table


@pytest.mark.parametrize("prediction, truth, message", [
    (np.zeros(4, np.float32), np.zeros(4, np.int64), "dtype"),
    (np.zeros(4, np.int64), np.zeros(5, np.int64), "same shape"),
    (np.full(4, 16), np.zeros(4, np.int64), "outside"),
    (np.zeros(4, np.int64), np.full(4, -1), "outside"),
])
def test_bad_input_raises_data_error(prediction, truth, message):
    with pytest.raises(DataError, match=message):
        confusion_matrix(prediction, truth)
