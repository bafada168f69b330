"""Criteria from aggregates against scikit-learn on the pooled data."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score

from fedseg.common import kmeans
from fedseg.common.metrics import Criteria, choose_k, criteria


@pytest.mark.parametrize("k", [2, 4, 7])
def test_criteria_equal_sklearn_on_pooled_labels(k):
    X, _ = make_blobs(2500, 4, centers=5, cluster_std=1.5, random_state=k)
    ref = KMeans(k, n_init=5, random_state=0, tol=0.0).fit(X)
    labels = ref.predict(X)
    centers = np.vstack([X[labels == j].mean(axis=0) for j in range(k)])  # exact label means
    parts = np.array_split(X, 4)
    stats = [kmeans.local_stats(P, centers, [k]) for P in parts]
    total = sum(stats[1:], stats[0])
    got = criteria(total, centers)
    assert got.calinski_harabasz == pytest.approx(calinski_harabasz_score(X, labels), rel=1e-9)
    assert got.davies_bouldin == pytest.approx(davies_bouldin_score(X, labels), rel=1e-9)
    d = np.sqrt(((X[:, None, :] - centers[None]) ** 2).sum(-1))
    d.sort(axis=1)
    a, b = d[:, 0], d[:, 1]
    assert got.silhouette == pytest.approx(np.mean((b - a) / np.maximum(a, b)), rel=1e-9)
    assert got.inertia == pytest.approx(((X - centers[labels]) ** 2).sum(), rel=1e-9)


def test_ch_uses_cluster_means_not_stale_centroids():
    X, _ = make_blobs(800, 3, centers=3, random_state=5)
    stale = np.array([[0.0, 0.0, 0.0], [5.0, 5.0, 5.0], [-5.0, 5.0, 0.0]])
    labels = kmeans.assign(X, stale)
    got = criteria(kmeans.local_stats(X, stale, [3]), stale)
    assert got.calinski_harabasz == pytest.approx(calinski_harabasz_score(X, labels), rel=1e-9)


def test_choose_k_rules():
    table = [
        Criteria(k=2, inertia=10, calinski_harabasz=5, davies_bouldin=0.9, silhouette=0.3),
        Criteria(k=3, inertia=8, calinski_harabasz=9, davies_bouldin=0.4, silhouette=0.2),
        Criteria(k=4, inertia=7, calinski_harabasz=7, davies_bouldin=0.6, silhouette=0.5),
    ]
    assert choose_k(table, "silhouette").k == 4
    assert choose_k(table, "calinski_harabasz").k == 3
    assert choose_k(table, "davies_bouldin").k == 3
