"""The visual graph (Sec. 4.1): k-means against scikit-learn, eq. 5, spectral clustering, MinCutPool."""

import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from mvgtutor.errors import ConfigError
from mvgtutor.model.graph import (MinCutPool, VisualGraph, build_graph, cluster_means, grid_adjacency, inertia,
                                  kmeans, nearest_center, spectral_clustering)


def test_kmeans_matches_sklearn_inertia_on_random_data():
    points = torch.randn(4, 512, 16, generator=torch.Generator().manual_seed(0))
    graph = kmeans(points, 16, iters=30, generator=torch.Generator().manual_seed(0))
    ours = inertia(points, graph.nodes, graph.assignment)
    for b in range(4):
        theirs = KMeans(16, n_init=1, random_state=b).fit(points[b].numpy()).inertia_
        assert abs(ours[b].item() / theirs - 1) < 0.01


def test_kmeans_finds_separated_blobs_in_one_batched_call():
    samples = [make_blobs(256, centers=8, n_features=6, cluster_std=0.5, random_state=s) for s in range(3)]
    points = torch.stack([torch.tensor(x, dtype=torch.float32) for x, _ in samples])  # (3, 256, 6)
    graph = kmeans(points, 8, iters=20, generator=torch.Generator().manual_seed(1))
    assert graph.nodes.shape == (3, 8, 6) and graph.assignment.shape == (3, 256)
    for b, (_, labels) in enumerate(samples):
        assert adjusted_rand_score(labels, graph.assignment[b].numpy()) == pytest.approx(1.0)


def test_kmeans_is_deterministic_given_a_generator_and_converges_to_a_fixed_point():
    points = torch.randn(2, 128, 8, generator=torch.Generator().manual_seed(3))
    first = kmeans(points, 5, iters=50, generator=torch.Generator().manual_seed(7))
    second = kmeans(points, 5, iters=50, generator=torch.Generator().manual_seed(7))
    assert torch.equal(first.assignment, second.assignment)
    assert torch.equal(nearest_center(points, first.nodes), first.assignment)  # eq. 4 holds for the final nodes


def test_nodes_are_cluster_means_and_carry_gradients():
    features = torch.randn(2, 64, 4, generator=torch.Generator().manual_seed(0), requires_grad=True)
    graph = kmeans(features, 4, iters=5, generator=torch.Generator().manual_seed(0))
    for b in range(2):
        for k in range(4):
            members = features[b][graph.assignment[b] == k]
            assert torch.allclose(graph.nodes[b, k], members.mean(0), atol=1e-6)  # eq. 5
    graph.nodes.sum().backward()
    assert features.grad is not None and features.grad.abs().sum() > 0


def test_empty_cluster_keeps_its_fallback():
    features = torch.zeros(1, 4, 2)
    means = cluster_means(features, torch.zeros(1, 4, dtype=torch.long), 2, fallback=torch.full((1, 2, 2), 5.0))
    assert torch.equal(means[0, 1], torch.tensor([5.0, 5.0]))


def test_spectral_clustering_separates_rings_that_kmeans_cannot():
    angle = torch.linspace(0, 6.283, 200)
    inner = torch.stack([angle.cos(), angle.sin()], 1)
    points = torch.cat([inner, 4 * inner]).unsqueeze(0)  # (1, 400, 2): two concentric rings
    labels = [0] * 200 + [1] * 200
    graph = spectral_clustering(points * 3, 2, generator=torch.Generator().manual_seed(0))
    assert adjusted_rand_score(labels, graph.assignment[0].numpy()) == pytest.approx(1.0)
    assert graph.nodes.shape == (1, 2, 2)


def test_mincut_pool_gives_a_graph_and_a_trainable_loss():
    pool = MinCutPool(channels=8, num_clusters=4, grid=4)
    graph = pool(torch.randn(2, 64, 8))
    assert graph.nodes.shape == (2, 4, 8) and graph.assignment.shape == (2, 64)
    graph.aux_loss.backward()
    assert all(p.grad is not None for p in pool.parameters())


def test_grid_adjacency_counts_six_neighbours():
    adjacency = grid_adjacency(3)
    assert adjacency.sum(1)[13] == 6  # the centre cell of a 3^3 grid
    assert adjacency.sum(1)[0] == 3  # a corner
    assert torch.equal(adjacency, adjacency.T)


def test_bad_options_raise_config_errors():
    with pytest.raises(ConfigError, match="num_clusters=9"):
        kmeans(torch.randn(1, 8, 2), 9)
    with pytest.raises(ConfigError, match="graph_method"):
        VisualGraph("louvain", 8, 4, 3, 4)
    with pytest.raises(ConfigError, match="mincut"):
        build_graph(torch.randn(1, 8, 2), "mincut", 2)
    assert VisualGraph("none", 8, 4, 3, 4)(torch.randn(1, 64, 8)) is None


def test_kmeans_of_a_sample_does_not_depend_on_its_batch():
    points = torch.randn(7, 64, 8, generator=torch.Generator().manual_seed(0))
    together = kmeans(points, 6, iters=5, generator=torch.Generator().manual_seed(1))
    for index in (0, 3, 6):
        alone = kmeans(points[index:index + 1], 6, iters=5, generator=torch.Generator().manual_seed(1))
        assert torch.equal(alone.assignment[0], together.assignment[index])
    shuffled = kmeans(points.flip(0), 6, iters=5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(shuffled.assignment.flip(0), together.assignment)


def test_lloyd_is_public_and_keeps_eq_4_at_its_fixed_point():
    from mvgtutor.model.graph import kmeans_plus_plus, lloyd

    points = torch.randn(2, 100, 3, generator=torch.Generator().manual_seed(0))
    centers, assignment = lloyd(points, kmeans_plus_plus(points, 4, torch.Generator().manual_seed(0)), 50)
    assert centers.shape == (2, 4, 3) and torch.equal(nearest_center(points, centers), assignment)
