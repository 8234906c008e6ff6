"""Picking: centres from segmentations, the matching routine against brute force, the three scorers."""

import numpy as np
import pytest

from mvgtutor.data.formats import Particle
from mvgtutor.errors import ConfigError, DataError
from mvgtutor.picking import (Counts, Picks, czii_score, match_points, paper_scores, picks_from_labels,
                              picks_from_probabilities, shrec_scores)
from mvgtutor.picking.matching import candidate_pairs


# ------------------------------------------------------------------------------------------- matching
def brute_force(picks, truth, radius, rule):
    """The rules written out over the full distance matrix (no KD-tree)."""
    d = np.linalg.norm(picks[:, None, :] - truth[None, :, :], axis=2)  # (P, T)
    near = d <= radius
    if rule == "czii":
        tp = int(near.any(axis=0).sum())
        return tp, len(picks) - tp, len(truth) - tp
    if rule == "any":
        return int(near.any(axis=1).sum()), int((~near.any(axis=1)).sum()), int((~near.any(axis=0)).sum())
    pairs = sorted((d[p, t], t, p) for p, t in zip(*np.nonzero(near)))
    used_p, used_t = set(), set()
    for _, t, p in pairs:
        if t not in used_t and p not in used_p:
            used_t.add(t)
            used_p.add(p)
    return len(used_t), len(picks) - len(used_t), len(truth) - len(used_t)


@pytest.mark.parametrize("rule", ["one_to_one", "czii", "any"])
@pytest.mark.parametrize("seed", range(5))
def test_matching_equals_brute_force(rule, seed):
    rng = np.random.default_rng(seed)
    truth = rng.uniform(0, 50, size=(rng.integers(1, 40), 3))
    picks = np.concatenate([truth[rng.random(len(truth)) < 0.6] + rng.normal(0, 2, (1, 3)),
                            rng.uniform(0, 50, size=(rng.integers(0, 30), 3))])
    radius = float(rng.uniform(1.5, 6))
    m = match_points(picks, truth, radius, rule=rule)
    assert (m.tp, m.fp, m.fn) == brute_force(picks, truth, radius, rule)


def test_one_to_one_assignment_is_consistent():
    rng = np.random.default_rng(7)
    truth = rng.uniform(0, 30, (25, 3))
    picks = rng.uniform(0, 30, (40, 3))
    m = match_points(picks, truth, 4.0)
    assigned = m.pick_truth[m.pick_truth >= 0]
    assert len(assigned) == len(set(assigned)) == m.tp == m.truth_found.sum()
    for p, t in enumerate(m.pick_truth):
        if t >= 0:
            assert np.linalg.norm(picks[p] - truth[t]) <= 4.0


def test_second_pick_on_a_particle_is_a_false_positive_and_strict_radius():
    truth = np.array([[10.0, 10, 10]])
    picks = np.array([[10.0, 10, 11], [10.0, 10, 12]])
    m = match_points(picks, truth, 3.0)
    assert (m.tp, m.fp, m.fn) == (1, 1, 0) and m.pick_truth.tolist() == [0, -1]  # the closer pick wins
    on_edge = np.array([[13.0, 10, 10]])
    assert match_points(on_edge, truth, 3.0).tp == 1
    assert match_points(on_edge, truth, 3.0, strict=True).tp == 0  # the paper: "less than the radius"


def test_matching_rejects_bad_input():
    with pytest.raises(ConfigError, match="unknown matching rule"):
        match_points(np.zeros((1, 3)), np.zeros((1, 3)), 1.0, rule="nearest")
    with pytest.raises(DataError, match=r"shape \(N, 3\)"):
        match_points(np.zeros((2, 2)), np.zeros((1, 3)), 1.0)
    assert candidate_pairs(np.zeros((0, 3)), np.ones((3, 3)), 1.0)[0].size == 0
    empty = match_points(np.zeros((0, 3)), np.ones((3, 3)), 1.0)
    assert (empty.tp, empty.fp, empty.fn) == (0, 0, 3)


def test_per_truth_radius():
    truth = np.array([[0.0, 0, 0], [20, 0, 0]])
    picks = np.array([[3.0, 0, 0], [23, 0, 0]])
    m = match_points(picks, truth, np.array([2.0, 4.0]))
    assert m.truth_found.tolist() == [False, True]


# --------------------------------------------------------------------------------------- counts, F-beta
def test_fbeta_weights_recall():
    c = Counts(tp=5, fp=5, fn=0)  # P = 0.5, R = 1
    assert c.precision == 0.5 and c.recall == 1.0
    assert c.f1 == pytest.approx(2 / 3)
    assert c.fbeta(4) == pytest.approx(17 * 0.5 / (16 * 0.5 + 1))
    assert Counts(5, 0, 5).fbeta(4) < c.fbeta(4)  # the same F1-ish trade: beta 4 prefers the recall
    assert Counts(0, 0, 0).fbeta(4) == 0.0


# ------------------------------------------------------------------------------------- centres from labels
def test_picks_from_labels_centres_and_min_size():
    labels = np.zeros((20, 20, 20), np.uint8)
    labels[2:5, 3:6, 4:7] = 13  # 27 voxels, centre z=3 y=4 x=5
    labels[10:12, 10:12, 10:12] = 4  # 8 voxels
    labels[15, 15, 15] = 4  # a speck
    picks = picks_from_labels(labels, min_size=5, voxel_size_nm=1.0)
    assert picks.unit == "voxel" and picks.voxel_size_angstrom == 10.0
    got = {(n, tuple(np.round(p, 3))) for n, p in zip(picks.names, picks.xyz)}
    assert got == {("5MRC", (5.0, 4.0, 3.0)), ("1BXN", (10.5, 10.5, 10.5))}
    assert len(picks_from_labels(labels, min_size={13: 30, 4: 1})) == 2  # 5MRC dropped, both 1BXN kept
    with pytest.raises(DataError, match="integer"):
        picks_from_labels(labels.astype(np.float32))


def test_picks_from_probabilities_finds_peaks():
    probabilities = np.zeros((3, 16, 16, 16), np.float32)
    probabilities[0] = 1.0
    zz, yy, xx = np.meshgrid(*[np.arange(16)] * 3, indexing="ij")
    for label, (z, y, x) in ((1, (4, 5, 6)), (2, (11, 10, 9))):
        blob = np.exp(-((zz - z) ** 2 + (yy - y) ** 2 + (xx - x) ** 2) / 4.0)
        probabilities[label] = blob
        probabilities[0] -= blob
    picks = picks_from_probabilities(probabilities, min_distance=2, threshold=0.5, names={1: "a", 2: "b"})
    assert sorted(zip(picks.names, map(tuple, picks.xyz))) == [("a", (6.0, 5.0, 4.0)), ("b", (9.0, 10.0, 11.0))]


# --------------------------------------------------------------------------------------------- scorers
def _table(xyz, names, tomogram="t", unit="voxel"):
    return Picks.create(np.array(xyz, float), names, unit=unit, tomogram=tomogram, voxel_size_angstrom=10.0)


def test_paper_scores_per_class():
    truth = _table([[10, 10, 10], [30, 30, 30], [50, 50, 50]], ["a", "a", "b"])
    picks = _table([[11, 10, 10], [30, 36, 30], [50, 50, 51], [5, 5, 5]], ["a", "a", "a", "b"])
    s = paper_scores(picks, truth, {"a": 5.0, "b": 5.0})
    assert (s.per_class["a"].tp, s.per_class["a"].fp, s.per_class["a"].fn) == (1, 2, 1)
    assert (s.per_class["b"].tp, s.per_class["b"].fp, s.per_class["b"].fn) == (0, 1, 1)  # wrong class: a miss
    assert s.total == Counts(1, 3, 2) and s.headline == pytest.approx(s.total.f1)
    with pytest.raises(DataError, match="angstrom"):
        paper_scores(picks.to_angstrom(), truth, {"a": 5.0})


def test_czii_score_matches_the_challenge_arithmetic():
    # two experiments, radii x 0.5: ribosome 75 A, apo-ferritin 30 A; thyroglobulin weight 2
    truth = Picks(np.array([[1000, 1000, 1000], [2000, 2000, 2000], [500, 500, 500], [3000, 3000, 3000.0]]),
                  ["ribosome", "ribosome", "apo-ferritin", "thyroglobulin"], ["e1", "e2", "e1", "e2"],
                  np.ones(4), "angstrom")
    picks = Picks(np.array([[1070, 1000, 1000], [1000, 1010, 1000], [2100, 2000, 2000], [520, 500, 500],
                            [9000, 9000, 9000.0], [3000, 3000, 3060.0]]),
                  ["ribosome", "ribosome", "ribosome", "apo-ferritin", "apo-ferritin", "thyroglobulin"],
                  ["e1", "e1", "e2", "e1", "e9", "e2"], np.ones(6), "angstrom")
    s = czii_score(picks, truth)
    # ribosome: e1 one found by two picks -> tp 1 fp 1; e2 pick 100 A away -> fp 1, fn 1
    assert s.per_class["ribosome"] == Counts(1, 2, 1)
    assert s.per_class["apo-ferritin"] == Counts(1, 0, 0)  # the pick in e9 (not in the truth) is ignored
    assert s.per_class["thyroglobulin"] == Counts(1, 0, 0)
    expected = (Counts(1, 2, 1).fbeta(4) * 1 + 1.0 * 1 + 1.0 * 2) / 4
    assert s.headline == pytest.approx(expected)
    with pytest.raises(DataError, match="unknown particle type"):
        czii_score(picks.renamed({"ribosome": "80S"}), truth)
    with pytest.raises(DataError, match="Angstrom"):
        czii_score(picks.to_voxels(10.0), truth)


def test_shrec_scores_follow_the_official_script():
    occupancy = np.zeros((20, 20, 20), np.int32)
    occupancy[2:5, 2:5, 2:5] = 1  # particle 1: 1BXN
    occupancy[10:13, 10:13, 10:13] = 2  # particle 2: 4V94 (skipped)
    occupancy[15:18, 2:5, 2:5] = 3  # particle 3: 5MRC, never hit
    particles = [Particle("1BXN", 3, 3, 3), Particle("4V94", 11, 11, 11), Particle("5MRC", 3, 3, 16)]
    picks = _table([[3, 3, 3], [5.4, 3, 3], [11, 11, 11], [8, 8, 8]], ["3CF3", "1BXN", "4V94", "1BXN"])
    s = shrec_scores(picks, particles, occupancy)
    # pick 2 at x=5.4 rounds to 5, one voxel outside particle 1 but inside its dilation: a second hit
    assert s.extra["particles_hit_more_than_once"] == 1
    assert s.extra["picks_on_background"] == 1
    assert s.total.tp == 1 and s.extra["particles"] == 2  # 4V94 left out of the denominator
    assert s.extra["precision"] == pytest.approx(1 / 4) and s.extra["recall"] == pytest.approx(1 / 2)
    assert s.per_class["1BXN"] == Counts(1, 1, 0)  # found, but its first pick said 3CF3
    assert s.extra["confusion"] == {"1BXN -> 3CF3": 1, "5MRC -> background": 1}
    assert shrec_scores(picks, particles, occupancy, dilate=False).extra["particles_hit_more_than_once"] == 0
    with pytest.raises(DataError, match="voxels"):
        shrec_scores(picks.to_angstrom(), particles, occupancy)


# ------------------------------------------------------------------------------------------------ figures
def test_picking_figures():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mvgtutor.viz.picks import fbeta_figure, hit_rules_figure, picks_scene

    titles = [ax.get_title() for ax in hit_rules_figure().axes]
    assert "TP 4  FP 3  FN 0" in titles[0] and "TP 2  FP 5  FN 2" in titles[1] and "TP 4  picks 7" in titles[2]
    f = fbeta_figure((1.0, 4.0))
    assert "careful 0.64, eager 0.64" in f.axes[0].get_title()  # F1 is symmetric in P and R
    assert "careful 0.51, eager 0.86" in f.axes[1].get_title()  # F4 rewards the eager (high-recall) picker
    volume = np.random.default_rng(0).normal(size=(24, 24, 24)).astype(np.float32)
    truth = Picks.create([[5, 6, 7], [16, 16, 16]], ["5MRC", "1BXN"], unit="voxel")
    picks = Picks.create([[5, 6, 8], [10, 10, 10]], ["5MRC", "1BXN"], unit="voxel")
    scene = picks_scene(volume, truth, picks, [True, False])
    names = [getattr(o, "name", "") for o in scene.plot.objects]
    assert "picks (hits)" in names and "picks (false positives)" in names
    assert sum(len(ax.collections) for ax in scene.figure.axes[:3]) >= 9  # truth + hits + misses, three views
    with pytest.raises(DataError, match="voxels"):
        picks_scene(volume, truth, picks.to_angstrom(10.0))
    plt.close("all")


def test_score_three_ways_on_a_tiny_tomogram():
    from types import SimpleNamespace

    from mvgtutor.picking.evaluate import pick_hits, protein_radii_voxels, score_three_ways

    occupancy = np.zeros((30, 30, 30), np.int32)
    occupancy[2:14, 2:14, 2:14] = 1
    occupancy[20:26, 20:26, 20:26] = 2
    particles = [Particle("5MRC", 8, 8, 8), Particle("1BXN", 23, 23, 23)]
    tomogram = SimpleNamespace(name="model_9", voxel_size_nm=1.0, particles=particles, occupancy_mask=occupancy)
    picks = Picks.create([[9, 8, 8], [23, 23, 5]], ["5MRC", "1BXN"], unit="voxel")
    scores = score_three_ways(picks, tomogram)
    assert scores["paper"].total == Counts(1, 1, 1)
    assert scores["czii"].per_class["5MRC"] == Counts(1, 0, 0)  # 1 voxel off, within 0.5 x 12 nm
    assert scores["shrec"].total.tp == 1
    truth = Picks.from_particles(particles, tomogram="tomogram")
    assert pick_hits(picks, truth, protein_radii_voxels()).tolist() == [True, False]
