"""Seam analysis and the VSL reconstruction helper."""

import numpy as np
import torch

from mvgtutor.config import make_profile
from mvgtutor.evaluate.reconstruction import reconstruct_masked_view
from mvgtutor.evaluate.seams import agreement_by_border_distance, border_distance
from mvgtutor.train import build_model


def test_border_distance_by_hand():
    distance = border_distance((8, 4, 4), tile=4)
    assert distance[:, 1, 1].tolist() == [0, 1, 1, 0, 0, 1, 1, 0]
    assert int(distance.max()) == 1 and distance.shape == (8, 4, 4)


def test_errors_on_tile_faces_show_up_at_distance_zero():
    truth = np.ones((64, 64, 64), np.int64)
    prediction = truth.copy()
    prediction[31:33] = 0  # a wrong slab on the face between two tiles
    agreement = agreement_by_border_distance(prediction, truth, tile=32)
    assert agreement.shape == (16,)
    assert agreement[0] < 1 and np.all(agreement[1:] == 1)


def test_masked_reconstruction_leaves_the_model_untouched():
    torch.manual_seed(0)
    model = build_model("mvgformer", make_profile("test").model).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = reconstruct_masked_view(model, torch.randn(1, 1, 32, 32, 32), seed=3)
    assert result.view in ("xy", "yz", "xz")
    assert result.image.shape == result.mask.shape == result.reconstruction.shape == (32, 32, 32)
    assert float(result.mask.float().mean()) == 0.5  # eta = 50% of the tokens, 4^3 voxels each
    assert not model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
