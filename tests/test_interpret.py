"""Chapter 12's library: activation heatmaps (Figs. 10-11), the graph and attention maps, Table 14, the explorer."""

import dataclasses

import numpy as np
import pytest
import torch

from mvgtutor.config import make_profile
from mvgtutor.errors import ConfigError, DataError
from mvgtutor.interpret import (PAPER_TABLE_14, activation_heatmap, attention_volume, cluster_volume,
                                diversity_table, format_diversity_table, inspect_patch, normalize_unit,
                                patch_corner, token_index, token_norms)
from mvgtutor.model import MVGFormer
from mvgtutor.model.views import to_view

SMALL = dataclasses.replace(make_profile("test").model, input_size=16, p3da_dilations=(1, 2, 4, 6), decoder="mlp",
                            vsl=False)  # 4^3 tokens of 4^3 voxels: fast


def model_of(**changes) -> MVGFormer:
    torch.manual_seed(0)
    return MVGFormer(dataclasses.replace(SMALL, **changes)).eval()


def batch(size: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randn(size, 1, 16, 16, 16, generator=torch.Generator().manual_seed(seed))


def test_normalize_unit_scales_each_sample_to_the_unit_interval():
    volume = torch.stack([torch.linspace(-3, 5, 27).view(3, 3, 3), torch.full((3, 3, 3), 2.0)])
    unit = normalize_unit(volume)
    assert unit.shape == volume.shape
    assert unit[0].min() == 0 and unit[0].max() == 1 and torch.allclose(unit[0].flatten(), torch.linspace(0, 1, 27))
    assert torch.equal(unit[1], torch.zeros(3, 3, 3))  # a constant sample: no contrast, zeros


def test_activation_heatmap_is_the_channel_norm_of_the_encoder_output_per_voxel():
    model, x = model_of(views=("xy",)), batch()
    tokens = model.forward_features(x).per_view()[0]  # (B, L, C): the xy view is the canonical order
    expected = tokens.norm(dim=-1).view(2, 4, 4, 4)
    assert torch.allclose(token_norms(model, x)["xy"], expected, atol=1e-5)
    raw = activation_heatmap(model, x, normalize=False)
    assert raw.shape == (2, 16, 16, 16)
    assert torch.allclose(raw.mean(dim=(1, 2, 3)), expected.mean(dim=(1, 2, 3)), rtol=0.05)  # same scale
    heat = activation_heatmap(model, x)
    assert heat.shape == (2, 16, 16, 16)
    for sample in heat:
        assert sample.min() == 0 and sample.max() == pytest.approx(1.0)
    # the strongest token's voxels are hot: the argmax cell of the norms holds the heatmap's maximum region
    cell = np.unravel_index(int(expected[0].argmax()), (4, 4, 4))
    block = heat[0, cell[0] * 4:cell[0] * 4 + 4, cell[1] * 4:cell[1] * 4 + 4, cell[2] * 4:cell[2] * 4 + 4]
    assert block.max() == heat[0].max()


def test_activation_heatmap_of_three_views_averages_their_norms():
    model, x = model_of(), batch()
    norms = token_norms(model, x)
    assert set(norms) == {"xy", "yz", "xz"} and all(n.shape == (2, 4, 4, 4) for n in norms.values())
    mean = activation_heatmap(model, x, normalize=False)
    per_view = torch.stack([activation_heatmap(model, x, view=v, normalize=False) for v in norms])
    assert torch.allclose(mean, per_view.mean(0), atol=1e-5)  # interpolation is linear
    with pytest.raises(ConfigError, match="view='zz'"):
        activation_heatmap(model, x, view="zz")


def test_token_index_follows_each_view_axis_order():
    assert token_index((5, 9, 14), "xy", 4, 4) == 1 * 16 + 2 * 4 + 3  # (z, y, x) cells (1, 2, 3), row-major
    assert token_index((5, 9, 14), "yz", 4, 4) == 3 * 16 + 2 * 4 + 1  # the yz view orders (x, y, z)
    assert token_index((5, 9, 14), "xz", 4, 4) == 2 * 16 + 1 * 4 + 3  # the xz view orders (y, z, x)
    with pytest.raises(ConfigError, match="position"):
        token_index((16, 0, 0), "xy", 4, 4)


def test_cluster_volume_is_the_graph_assignment_repeated_over_each_token():
    model, x = model_of(), batch()
    clusters = cluster_volume(model, x)
    assert clusters.shape == (2, 16, 16, 16) and clusters.dtype == torch.int64
    assignment = model.forward_features(x).graph.assignment.view(2, 4, 4, 4)
    assert torch.equal(clusters[:, ::4, ::4, ::4], assignment)
    assert torch.equal(clusters[:, 3::4, 1::4, 2::4], assignment)  # constant inside every 4^3 token
    assert int(clusters.max()) < SMALL.num_clusters
    with pytest.raises(ConfigError, match="no visual graph"):
        cluster_volume(model_of(graph_method="none"), x)


def test_attention_volume_is_a_distribution_and_shared_by_a_cluster_in_the_graph_layer():
    model, x = model_of(), batch()
    first = attention_volume(model, x, (0, 0, 0), layer=0, view="yz")
    assert first.shape == (2, 16, 16, 16) and (first >= 0).all()
    assert torch.allclose(first.sum(dim=(1, 2, 3)), torch.full((2,), 64.0), atol=1e-3)  # 4^3 voxels per weight
    clusters = cluster_volume(model, x)
    same = (clusters[0] == clusters[0, 0, 0, 0]).nonzero()
    other = same[-1].tolist()  # another voxel of the same node: the node is the query (eq. 7, token_cluster)
    assert torch.allclose(attention_volume(model, x, other, layer=0, view="yz")[0], first[0], atol=1e-6)
    # a plain layer has one query per token: a single head's row, mapped back to the canonical grid
    maps = model.forward_features(x, return_attention=True).attention[1]  # (V*B, h, L, L)
    row = maps[0, 1, token_index((5, 9, 14), "xy", 4, 4)].view(4, 4, 4)  # view xy, sample 0, head 1
    single = attention_volume(model, x, (5, 9, 14), layer=1, view="xy", head=1)
    assert torch.allclose(single[0, ::4, ::4, ::4], row, atol=1e-6)
    for bad, match in ((dict(layer=5), "layer=5"), (dict(head=7), "head=7"), (dict(view="zz"), "view='zz'")):
        with pytest.raises(ConfigError, match=match):
            attention_volume(model, x, (0, 0, 0), **bad)
    with pytest.raises(ConfigError, match="per_view"):
        attention_volume(model_of(encoder_sequence="joint"), x, (0, 0, 0))


def test_diversity_table_pairs_our_views_with_table_14():
    rows = diversity_table({"untrained": model_of(), "again": model_of()}, batch())
    assert [row["pair"] for row in rows] == [("xy", "yz"), ("xy", "xz"), ("yz", "xz")]
    assert [row["paper"] for row in rows] == [(0.61, 0.81), (0.67, 0.75), (0.74, 0.73)]
    assert set(PAPER_TABLE_14) == {frozenset(row["pair"]) for row in rows}
    for row in rows:
        assert row["untrained"] == row["again"] and -1 <= row["untrained"]["cos_sim"] <= 1
        assert 0 <= row["untrained"]["fds"] <= 4
    text = format_diversity_table(rows).splitlines()
    assert len(text) == 5 and "untrained" in text[0] and text[2].startswith("XY & YZ") and "0.61" in text[2]
    # identical views (one view twice, the same fixed positions): CosSim 1, FDS 0, no paper value
    same = diversity_table({"same": model_of(views=("xy", "xy"), position="sinusoidal")}, batch())
    assert same[0]["pair"] == ("xy", "xy_2") and same[0]["paper"] is None
    assert same[0]["same"]["cos_sim"] == pytest.approx(1.0) and same[0]["same"]["fds"] < 1e-6
    assert "-" in format_diversity_table(same).splitlines()[2]


def test_patch_corner_keeps_the_patch_inside():
    assert patch_corner((20, 20, 20), (64, 64, 64), 16) == (12, 12, 12)
    assert patch_corner((0, 63, 30), (64, 64, 40), 16) == (0, 48, 22)
    with pytest.raises(DataError, match="does not fit"):
        patch_corner((5, 5, 5), (8, 64, 64), 16)


def test_inspect_patch_gathers_views_predictions_and_heatmap():
    model = model_of()
    volume = torch.randn(20, 24, 28, generator=torch.Generator().manual_seed(1))
    labels = torch.randint(0, 16, (20, 24, 28), generator=torch.Generator().manual_seed(2))
    insight = inspect_patch(model, volume, (19, 0, 14), labels)
    assert insight.corner == (4, 0, 6)
    assert torch.equal(insight.image, volume[4:20, 0:16, 6:22])
    assert torch.equal(insight.labels, labels[4:20, 0:16, 6:22])
    assert set(insight.views) == set(insight.view_predictions) == {"xy", "yz", "xz"}
    assert torch.equal(insight.views["yz"], to_view(insight.image, "yz"))
    outputs = model(insight.image[None, None])
    assert torch.equal(insight.prediction, outputs["logits"][0].argmax(0))
    assert torch.equal(insight.view_predictions["xz"], outputs["view_logits"]["xz"][0].argmax(0))
    assert torch.allclose(insight.heatmap, activation_heatmap(model, insight.image[None, None])[0])
    assert inspect_patch(model, volume.numpy(), (10, 10, 10)).labels is None
    with pytest.raises(DataError, match="volume must be"):
        inspect_patch(model, volume[0], (0, 0))


def test_boundary_mask_marks_both_sides_of_a_label_change():
    from mvgtutor.interpret import boundary_mask

    labels = torch.zeros(1, 6, 6, 6, dtype=torch.long)
    labels[0, 2:4, 2:4, 2:4] = 3  # a 2^3 cube: every voxel of it touches the background
    edge = boundary_mask(labels)
    assert edge[0, 2:4, 2:4, 2:4].all()
    assert edge[0, 1, 2, 2] and edge[0, 4, 3, 3] and edge[0, 2, 1, 2]  # the background next to its faces
    assert not edge[0, 1, 1, 1] and not edge[0, 0, 0, 0]  # diagonal neighbours and far voxels are not
    assert int(edge.sum()) == 8 + 6 * 4


def test_activation_by_region_averages_each_region():
    from mvgtutor.interpret import activation_by_region, boundary_mask

    labels = torch.zeros(1, 8, 8, 8, dtype=torch.long)
    labels[0, 2:6, 2:6, 2:6] = 14
    heat = boundary_mask(labels).float() * 0.9 + (labels > 0).float() * 0.05
    regions = activation_by_region(heat, labels)
    assert regions["boundary"] == pytest.approx((0.95 * 56 + 0.9 * 96) / 152)  # 56 on the cube, 6 x 16 outside
    assert regions["interior"] == pytest.approx(0.05) and regions["background"] == pytest.approx(0.0)
    empty = activation_by_region(torch.rand(1, 4, 4, 4), torch.zeros(1, 4, 4, 4, dtype=torch.long))
    assert np.isnan(empty["boundary"]) and np.isnan(empty["interior"]) and empty["background"] >= 0
    with pytest.raises(ConfigError, match="one shape"):
        activation_by_region(heat, labels[:, :4])


def test_graph_ablation_runs_train_once_per_method_and_reuse_the_cache(tmp_path, monkeypatch):
    from mvgtutor.interpret import graph_ablation_runs
    from train_helpers import tiny_profile, write_tiny_dataset

    monkeypatch.setenv("MVGTUTOR_RUNS_DIR", str(tmp_path / "runs"))
    profile = tiny_profile()
    train = dataclasses.replace(profile.train, epochs=1, batch_size=2, validate=False)
    profile = dataclasses.replace(profile, train=train)
    data_dir = write_tiny_dataset(tmp_path / "data")
    runs = graph_ablation_runs(profile, data_dir, ("none", "mincut"))
    assert list(runs) == ["no graph", "MinCutPool"]
    assert [run.model_config.graph_method for run in runs.values()] == ["none", "mincut"]
    assert all(run.finished for run in runs.values())
    again = graph_ablation_runs(profile, data_dir, ("mincut",))
    assert again["MinCutPool"].directory == runs["MinCutPool"].directory
    assert len(list((tmp_path / "runs").glob("mvgformer-*"))) == 2
    with pytest.raises(ConfigError, match="methods"):
        graph_ablation_runs(profile, data_dir, ("louvain",))


def test_nearest_foreground_finds_the_closest_labelled_voxel():
    from mvgtutor.interpret import nearest_foreground

    labels = torch.zeros(8, 8, 8, dtype=torch.long)
    labels[1, 1, 1] = 3
    labels[6, 5, 4] = 14
    assert nearest_foreground(labels) == (6, 5, 4)  # closer to the centre (4, 4, 4)
    assert nearest_foreground(labels.numpy(), (0, 0, 0)) == (1, 1, 1)
    with pytest.raises(DataError, match="no labelled voxel"):
        nearest_foreground(torch.zeros(4, 4, 4, dtype=torch.long))
