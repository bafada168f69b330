"""Federated Lloyd against scikit-learn on the pooled data, and hand-computed toys."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs

from fedseg.common import kmeans


def federated_lloyd(parts: list[np.ndarray], C0: np.ndarray, max_iter: int = 300) -> np.ndarray:
    """Lloyd where each round sums the per-part statistics, as the server does."""
    C = C0.copy()
    k = len(C0)
    for _ in range(max_iter):
        stats = [kmeans.local_stats(P, C, [k]) for P in parts]
        total = sum(stats[1:], stats[0])
        new = kmeans.update_centroids(total, C)
        if kmeans.centroid_shift(C, new, [k])[0] == 0.0:
            return new
        C = new
    return C


def test_hand_computed_four_points():
    # Prepare: two obvious pairs, initial centroids on the first points
    X = np.array([[0.0, 0.0], [0.0, 2.0], [10.0, 0.0], [10.0, 2.0]])
    C0 = np.array([[0.0, 0.0], [10.0, 0.0]])
    # Execute
    stats = kmeans.local_stats(X[:3], C0, [2]) + kmeans.local_stats(X[3:], C0, [2])
    # Assert: sums, counts, inertia by hand
    assert_allclose(stats.sums, [[0.0, 2.0], [20.0, 2.0]])
    assert_allclose(stats.counts, [2, 2])
    assert_allclose(stats.inertia, [4.0, 4.0])
    assert_allclose(stats.dist, [2.0, 2.0])
    # silhouette of (0,0): a=0, b=10 -> 1; of (0,2): a=2, b=sqrt(104) -> 1 - 2/sqrt(104)
    s = 1 + (1 - 2 / np.sqrt(104))
    assert_allclose(stats.silhouette, [s, s])
    assert_allclose(kmeans.update_centroids(stats, C0), [[0.0, 1.0], [10.0, 1.0]])


@pytest.mark.parametrize("n_parts", [1, 3, 7])
@pytest.mark.parametrize("k", [3, 6])
def test_federated_lloyd_equals_sklearn_on_pooled_data(n_parts, k):
    X, _ = make_blobs(3000, 5, centers=k + 1, cluster_std=2.0, random_state=k)
    rng = np.random.default_rng(0)
    C0 = X[rng.choice(len(X), k, replace=False)]
    parts = np.array_split(X[rng.permutation(len(X))], n_parts)
    ours = federated_lloyd(parts, C0)
    ref = KMeans(k, init=C0, n_init=1, algorithm="lloyd", tol=0.0, max_iter=300).fit(X)
    assert_allclose(np.sort(ours, axis=0), np.sort(ref.cluster_centers_, axis=0), atol=1e-9, rtol=0)
    assert_allclose(ours, ref.cluster_centers_, atol=1e-9, rtol=0)
    inertia = sum(kmeans.local_stats(P, ours, [k]).inertia.sum() for P in parts)
    assert inertia == pytest.approx(ref.inertia_, rel=1e-9)


def test_stack_equals_separate_candidates():
    X, _ = make_blobs(2000, 4, centers=5, random_state=1)
    rng = np.random.default_rng(1)
    cands = [X[rng.choice(len(X), k, replace=False)] for k in (2, 3, 5)]
    stacked = kmeans.local_stats(X, np.vstack(cands), [2, 3, 5])
    offs = kmeans.offsets_of([2, 3, 5])
    for m, C in enumerate(cands):
        alone = kmeans.local_stats(X, C, [len(C)])
        sl = slice(offs[m], offs[m + 1])
        assert_allclose(stacked.sums[sl], alone.sums, atol=1e-9)
        assert_allclose(stacked.counts[sl], alone.counts)
        assert_allclose(stacked.inertia[sl], alone.inertia, rtol=1e-12)
        assert_allclose(stacked.silhouette[sl], alone.silhouette, rtol=1e-12)


def test_blocks_do_not_change_the_result(monkeypatch):
    X, _ = make_blobs(1000, 3, centers=3, random_state=2)
    C = X[:3]
    whole = kmeans.local_stats(X, C, [3])
    monkeypatch.setattr(kmeans, "_BLOCK_ROWS", 37)
    blocked = kmeans.local_stats(X, C, [3])
    assert_allclose(blocked.sums, whole.sums, rtol=1e-12)
    assert_allclose(blocked.counts, whole.counts)


def test_empty_cluster_keeps_old_or_takes_reseed():
    X = np.array([[0.0], [1.0]])
    C = np.array([[0.5], [100.0]])
    stats = kmeans.local_stats(X, C, [2])
    assert stats.counts.tolist() == [2, 0]
    assert_allclose(kmeans.update_centroids(stats, C), [[0.5], [100.0]])
    assert_allclose(kmeans.update_centroids(stats, C, reseed=np.array([[0.0], [42.0]])), [[0.5], [42.0]])


def test_assign_matches_sklearn_predict():
    X, _ = make_blobs(500, 3, centers=4, random_state=3)
    ref = KMeans(4, n_init=3, random_state=0).fit(X)
    assert (kmeans.assign(X, ref.cluster_centers_) == ref.predict(X)).all()
