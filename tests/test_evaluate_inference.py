"""Overlap-tile inference: MONAI's windows and Gaussian, equal results, exact stitching, errors."""

import numpy as np
import pytest
import torch
from monai.data.utils import dense_patch_slices
from monai.inferers import sliding_window_inference
from monai.inferers.utils import compute_importance_map

from mvgtutor.errors import ConfigError, DataError
from mvgtutor.evaluate import predict_tomogram, predict_volume, smooth_window, window_starts
from train_helpers import PointwiseNet


class ConvNet(torch.nn.Module):
    """Context-dependent (3x3x3) outputs, so that overlapping tiles disagree and the blending matters."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv3d(1, 5, 3, padding=1)

    def forward(self, x):
        return {"logits": self.conv(x)}


@pytest.mark.parametrize("size", [32, 33, 48, 50, 64, 97])
def test_window_starts_match_monai(size):
    slices = dense_patch_slices((size,), (32,), (16,))
    assert window_starts(size, 32, 16) == [s[0].start for s in slices]


def test_gaussian_window_matches_monai():
    ours = smooth_window(32, "gaussian")
    monai = compute_importance_map((32, 32, 32), mode="gaussian", sigma_scale=0.125)
    assert torch.allclose(ours, monai, atol=1e-6)
    assert float(smooth_window(32, "hann").min()) >= 1e-3


def test_equals_monai_gaussian_sliding_window():
    torch.manual_seed(0)
    model = ConvNet().eval()
    volume = torch.randn(40, 57, 33)
    ours = predict_volume(model, volume, output="probabilities", batch_size=7)
    with torch.no_grad():
        reference = sliding_window_inference(volume[None, None], (32, 32, 32), 7,
                                             lambda x: torch.softmax(model(x)["logits"], 1),
                                             overlap=0.5, mode="gaussian")[0]
    assert ours.shape == (5, 40, 57, 33)
    assert torch.allclose(ours, reference, atol=1e-5)
    labels = predict_volume(model, volume, batch_size=64)
    assert labels.dtype == torch.uint8 and torch.equal(labels.long(), ours.argmax(0))
    channels_first = predict_volume(model, volume, output="probabilities", batch_size=7,
                                    memory_format="channels_first")
    assert torch.allclose(channels_first, ours, atol=1e-5)  # the layout changes the speed, not the result
    assert model.conv.weight.is_contiguous()  # and the caller's model keeps its own layout


@pytest.mark.parametrize("batch_size", [1, 7, 40])
def test_sliding_band_equals_whole_volume_buffer(batch_size):
    """A buffer too small for the volume makes the band slide down it; the result must not change."""
    torch.manual_seed(0)
    model = ConvNet().eval()
    volume = torch.randn(97, 50, 48)
    whole = predict_volume(model, volume, output="probabilities", batch_size=batch_size)
    banded = predict_volume(model, volume, output="probabilities", batch_size=batch_size, buffer_bytes=1)
    assert torch.allclose(whole, banded, atol=1e-6)
    labels = predict_volume(model, volume, batch_size=batch_size, buffer_bytes=1)
    assert torch.equal(labels, predict_volume(model, volume, batch_size=batch_size))
    assert torch.equal(labels.long(), whole.argmax(0))


def test_pointwise_model_is_stitched_exactly():
    """A per-voxel model gives the same answer in every tile: blending must return it unchanged."""
    torch.manual_seed(0)
    model = PointwiseNet(num_classes=4).eval()
    volume = torch.randn(48, 40, 36)
    blended = predict_volume(model, volume, output="probabilities", window="hann", batch_size=5)
    with torch.no_grad():
        direct = torch.softmax(model(volume[None, None])["logits"][0], 0)
    assert torch.allclose(blended, direct, atol=1e-5)


def test_volume_smaller_than_a_tile_is_padded():
    model = PointwiseNet(num_classes=3).eval()
    labels = predict_volume(model, torch.randn(20, 35, 31))
    assert labels.shape == (20, 35, 31)


def test_predict_tomogram_normalises_like_training():
    model = PointwiseNet(num_classes=3).eval()
    raw = np.random.default_rng(0).normal(5.0, 3.0, (32, 32, 32)).astype(np.float32)
    from mvgtutor.data.patches import normalize_tomogram

    assert torch.equal(predict_tomogram(model, raw), predict_volume(model, normalize_tomogram(raw)))


def test_bad_arguments():
    model = PointwiseNet().eval()
    with pytest.raises(DataError, match="float"):
        predict_volume(model, torch.zeros(32, 32, 32, dtype=torch.int64))
    with pytest.raises(DataError):
        predict_volume(model, torch.zeros(32, 32))
    with pytest.raises(ConfigError, match="overlap"):
        predict_volume(model, torch.zeros(32, 32, 32), overlap=1.0)
    with pytest.raises(ConfigError, match="window"):
        predict_volume(model, torch.zeros(32, 32, 32), window="triangle")


def test_mvgformer_labels_do_not_depend_on_the_batch_size():
    """Each tile's visual graph is seeded independently of its batch (issue 10.3), so batching is invisible."""
    import dataclasses

    from mvgtutor.config import make_profile
    from mvgtutor.model import MVGFormer

    config = dataclasses.replace(make_profile("test").model, input_size=16, p3da_dilations=(1, 2, 4, 6))
    torch.manual_seed(0)
    model = MVGFormer(config).eval()
    volume = torch.randn(40, 40, 40, generator=torch.Generator().manual_seed(0))
    labels = {size: predict_volume(model, volume, tile=16, batch_size=size) for size in (1, 7, 32)}
    assert torch.equal(labels[1], labels[7]) and torch.equal(labels[1], labels[32])
    assert len(torch.unique(labels[1])) > 1  # an untrained model, but not a constant one
