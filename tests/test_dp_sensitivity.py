"""Tests of common.dp.sensitivity: brute force over neighbouring datasets, hand values."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from fedseg.common.dp.noise import clip_to_bounds
from fedseg.common.dp.sensitivity import (
    category_count_sensitivity,
    bounded_sum_sensitivity,
    count_sensitivity,
    feature_bounds,
    grouped_sum_sensitivity,
    histogram_sensitivity,
    max_entry_bound,
    max_record_norm,
    scaled_bounds,
    score_sum_sensitivity,
)

def local_cluster_stats(X: np.ndarray, centroids: np.ndarray):
    """Per-cluster sums, counts, inertia of X against centroids (written for the test)."""
    k = centroids.shape[0]
    d2 = ((X[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
    labels = d2.argmin(axis=1)
    sums = np.zeros_like(centroids)
    counts = np.zeros(k)
    inertia = np.zeros(k)
    for i, c in enumerate(labels):
        sums[c] += X[i]
        counts[c] += 1
        inertia[c] += d2[i, c]
    return sums, counts, inertia


def test_score_sum_sensitivity_by_brute_force():
    """Adding a customer with scores in 1..5 to one segment moves the per-segment score
    sums by at most 5·sqrt(n_scored), attained by all-5 scores."""
    rng = np.random.default_rng(4)
    worst = 0.0
    for _ in range(200):
        change = np.zeros((3, 2))  # 3 segments, 2 scored features
        change[rng.integers(3)] = rng.integers(1, 6, size=2)
        worst = max(worst, float(np.linalg.norm(change)))
    worst = max(worst, float(np.linalg.norm([5.0, 5.0])))
    assert score_sum_sensitivity(n_scored=2) == pytest.approx(worst) == pytest.approx(5 * math.sqrt(2))
    assert histogram_sensitivity(n_tables=3) == pytest.approx(math.sqrt(3))  # one bin per feature


# ----------------------------------------------------------------------------- sensitivities

BOX_LO = np.array([-1.0, -3.0, 0.5])
BOX_HI = np.array([2.0, 1.0, 4.0])
# farthest corner from 0: (2, -3, 4) -> sqrt(4 + 9 + 16) = sqrt(29)


def _corners(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return np.array(list(itertools.product(*zip(lo, hi, strict=True))))


def cluster_sum_sensitivity(*, lower, upper, n_groupings: int = 1) -> float:
    """The planner's Δ of unclipped stacked cluster sums over a box."""
    return grouped_sum_sensitivity(record_norm=max_record_norm(lower, upper), n_groupings=n_groupings)


def test_cluster_sum_sensitivity_hand_made_box():
    assert max_record_norm(lower=BOX_LO, upper=BOX_HI) == pytest.approx(math.sqrt(29))
    assert cluster_sum_sensitivity(lower=BOX_LO, upper=BOX_HI) == pytest.approx(math.sqrt(29))
    assert cluster_sum_sensitivity(lower=BOX_LO, upper=BOX_HI, n_groupings=3) == pytest.approx(
        math.sqrt(3 * 29)
    )


def test_cluster_stats_sensitivities_by_brute_force_add_remove():
    rng = np.random.default_rng(0)
    D = rng.uniform(BOX_LO, BOX_HI, size=(40, 3))
    candidates = [rng.uniform(BOX_LO, BOX_HI, size=(k, 3)) for k in (2, 3, 4)]
    added = np.vstack([_corners(BOX_LO, BOX_HI), rng.uniform(BOX_LO, BOX_HI, size=(200, 3))])

    def stacked(X):
        stats = [local_cluster_stats(X, C) for C in candidates]
        sums = np.concatenate([s.ravel() for s, _, _ in stats])
        counts = np.concatenate([c for _, c, _ in stats])
        inertia = np.concatenate([i for _, _, i in stats])
        return sums, counts, inertia

    base_one = local_cluster_stats(D, candidates[0])
    base = stacked(D)
    worst_one = worst_sum = worst_count = worst_inertia = 0.0
    for x in added:
        D2 = np.vstack([D, x])
        one = local_cluster_stats(D2, candidates[0])
        worst_one = max(worst_one, np.linalg.norm(one[0] - base_one[0]))
        s, c, i = stacked(D2)
        worst_sum = max(worst_sum, np.linalg.norm(s - base[0]))
        worst_count = max(worst_count, np.linalg.norm(c - base[1]))
        worst_inertia = max(worst_inertia, np.linalg.norm(i - base[2]))

    # the worst added customer attains the bound exactly
    assert worst_one == pytest.approx(cluster_sum_sensitivity(lower=BOX_LO, upper=BOX_HI))
    stacked_bound = cluster_sum_sensitivity(lower=BOX_LO, upper=BOX_HI, n_groupings=3)
    assert worst_sum == pytest.approx(stacked_bound)
    assert worst_count == pytest.approx(count_sensitivity(n_groupings=3))
    assert count_sensitivity(n_groupings=3) == pytest.approx(math.sqrt(3))
    assert count_sensitivity() == 1.0
    # secure_layout's per-entry inertia bound: squared distance across the cube [-b, b]^d
    b = max_entry_bound(BOX_LO, BOX_HI)
    assert b == 4.0  # |4| is the largest |bound| by hand
    assert worst_inertia <= math.sqrt(3) * 4.0 * 3 * b * b + 1e-12


def test_inertia_entry_bound_covers_the_attained_box_diameter():
    # widths 3, 4, 3.5 -> 9 + 16 + 12.25: one centroid at a corner, the customer opposite
    _, _, inertia = local_cluster_stats(BOX_HI[None, :], BOX_LO[None, :])
    assert inertia[0] == pytest.approx(37.25)
    b = max_entry_bound(BOX_LO, BOX_HI)
    assert inertia[0] <= 4.0 * 3 * b * b == pytest.approx(192.0)


def test_feature_sum_and_sumsq_sensitivities_by_hand_and_brute_force():
    lo, hi = np.array([-2.0, 1.0]), np.array([1.0, 3.0])
    # sums: max |x| = (2, 3) -> sqrt(13); squares: max x^2 = (4, 9) -> sqrt(16 + 81)
    bounds = feature_bounds(lower=lo, upper=hi)
    assert_allclose(bounds, [2.0, 3.0])
    assert max_record_norm(lower=lo, upper=hi) == pytest.approx(math.sqrt(13))
    assert float(np.linalg.norm(bounds**2)) == pytest.approx(math.sqrt(97))
    rng = np.random.default_rng(1)
    points = np.vstack([_corners(lo, hi), rng.uniform(lo, hi, size=(500, 2)), [[0.0, 1.0]]])
    assert np.linalg.norm(points, axis=1).max() == pytest.approx(math.sqrt(13))
    assert np.linalg.norm(points**2, axis=1).max() == pytest.approx(math.sqrt(97))
    # the planner releases sums divided by these bounds: Δ = sqrt(p), attained at a corner
    assert np.linalg.norm(points / bounds, axis=1).max() == pytest.approx(math.sqrt(2))
    assert np.linalg.norm(points**2 / bounds**2, axis=1).max() == pytest.approx(math.sqrt(2))
    assert bounded_sum_sensitivity(n_features=2) == pytest.approx(math.sqrt(2))


def test_count_like_sensitivities():
    assert category_count_sensitivity(n_categorical=3) == pytest.approx(math.sqrt(3))
    assert histogram_sensitivity() == 1.0
    assert histogram_sensitivity(n_tables=4) == 2.0


def test_scaled_bounds_contain_standardised_clipped_records():
    lo_s, hi_s = scaled_bounds(
        lower=[0.0, 10.0], upper=[100.0, 20.0], mean=[50.0, 12.0], scale=[25.0, 4.0]
    )
    assert_allclose(lo_s, [-2.0, -0.5])
    assert_allclose(hi_s, [2.0, 2.0])
    assert cluster_sum_sensitivity(lower=lo_s, upper=hi_s) == pytest.approx(math.sqrt(8))
    rng = np.random.default_rng(2)
    raw = rng.normal([50, 15], [80, 10], size=(1000, 2))
    z = (clip_to_bounds(raw, [0.0, 10.0], [100.0, 20.0]) - [50.0, 12.0]) / [25.0, 4.0]
    assert np.all(z >= lo_s - 1e-12) and np.all(z <= hi_s + 1e-12)


def test_sensitivity_needs_finite_ordered_bounds():
    with pytest.raises(ValueError, match="finite"):
        cluster_sum_sensitivity(lower=[0.0, -np.inf], upper=[1.0, 1.0])
    with pytest.raises(ValueError, match="above"):
        max_record_norm(lower=[2.0], upper=[1.0])
    with pytest.raises(ValueError, match="n_groupings"):
        cluster_sum_sensitivity(lower=[0.0], upper=[1.0], n_groupings=0)
