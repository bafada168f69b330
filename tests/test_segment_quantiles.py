"""Per-segment quartiles from federated per-segment histograms, against numpy on pooled data.

The reference is numpy's `np.quantile(..., method="inverted_cdf")` of the pooled values
grouped by the final model's labels, the labels computed here by hand (nearest centroid
of the pooled records, encoded with the run's scaler). The federated quartile is the left
edge of the per-segment bin that holds the pooled one: on the transformed scale it is at
most one per-segment bin width below it.
"""

from __future__ import annotations

import numpy as np
import pytest

from fedseg.client.handlers import handle
from fedseg.common import segment_quantiles as sq
from fedseg.common.config import RunConfig
from fedseg.common.preprocessing import LocalTable
from fedseg.common.profiles import ProfileStats, build_profiles
from fedseg.common.schema import FeatureSchema, NumericFeature
from fedseg.common import quantiles
from fedseg.common.messages import Scaler
from fedseg.common.phases.profile import ProfileRequest
from fedseg.common.wire import SecureRoundRequest, encode
from fedseg.server.model import build_artifact
from fedseg.server.orchestrator import Orchestrator
from fedseg.server.report.markdown import markdown_report, readable
from tests.helpers import numeric_nodes, transport

QS = [0.25, 0.5, 0.75]
N = 9000


def money_data(n: int = N, seed: int = 0) -> np.ndarray:
    """Three latent groups with skewed income and spend, and a symmetric age."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 3, n)
    income = np.exp(rng.normal(10.0 + 0.6 * group, 0.5))
    monetary = np.exp(rng.normal(4.0 + 1.0 * group, 0.8))
    age = rng.normal(30.0 + 10.0 * group, 5.0).clip(18, 100)
    return np.column_stack([income, monetary, age])


def money_schema() -> FeatureSchema:
    """income and monetary take part in the quantile phase (robust scaling), age does not."""
    return FeatureSchema(id="id", numeric=(
        NumericFeature(name="income", transform="log1p", lower=0.0, upper=1e6, scaling="robust"),
        NumericFeature(name="monetary", transform="log1p", lower=0.0, upper=1e5, scaling="robust"),
        NumericFeature(name="age", lower=18.0, upper=100.0),
    ))


def pooled_labels(X: np.ndarray, result) -> np.ndarray:
    """Nearest final centroid of every pooled record (log1p on the money columns)."""
    T = np.column_stack([np.log1p(X[:, 0]), np.log1p(X[:, 1]), X[:, 2]])
    Z = (T - result.scaler.mean) / result.scaler.scale
    d2 = np.square(Z[:, None, :] - result.chosen.centroids[None, :, :]).sum(axis=2)
    return d2.argmin(axis=1)


def quartiles_of(artifact) -> dict:
    """(segment, feature) -> (q25, median, q75) of the money features."""
    return {(s.id, n): (s.profile.numeric[n].q25, s.profile.numeric[n].median, s.profile.numeric[n].q75)
            for s in artifact.segments for n in ("income", "monetary")}


def run(X, parts, secure=False, sent=None, **cfg):
    """(result, artifact) of a k=3 run; `sent` (a list) collects the requests."""
    nodes = numeric_nodes(X, parts)
    tr = transport(nodes)
    config = RunConfig(k=3, seed=1, restarts=1, secure=secure, **cfg)
    result = Orchestrator(config, money_schema(), tr, list(nodes)).run()
    if sent is not None:
        sent.extend(tr.sent)
    return result, build_artifact(result, config, money_schema())


@pytest.fixture(scope="module")
def data():
    return money_data()


@pytest.fixture(scope="module")
def plain(data):
    parts = np.array_split(np.random.default_rng(1).permutation(N), 3)
    return run(data, parts)


# ---- by hand ------------------------------------------------------------------------


def test_public_bins_merge_to_at_most_256():
    assert sq.merge_factor(4096) == 16 and sq.merge_factor(256) == 1 and sq.merge_factor(730) == 3
    assert sq.segment_bins(NumericFeature(name="r", lower=0.0, upper=730.0, bins=730)) == 244  # 243·3 + 1
    assert sq.segment_bins(NumericFeature(name="m", lower=0.0, upper=1.0)) == 256
    assert sq.segment_bin_width(NumericFeature(name="r", lower=0.0, upper=730.0, bins=730)) == 3.0


def test_toy_segment_histograms_and_quartiles_by_hand():
    # Prepare: 20 public bins of width 1 on [0, 20] (no merging); two segments
    f = NumericFeature(name="x", lower=0.0, upper=20.0, bins=20, score="high")
    schema = FeatureSchema(id="id", numeric=(f, NumericFeature(name="y", lower=0.0, upper=1.0)))
    x = np.array([1, 2, 2, 3, 9, 10, 10, 10, 11, 19], dtype=float)
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    table = LocalTable(ids=np.arange(10).astype(str), numeric=np.column_stack([x, np.zeros(10)]),
                       codes=np.zeros((10, 0), np.int64))
    # Execute
    hist = sq.local_segment_histograms(table, schema, labels, 2)
    quart = sq.segment_quartiles(hist, schema)["x"]
    # Assert: segment 0 holds 1 2 2 3 -> n·q = 1, 2, 3 -> values 1, 2, 2;
    # segment 1 holds 9 10 10 10 11 19 -> n·q = 1.5, 3, 4.5 -> sorted positions 2, 3, 5 -> 10, 10, 11
    assert hist.shape == (2, 20) and hist.sum() == 10
    assert hist[0].tolist()[:4] == [0, 1, 2, 1] and hist[1, 10] == 3 and hist[1, 19] == 1
    assert quart.tolist() == [[1.0, 2.0, 2.0], [10.0, 10.0, 11.0]]
    for j in range(2):
        assert quart[j].tolist() == np.quantile(x[labels == j], QS, method="inverted_cdf").tolist()


def test_noisy_segment_histograms_are_denoised_row_by_row():
    # row 1: cumsum 3 1 1 6 5 -> running max 3 3 3 6 6 -> 3 0 0 3 0
    # row 2: cumsum -2 -1 3 3 3 -> floored 0 0 3 3 3 -> 0 0 3 0 0 (row 1's mass does not leak in)
    noisy = np.array([[3, -2, 0, 5, -1], [-2, 1, 4, 0, 0]])
    assert quantiles.denoised_counts(noisy).tolist() == [[3, 0, 0, 3, 0], [0, 0, 3, 0, 0]]


def test_small_segments_get_no_quartiles():
    # Prepare: segment 1 holds 3 customers, below a minimum release size of 5; segment 0
    # holds 8, enough for a mean but not for quartiles (they need 4 x 5 = 20)
    f = NumericFeature(name="x", lower=0.0, upper=10.0, bins=10, scaling="robust")
    schema = FeatureSchema(id="id", numeric=(f,))
    hist = np.array([[0, 2, 4, 2, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 1, 1, 1]])
    counts = hist.sum(axis=1)
    sums = np.array([[16.0], [24.0]])
    stats = ProfileStats(counts, sums, sums * 3, np.zeros((2, 0)), histograms=hist)
    # Execute
    profiles = build_profiles(stats, schema, min_size=5)
    relaxed = build_profiles(stats, schema, min_size=2)  # quartiles from 8 customers
    # Assert
    assert profiles[1] is None
    p = profiles[0].numeric["x"]
    assert p.mean == 2.0 and (p.q25, p.median, p.q75) == (None, None, None)
    p = relaxed[0].numeric["x"]
    assert (p.q25, p.median, p.q75) == (1.0, 2.0, 2.0)  # n·q = 2, 4, 6 -> bins 1, 2, 2
    assert relaxed[1].numeric["x"].median is None  # 3 customers described, 3 < 8: no quartiles


# ---- simulated runs -------------------------------------------------------------------


def test_segment_quartiles_equal_pooled_numpy_within_one_bin(plain, data):
    result, artifact = plain
    labels = pooled_labels(data, result)
    assert np.bincount(labels, minlength=3).tolist() == [s.size for s in artifact.segments]
    worst = 0.0
    for i, f in enumerate(money_schema().numeric[:2]):
        width = sq.segment_bin_width(f)
        for seg in artifact.segments:
            p = seg.profile.numeric[f.name]
            ref = np.log1p(np.quantile(data[labels == seg.id, i], QS, method="inverted_cdf"))
            fed = np.log1p([p.q25, p.median, p.q75])
            gap = ref - fed
            assert (gap >= -1e-9).all() and (gap < width).all(), (f.name, seg.id, fed, ref)
            worst = max(worst, float(gap.max() / width))
    assert seg.profile.numeric["age"].median is None  # not in the quantile phase
    print(f"largest gap: {worst:.3f} per-segment bin widths")


def test_segment_quartiles_do_not_depend_on_the_split(plain, data):
    result, artifact = plain
    by_income = np.array_split(np.argsort(data[:, 0]), 5)  # very non-iid: nodes by income band
    other, other_art = run(data, by_income)
    np.testing.assert_array_equal(other.profile.histograms, result.profile.histograms)
    assert quartiles_of(other_art) == quartiles_of(artifact)


def test_secure_segment_quartiles_equal_plaintext(plain, data):
    result, artifact = plain
    parts = np.array_split(np.random.default_rng(1).permutation(N), 3)
    sent = []
    secure, secure_art = run(data, parts, secure=True, sent=sent)
    # the histograms travelled masked, as one more vector of the profile round
    (profile_round,) = [r for r in sent if isinstance(r, SecureRoundRequest) and isinstance(r.inner, ProfileRequest)]
    assert profile_round.round.vectors["histograms"] == 3 * 2 * 256
    assert not any(isinstance(r, ProfileRequest) for r in sent)
    np.testing.assert_array_equal(np.rint(secure.profile.histograms), result.profile.histograms)
    assert quartiles_of(secure_art) == quartiles_of(artifact)


def test_profile_reply_size_does_not_grow_with_records(data):
    schema = money_schema()
    scaler = Scaler(mean=np.log1p(data).mean(0), scale=np.log1p(data).std(0))
    request = ProfileRequest(schema=schema, scaler=scaler, centroids=np.zeros((6, 3)))
    small, large = numeric_nodes(data, [np.arange(50), np.arange(N)]).values()
    a, b = handle(request, small), handle(request, large)
    assert a.histograms.shape == b.histograms.shape == (6, 2 * 256)
    assert a.histograms.sum() == 2 * 50 and b.histograms.sum() == 2 * N
    assert abs(len(encode(a)) - len(encode(b))) <= 4


def test_markdown_report_shows_the_median_next_to_the_mean(plain):
    _, artifact = plain
    text = markdown_report(artifact)
    for seg in artifact.segments:
        p = seg.profile.numeric["income"]
        assert f"income {readable(p.mean)} (median {readable(p.median)})" in text
        assert f"| {seg.id} {seg.name} | income | {readable(p.median)} | {readable(p.q25)} – {readable(p.q75)} |" in text
