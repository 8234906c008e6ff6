"""The baselines follow the forward contract and learn; the comparison measures what it says it does."""

import dataclasses
import json
import math

import pytest
import torch
from torch import nn

from mvgtutor.baselines import UNet3D, VoxResNet
from mvgtutor.baselines import compare, monai_nets, results
from mvgtutor.config import make_profile
from mvgtutor.data.classes import FOREGROUND_LABELS
from mvgtutor.errors import ConfigError, DataError
from mvgtutor.train.models import MODEL_NAMES, build_model
from train_helpers import tiny_profile, write_tiny_dataset


@pytest.mark.parametrize("model", [VoxResNet(1, 16, width=4), UNet3D(1, 16, widths=(4, 6, 8))])
def test_forward_contract(model):
    outputs = model(torch.randn(2, 1, 32, 32, 32))
    assert set(outputs) == {"logits"}
    assert outputs["logits"].shape == (2, 16, 32, 32, 32)


@pytest.mark.parametrize("name", compare.BASELINE_NAMES)
def test_every_baseline_trains_forward_and_backward_on_a_32_cubed_batch(name):
    torch.manual_seed(0)
    model = build_model(name, make_profile("test").model).train()
    outputs = model(torch.randn(2, 1, 32, 32, 32))
    assert set(outputs) == {"logits"} and type(outputs["logits"]) is torch.Tensor
    assert outputs["logits"].shape == (2, 16, 32, 32, 32)
    torch.nn.functional.cross_entropy(outputs["logits"], torch.randint(16, (2, 32, 32, 32))).backward()
    gradients = [p.grad for p in model.parameters() if p.requires_grad]  # every parameter trains (DDP needs it)
    assert all(g is not None and torch.isfinite(g).all() for g in gradients)
    assert any(g.abs().sum() > 0 for g in gradients)


def test_monai_swin_unetr_with_its_default_instance_norm_fails_at_32_cubed():
    """Why our Swin UNETR uses group norm: MONAI's default reaches a 1^3 bottleneck that instance norm refuses."""
    from monai.networks.nets import SwinUNETR

    net = SwinUNETR(in_channels=1, out_channels=16, feature_size=12).train()
    with pytest.raises(ValueError, match="more than 1 spatial element"):
        net(torch.randn(2, 1, 32, 32, 32))


@pytest.mark.parametrize("name", ["dynunet", "mednext", "unetr", "swin_unetr"])
def test_class_prior_sets_the_last_convolution_bias(name):
    model = build_model(name, make_profile("test").model)
    prior = torch.linspace(-2, 2, 16)
    model.init_class_prior(prior)
    with torch.no_grad():
        head = model.net.get_submodule(model.head)
    assert head.out_channels == 16 and torch.equal(head.bias, prior)


def test_widths_are_the_published_ones_at_the_paper_profile_and_scaled_below():
    paper, cpu = make_profile("gpu").model, make_profile("cpu").model
    assert monai_nets.scaled_width(paper, 48, floor=12, multiple=12) == 48  # Swin UNETR's feature_size
    assert monai_nets.scaled_width(paper, 32) == 32  # nnU-Net's and MedNeXt's base width
    assert monai_nets.scaled_width(cpu, 48, floor=12, multiple=12) == 12
    assert monai_nets.scaled_width(cpu, 32) == 8
    mednext = build_model("mednext", paper)
    assert 17.4e6 < compare.parameter_count(mednext) < 17.7e6  # MedNeXt-M, the paper's Table 7: 17.6M


def test_a_patch_size_the_network_cannot_take_is_a_config_error():
    config = dataclasses.replace(make_profile("test").model, input_size=24)
    with pytest.raises(ConfigError, match="divisible by 32"):
        build_model("swin_unetr", config)


def test_unknown_model_name():
    with pytest.raises(ConfigError, match="voxresnet"):
        build_model("resnet", make_profile("test").model)
    assert set(compare.BASELINE_NAMES) < set(MODEL_NAMES)


def test_flops_and_parameters_of_one_conv3d_counted_by_hand():
    conv = nn.Conv3d(2, 3, kernel_size=3, padding=1)
    assert compare.parameter_count(conv) == 2 * 3 * 27 + 3
    # one multiply-add (2 FLOPs) per input channel, output channel, kernel tap and output voxel
    assert compare.forward_flops_per_sample(conv, input_size=4, in_channels=2) == 2 * 2 * 3 * 27 * 4**3
    assert conv.training  # the mode is restored


def test_training_throughput_weights_epochs_by_their_time():
    history = [dict(samples_per_s=10.0, seconds=1.0), dict(samples_per_s=1.0, seconds=10.0)]
    samples_per_s, seconds = compare.training_throughput(history)
    assert seconds == 11.0 and samples_per_s == pytest.approx(20 / 11)
    with pytest.raises(DataError, match="at least one epoch"):
        compare.training_throughput([])


def test_class_groups_cover_each_foreground_label_once_and_average_what_is_scored():
    groups = compare.class_groups()
    labels = [label for members in groups.values() for label in members]
    assert sorted(labels) == list(FOREGROUND_LABELS)
    assert groups["large proteins"] == (1, 2, 13) and groups["vesicle"] == (14,)
    dice = [0.9] + [None] * 15
    dice[1], dice[2], dice[14] = 0.2, 0.6, 0.5
    means = compare.group_dice(dice)
    assert means["large proteins"] == pytest.approx(0.4)  # 5MRC (label 13) is not scored: left out
    assert means["vesicle"] == 0.5 and means["fiducial"] is None


def _score(model="voxresnet", miou=0.25):
    return compare.BaselineScore(model=model, params=1000, flops_per_sample=2 * 10**9, samples_per_s=3.0,
                                 train_seconds=5.0, epochs=1, miou=miou, mean_dice=0.5, dice=[0.9] + [0.5] * 15,
                                 groups={"vesicle": 0.5}, provenance={"profile": "test"})


def test_results_file_round_trip_and_errors(tmp_path):
    path = tmp_path / "baselines_test.json"
    results.write_result(path, _score(), "test")
    results.write_result(path, _score("unet3d", miou=float("nan")), "test")
    results.write_result(path, _score(miou=0.5), "test")  # replaces the first row
    rows = results.read_results(path)
    assert [r.model for r in rows] == ["voxresnet", "unet3d"]
    assert rows[0] == _score(miou=0.5) and math.isnan(rows[1].miou)
    assert json.loads(path.read_text())["rows"]["unet3d"]["miou"] is None
    with pytest.raises(DataError, match="profile 'test'"):
        results.write_result(path, _score(), "cpu")
    with pytest.raises(DataError, match="bench_baselines"):
        results.read_results(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text('{"rows": {"x": {"model": "x"}}}')
    with pytest.raises(DataError, match="lacks a field"):
        results.read_results(tmp_path / "bad.json")


def test_comparison_table_puts_the_papers_table_2_beside_ours():
    table = compare.comparison_table([_score(), _score("dynunet")])
    lines = table.splitlines()
    assert len(lines) == 4 and lines[0].count("|") == lines[2].count("|") == lines[3].count("|")
    assert "VoxResNet [NeuroImage18] | 83.7±0.4 | 91.1±0.3" in lines[2]
    assert "| 25.0 | 50.0 |" in lines[2] and "not in the paper" in lines[3]


def test_compare_models_trains_through_the_run_cache_and_scores_the_held_out_tomogram(tmp_path, monkeypatch):
    monkeypatch.setenv("MVGTUTOR_RUNS_DIR", str(tmp_path / "runs"))
    data = write_tiny_dataset(tmp_path / "data")
    profile = tiny_profile()
    profile = dataclasses.replace(profile, train=dataclasses.replace(profile.train, epochs=1, batch_size=1))
    scores, predictions = compare.compare_models(["voxresnet"], profile, data)
    (score,) = scores
    assert score.model == "voxresnet" and score.epochs == 1 and score.samples_per_s > 0
    assert score.params == compare.parameter_count(build_model("voxresnet", profile.model))
    assert score.flops_per_sample > 0 and 0 <= score.miou <= 1 and len(score.dice) == 16
    assert predictions["voxresnet"].shape == (32, 32, 32) and predictions["voxresnet"].dtype == torch.uint8
    assert len(list((tmp_path / "runs").glob("voxresnet-*"))) == 1  # the run cache holds it: asked again, no training


def test_live_profile_trains_one_epoch_in_the_test_profile_only():
    live = compare.live_profile(make_profile("test"))
    assert live.train.epochs == 1 and not live.train.validate and live.model == make_profile("test").model
    assert compare.live_models(make_profile("test")) == ("mvgformer", *compare.BASELINE_NAMES)
    assert compare.live_models(make_profile("cpu")) == ("mvgformer", "voxresnet")
    assert compare.live_profile(make_profile("cpu")) == make_profile("cpu")


def test_baseline_scores_read_committed_rows_train_live_ones_and_say_which(tmp_path, monkeypatch):
    monkeypatch.setenv("MVGTUTOR_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path / "results")
    data = write_tiny_dataset(tmp_path / "data")
    profile = tiny_profile()
    profile = dataclasses.replace(profile, name="tiny",
                                  train=dataclasses.replace(profile.train, epochs=1, batch_size=1))
    results.write_result(results.results_path("tiny"), _score("unet3d"), "tiny")
    scores, sources = compare.baseline_scores(["voxresnet", "unet3d", "dynunet"], profile, data,
                                              live=("voxresnet",))
    assert [s.model for s in scores] == ["voxresnet", "unet3d"]
    assert scores[1] == _score("unet3d")  # the committed row, as written
    assert sources["voxresnet"].startswith("trained now") and "baselines_tiny.json" in sources["unet3d"]
    assert "bench_baselines.py --profile tiny --models dynunet" in sources["dynunet"]
    models = compare.trained_models(["voxresnet", "unet3d"], profile, data)
    assert list(models) == ["voxresnet"] and not models["voxresnet"].training
    z = 20
    labels = compare.predict_slice(models["voxresnet"], torch.randn(32, 32, 32), z)
    assert labels.shape == (32, 32) and labels.dtype == torch.uint8


def test_segmentation_panels_and_the_busiest_slice():
    from mvgtutor.viz.baselines import busiest_slice, segmentation_panels

    mask = torch.zeros(6, 8, 8, dtype=torch.uint8)
    mask[1, :2, :2] = 3
    mask[4, :2, :2], mask[4, 5:, 5:] = 3, 14
    assert busiest_slice(mask) == 4
    fig = segmentation_panels(torch.randn(8, 8), mask[4], {"a": mask[4], "b": mask[1]}, columns=3)
    assert len([ax for ax in fig.axes if ax.has_data()]) == 4
    import matplotlib.pyplot as plt

    plt.close(fig)
    with pytest.raises(DataError, match="prediction of b"):
        segmentation_panels(torch.randn(8, 8), mask[4], {"b": mask[1, :4]})


def test_rankings_ours_and_the_papers():
    assert compare.paper_ranking() == ["mvgformer", "voxresnet", "unet3d", "mednext", "swin_unetr"]
    assert compare.ranking([_score("a", 0.1), _score("b", 0.3), _score("c", 0.2)]) == ["b", "c", "a"]


def test_trained_models_fall_back_to_a_committed_reference_run(tmp_path, monkeypatch):
    import sys
    import types

    monkeypatch.setenv("MVGTUTOR_RUNS_DIR", str(tmp_path / "runs"))
    data = write_tiny_dataset(tmp_path / "data")
    reference = VoxResNet(1, 16, width=4).eval()
    asked = []

    def load_reference(name, device="cpu"):
        asked.append(name)
        if name != "voxresnet-test":
            raise DataError(f"no reference run {name!r}")
        return types.SimpleNamespace(model=reference)

    monkeypatch.setitem(sys.modules, "mvgtutor.train.reference", types.SimpleNamespace(load_reference=load_reference))
    models = compare.trained_models(["voxresnet", "unet3d"], make_profile("test"), data)
    assert models == {"voxresnet": reference} and asked == ["voxresnet-test", "unet3d-test"]
