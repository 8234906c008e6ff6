"""MVP around a baseline (Table 11): views, fusion, shared and unshared backbones, the loss's per-view terms."""

import pytest
import torch

from mvgtutor.baselines.mvp import MultiViewPerspective
from mvgtutor.config import make_profile
from mvgtutor.errors import ConfigError
from mvgtutor.model.losses import segmentation_loss
from mvgtutor.model.views import to_view
from mvgtutor.train.models import MVP_NAMES, build_model
from mvgtutor.train.prior import init_class_prior
from train_helpers import PointwiseNet


def test_a_pointwise_backbone_gives_every_view_the_same_logits_and_the_sum_fuses_them():
    torch.manual_seed(0)
    backbone = PointwiseNet()
    mvp = MultiViewPerspective(backbone)
    x = torch.randn(2, 1, 8, 8, 8)
    out = mvp(x)
    alone = backbone(x)["logits"]  # a per-voxel net commutes with any axis swap
    assert set(out["view_logits"]) == {"xy", "yz", "xz"}
    for view_logits in out["view_logits"].values():
        torch.testing.assert_close(view_logits, alone)
    torch.testing.assert_close(out["logits"], 3 * alone)  # eq. 8: the sum


def test_each_view_sees_its_own_axis_order_and_is_brought_back():
    seen = []

    class Recorder(torch.nn.Module):
        def forward(self, x):
            seen.append(x.clone())
            return {"logits": x.repeat(1, 2, 1, 1, 1)}  # the input itself, as two "classes"

    x = torch.arange(2 * 4**3, dtype=torch.float32).reshape(2, 1, 4, 4, 4)
    out = MultiViewPerspective(Recorder(), views=("xy", "yz"))(x)
    batch = seen[0]  # the shared backbone is called once, on the views stacked along the batch
    torch.testing.assert_close(batch[2:], to_view(x, "yz"))
    torch.testing.assert_close(out["view_logits"]["yz"][:, :1], x)  # back on the canonical grid


def test_unshared_backbones_are_copies_and_repeated_views_get_distinct_keys():
    mvp = MultiViewPerspective(PointwiseNet(), views=("xy", "xy", "xz"), shared_backbone=False)
    assert len(mvp.backbones) == 3 and mvp.backbones[0] is not mvp.backbones[1]
    assert set(mvp(torch.randn(1, 1, 4, 4, 4))["view_logits"]) == {"xy", "xy_2", "xz"}
    with pytest.raises(ConfigError, match="cubic"):
        mvp(torch.randn(1, 1, 4, 4, 6))


@pytest.mark.parametrize("name", ["unet3d_mvp", "swin_unetr_mvp", "voxresnet_mvp_unshared"])
def test_mvp_models_train_through_eq_9_with_their_class_prior(name):
    profile = make_profile("test")
    model = build_model(name, profile.model)
    labels = torch.randint(0, profile.model.num_classes, (2, 32, 32, 32))
    assert init_class_prior(model, labels)
    x = torch.randn(2, 1, 32, 32, 32)
    loss, parts = segmentation_loss(model(x), labels, profile.train)
    loss.backward()
    assert {"ce_fused", "ce_xy", "ce_yz", "ce_xz"} <= set(parts) and torch.isfinite(loss)
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    assert name in MVP_NAMES
