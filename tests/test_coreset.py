"""Coreset initialisation: exact aggregates across nodes, disclosure, and quality."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs

from fedseg.common import coreset, kmeans


def test_bucket_ids_by_hand():
    planes = coreset.Hyperplanes(
        normals=np.array([[[1.0, 0.0], [0.0, 1.0]]]), offsets=np.array([[0.0, 0.0]])
    )
    X = np.array([[1.0, 1.0], [-1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]])
    # bit 0: x > 0, bit 1: y > 0
    assert coreset.bucket_ids(X, planes)[:, 0].tolist() == [3, 2, 1, 0]


def test_bucket_aggregates_sum_over_nodes_to_pooled():
    X, _ = make_blobs(3000, 5, centers=4, random_state=0)
    X = (X - X.mean(0)) / X.std(0)
    planes = coreset.draw_hyperplanes(5, 3, 6, np.random.default_rng(0))
    parts = np.array_split(X, 5)
    counts = sum(coreset.local_bucket_counts(P, planes) for P in parts)
    ids = coreset.bucket_ids(X, planes)
    assert_allclose(counts, np.bincount(ids.ravel(), minlength=planes.n_buckets))
    dense = coreset.dense_buckets(counts, 10)
    got = [coreset.local_bucket_sums(P, planes, dense) for P in parts]
    sums, dcounts = sum(g[0] for g in got), sum(g[1] for g in got)
    for j, b in enumerate(dense):  # reference: plain masks on the pooled data
        members = (ids == b).any(axis=1)
        assert dcounts[j] == members.sum()
        assert_allclose(sums[j], X[members].sum(axis=0), atol=1e-9)


def test_no_coreset_point_describes_fewer_than_min_release():
    rng = np.random.default_rng(1)
    X = np.vstack([rng.standard_normal((500, 3)), [[40.0, 40.0, 40.0]]])  # one outlier
    planes = coreset.draw_hyperplanes(3, 4, 8, rng)
    counts = coreset.local_bucket_counts(X, planes)
    dense = coreset.dense_buckets(counts, 10)
    sums, dcounts = coreset.local_bucket_sums(X, planes, dense)
    core = coreset.build_coreset(sums, dcounts)
    assert (core.weights >= 10).all()
    assert not np.isclose(core.points, X[-1]).all(axis=1).any()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_coreset_seeds_reach_sklearn_quality(seed):
    X, _ = make_blobs(8000, 8, centers=6, cluster_std=3.0, random_state=seed)
    X = (X - X.mean(0)) / X.std(0)
    planes = coreset.draw_hyperplanes(8, 4, 10, np.random.default_rng(seed))
    counts = coreset.local_bucket_counts(X, planes)
    dense = coreset.dense_buckets(counts, 10)
    core = coreset.build_coreset(*coreset.local_bucket_sums(X, planes, dense))
    best = np.inf
    for C in coreset.seed_candidates(core, 6, 3, seed):
        for _ in range(50):
            new = kmeans.update_centroids(kmeans.local_stats(X, C, [6]), C)
            if kmeans.centroid_shift(C, new, [6])[0] < 1e-8:
                break
            C = new
        best = min(best, kmeans.local_stats(X, C, [6]).inertia.sum())
    ref = KMeans(6, n_init=10, random_state=0).fit(X).inertia_
    assert best / ref <= 1.01


def test_too_few_dense_buckets_is_a_clear_error():
    core = coreset.Coreset(points=np.zeros((2, 3)), weights=np.ones(2))
    with pytest.raises(ValueError, match="dense coreset buckets"):
        coreset.seed_candidates(core, 3, 1, 0)


def test_coarsened_counts_equal_counts_with_fewer_hyperplanes():
    # Prepare: 4 tables of 6 planes over 2,000 points in 5 dimensions
    rng = np.random.default_rng(4)
    X = rng.standard_normal((2000, 5))
    planes = coreset.draw_hyperplanes(5, 4, 6, rng)
    full = coreset.local_bucket_counts(X, planes)
    for fewer in (6, 4, 1):
        # Execute: merge the fine counts on the server
        merged = coreset.coarsened_counts(full, 4, 6, fewer)
        # Assert: the same as hashing the records again with only the first `fewer` planes
        direct = coreset.local_bucket_counts(X, coreset.truncated(planes, fewer))
        np.testing.assert_array_equal(merged, direct)
        assert merged.sum() == 4 * 2000


def test_finest_bits_keeps_planes_until_too_few_buckets_are_dense():
    # one table, 3 planes: 8 buckets; codes 0..7 with these counts (hand-made)
    counts = np.array([9, 9, 9, 9, 1, 1, 1, 30])
    # 3 planes: 1 bucket ≥ 10; 2 planes (pairs 0+4, 1+5, 2+6, 3+7): 10, 10, 10, 39 → 4 dense
    assert coreset.finest_bits(counts, 1, 3, 10, wanted=1) == 3
    assert coreset.finest_bits(counts, 1, 3, 10, wanted=4) == 2
    # 1 plane: 20, 59 → 2 dense; nothing reaches 5: the plane count with the most dense (2)
    assert coreset.finest_bits(counts, 1, 3, 10, wanted=5) == 2


def test_a_few_hundred_customers_still_get_a_coreset():
    """300 customers, k = 3: with 12 planes per table no bucket holds 10 customers; the
    server drops planes until there are 5 dense buckets per segment."""
    from fedseg.common.config import RunConfig
    from fedseg.server.orchestrator import Orchestrator
    from fedseg.common.synthetic import generate_customers, synthetic_schema
    from tests.helpers import frame_nodes, transport

    schema = synthetic_schema()
    nodes = frame_nodes([generate_customers(300, 1, 3)[list(schema.columns)]])
    events = []
    result = Orchestrator(RunConfig(k=3, min_nodes=1), schema, transport(nodes), list(nodes),
                          on_event=events.append).run()
    sizes = [e.message for e in events if e.message.startswith("coreset of")]
    assert int(sizes[0].split()[2]) >= 15
    assert result.chosen.k == 3


def test_reliable_buckets_fall_back_to_the_k_largest():
    sizes = np.array([500.0, 20.0, -3.0, 300.0, 90.0])
    # enough buckets above the noise floor: exactly those
    assert coreset.reliable_buckets(sizes, 80.0, 3).tolist() == [True, False, False, True, True]
    # too few: the 4 largest with a positive size instead
    assert coreset.reliable_buckets(sizes, 400.0, 4).tolist() == [True, True, False, True, True]
    # never a bucket whose noisy size is not positive
    assert coreset.reliable_buckets(sizes, 400.0, 5).tolist() == [True, True, False, True, True]


def test_padded_coreset_keeps_its_points_and_adds_weighted_extras():
    core = coreset.Coreset(points=np.array([[0.0, 0.0], [4.0, 0.0]]), weights=np.array([30.0, 10.0]))
    out = coreset.padded(core, 5, np.random.default_rng(0))
    assert_allclose(out.points[:2], core.points)
    assert out.weights.tolist() == [30.0, 10.0, 10.0, 10.0, 10.0]
    assert out.points.shape == (5, 2) and np.all(np.isfinite(out.points))
    assert coreset.padded(core, 2, np.random.default_rng(0)) is core  # nothing missing
    # k-means++ can now seed 5 centroids where it could not before
    assert len(coreset.seed_candidates(out, 5, 1, 0)[0]) == 5
