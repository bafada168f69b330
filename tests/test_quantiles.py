"""Federated quantiles from histograms over public bins, against numpy on pooled data.

The must-show: CDNOW split into 5 stores, each store holding only its purchases; the
federated RFM quintile edges and 1-5 scores equal those of the pooled data (recency and
frequency exactly, monetary within one public bin width). The pooled reference is built
here with pandas from the raw purchase log, not with `common.rfm`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from fedseg.common import quantiles
from fedseg.common.config import RunConfig
from fedseg.common.preprocessing import LocalTable
from fedseg.common.schema import FeatureSchema, NumericFeature
from fedseg.server.model import build_artifact
from fedseg.server.orchestrator import Orchestrator
from fedseg.simulations.cdnow import CDNOW_AS_OF, cdnow_store_transactions, cdnow_transactions_schema, load_cdnow_transactions
from tests.helpers import NORMAL_IQR, frame_nodes, numeric_nodes, transport

QS = [0.2, 0.4, 0.6, 0.8]


def pooled_rfm() -> pd.DataFrame:
    """Recency (days), frequency (rows) and monetary (sum) per customer, by pandas."""
    tx = load_cdnow_transactions()
    g = tx.groupby("customer_id")
    return pd.DataFrame({
        "recency_days": (pd.Timestamp(CDNOW_AS_OF) - g["date"].max()).dt.days,
        "frequency": g.size(),
        "monetary": g["amount"].sum(),
    })


def reference_scores(values: np.ndarray, edges: np.ndarray, low_is_good: bool) -> np.ndarray:
    high = 1 + (values[:, None] > edges[None, :]).sum(axis=1)
    return 6 - high if low_is_good else high


@pytest.fixture(scope="module")
def cdnow_run():
    schema = cdnow_transactions_schema()
    nodes = frame_nodes(cdnow_store_transactions(5))
    config = RunConfig(k=4, restarts=1, seed=3)
    orch = Orchestrator(config, schema, transport(nodes), list(nodes))
    result = orch.run()
    return result, build_artifact(result, config, schema), pooled_rfm()


def test_toy_histogram_quantiles_by_hand():
    # Prepare: values 0..9 once each, plus 3 twice more (12 values); bins of width 1 on [0, 10]
    f = NumericFeature(name="x", lower=0.0, upper=10.0, bins=10, score="high")
    schema = FeatureSchema(id="id", numeric=(f,))
    values = np.array([0, 1, 2, 3, 3, 3, 4, 5, 6, 7, 8, 9], dtype=float)
    table = LocalTable(ids=np.arange(12).astype(str), numeric=values[:, None], codes=np.zeros((12, 0), np.int64))
    # Execute
    counts = quantiles.local_histograms(table, schema)
    q = quantiles.summarize(f, counts)
    # Assert: n*q = 2.4, 4.8, 7.2, 9.6 -> sorted positions 3, 5, 8, 10 -> values 2, 3, 5, 7
    assert counts.tolist() == [1, 1, 1, 3, 1, 1, 1, 1, 1, 1]
    assert q.quintile_edges == [2.0, 3.0, 5.0, 7.0]
    assert_allclose(q.quintile_edges, np.quantile(values, QS, method="inverted_cdf"))
    s = quantiles.local_scores(table, schema, np.array([q.quintile_bins]))[:, 0]
    assert s.tolist() == [1, 1, 1, 2, 2, 2, 3, 3, 4, 4, 5, 5]


def test_cdnow_five_stores_quintile_edges_equal_pooled(cdnow_run):
    result, _, pooled = cdnow_run
    found = {q.name: q for q in result.quantiles}
    schema = cdnow_transactions_schema()
    for f in schema.numeric:
        ref = np.quantile(pooled[f.name].to_numpy(float), QS, method="inverted_cdf")
        fed = np.asarray(found[f.name].quintile_edges)
        if f.name == "recency_days":  # one public bin per day: exact
            assert fed.tolist() == ref.tolist()
        else:  # log1p bins: at most one bin width below, on the transformed scale
            gap = np.log1p(ref) - np.log1p(fed)
            assert (gap >= -1e-12).all() and (gap < found[f.name].bin_width).all(), (f.name, fed, ref)


def test_cdnow_scores_equal_pooled(cdnow_run):
    result, artifact, pooled = cdnow_run
    found = {q.name: q for q in result.quantiles}
    schema = cdnow_transactions_schema()
    ids = pooled.index.to_numpy()
    table = LocalTable(ids=ids, numeric=pooled[schema.numeric_names].to_numpy(float), codes=np.zeros((len(ids), 0), np.int64))
    fed = quantiles.local_scores(table, schema, quantiles.score_edge_bins(schema, result.quantiles))
    for j, f in enumerate(schema.numeric):
        v = pooled[f.name].to_numpy(float)
        ref = reference_scores(v, np.quantile(v, QS, method="inverted_cdf"), f.score == "low")
        if f.name == "monetary":  # customers sharing a bin with an edge may differ by one
            low, high, bins = quantiles.grid(f)
            edge_bins = set(found[f.name].quintile_bins)
            in_edge_bin = np.isin(quantiles.bin_index(np.log1p(v), low, high, bins), list(edge_bins))
            assert (fed[~in_edge_bin, j] == ref[~in_edge_bin]).all()
            assert (np.abs(fed[:, j] - ref) <= 1).all() and (fed[:, j] != ref).mean() < 0.01
        else:
            assert (fed[:, j] == ref).all(), f.name
    # each segment's mean score in the artifact equals the pooled scores averaged per segment
    from fedseg.client.assign import segment_labels

    labels = segment_labels(artifact, table)
    for seg in artifact.segments:
        mine = labels == seg.id
        assert mine.sum() == seg.size
        for j, f in enumerate(schema.numeric):
            v = pooled[f.name].to_numpy(float)
            ref = reference_scores(v, np.quantile(v, QS, method="inverted_cdf"), f.score == "low")
            tol = 1e-12 if f.name != "monetary" else 0.02
            assert seg.profile.scores[f.name] == pytest.approx(ref[mine].mean(), abs=tol)


def test_cdnow_segment_quartiles_equal_pooled_within_one_segment_bin(cdnow_run):
    from fedseg.client.assign import segment_labels
    from fedseg.common.segment_quantiles import segment_bin_width

    result, artifact, pooled = cdnow_run
    schema = cdnow_transactions_schema()
    table = LocalTable(ids=pooled.index.to_numpy(), numeric=pooled[schema.numeric_names].to_numpy(float),
                       codes=np.zeros((len(pooled), 0), np.int64))
    labels = segment_labels(artifact, table)
    for seg in artifact.segments:
        mine = labels == seg.id
        for f in schema.numeric:
            ref = np.quantile(pooled.loc[mine, f.name].to_numpy(float), [0.25, 0.5, 0.75], method="inverted_cdf")
            p = seg.profile.numeric[f.name]
            fed = np.array([p.q25, p.median, p.q75])
            if f.name == "recency_days":  # 730 daily bins merged 3 by 3: left edges every 3 days
                assert (fed % 3 == 0).all() and ((ref - fed >= 0) & (ref - fed < 3)).all(), (seg.id, fed, ref)
            else:
                gap = np.log1p(ref) - np.log1p(fed)
                assert ((gap >= -1e-9) & (gap < segment_bin_width(f))).all(), (seg.id, f.name, fed, ref)


def test_cdnow_winsor_limits_and_scaler(cdnow_run):
    result, artifact, pooled = cdnow_run
    m = next(q for q in result.quantiles if q.name == "monetary")
    logm = np.log1p(pooled["monetary"].to_numpy(float))
    ref = np.log1p(np.quantile(pooled["monetary"].to_numpy(float), [0.01, 0.99], method="inverted_cdf"))
    lo, hi = m.winsor_limits
    assert ref[0] - m.bin_width < lo <= ref[0] and ref[1] <= hi < ref[1] + m.bin_width
    # monetary is money: scaled by default by the pooled median and IQR / 1.349 (the IQR
    # of a standard normal), each within one public bin of the pooled inverted-CDF values
    q1, med, q3 = np.quantile(logm, [0.25, 0.5, 0.75], method="inverted_cdf")
    assert med - m.bin_width < result.scaler.mean[2] <= med
    assert result.scaler.scale[2] == pytest.approx((q3 - q1) / NORMAL_IQR, abs=2 * m.bin_width / NORMAL_IQR)
    assert m.scaling == "robust" and artifact.quantiles[2]["scaling"] == "robust"
    assert artifact.run.feature_schema.numeric[2].winsor_limits == (lo, hi)
    assert artifact.quantiles[2]["name"] == "monetary"
    # recency is not money: standard scaling, pooled mean/std
    rec = pooled["recency_days"].to_numpy(float)
    assert result.scaler.mean[0] == pytest.approx(rec.mean(), rel=1e-12)
    assert result.scaler.scale[0] == pytest.approx(rec.std(), rel=1e-9)


def test_standard_scaling_opt_out_uses_winsorized_mean_and_std():
    # Prepare: the CDNOW schema with monetary's default robust scaling turned off
    schema = cdnow_transactions_schema()
    money = schema.numeric[2].model_copy(update={"scaling": "standard"})
    schema = schema.model_copy(update={"numeric": (*schema.numeric[:2], money)})
    nodes = frame_nodes(cdnow_store_transactions(3))
    # Execute
    result = Orchestrator(RunConfig(k=3, restarts=1, seed=3), schema, transport(nodes), list(nodes)).run()
    # Assert: the scaler is the pooled mean/std of log monetary clipped at the winsor limits
    m = next(q for q in result.quantiles if q.name == "monetary")
    clipped = np.clip(np.log1p(pooled_rfm()["monetary"].to_numpy(float)), *m.winsor_limits)
    assert m.scaling == "standard"
    assert result.scaler.mean[2] == pytest.approx(clipped.mean(), rel=1e-12)
    assert result.scaler.scale[2] == pytest.approx(clipped.std(), rel=1e-9)


def test_robust_scaling_is_median_and_iqr():
    # Prepare: heavy-tailed money on three nodes, integer-valued so unit bins are exact
    rng = np.random.default_rng(1)
    x = np.floor(rng.lognormal(4.0, 1.2, size=3000)).clip(0, 999)
    f = NumericFeature(name="x0", lower=0.0, upper=1000.0, bins=1000, scaling="robust")
    schema = FeatureSchema(id="id", numeric=(f,))
    parts = np.array_split(rng.permutation(len(x)), 3)
    nodes = numeric_nodes(x[:, None], parts)
    # Execute
    result = Orchestrator(RunConfig(k=3, restarts=1), schema, transport(nodes), list(nodes)).run()
    # Assert: centre = median, scale = (Q3 - Q1) / (IQR of a standard normal), from the
    # inverted-CDF quantiles of the pooled data
    q1, med, q3 = np.quantile(x, [0.25, 0.5, 0.75], method="inverted_cdf")
    assert result.scaler.mean[0] == med
    assert result.scaler.scale[0] == pytest.approx((q3 - q1) / NORMAL_IQR, rel=1e-12)


def test_quantiles_under_dp_are_released_with_noise():
    """No longer refused: a DP run histograms, budgets and releases the quantiles
    (quality and ledger: tests/test_dp_extensions.py)."""
    schema = cdnow_transactions_schema()
    nodes = frame_nodes(cdnow_store_transactions(3))
    result = Orchestrator(RunConfig(k=3, epsilon=1.0), schema, transport(nodes), list(nodes)).run()
    assert [q.name for q in result.quantiles] == schema.numeric_names
    assert "quantiles" in {r["phase"] for r in result.privacy["releases"]}


def test_secure_quantiles_equal_plaintext():
    # Prepare: 5 stores of a small synthetic purchase log
    rng = np.random.default_rng(7)
    n = 4000
    tx = pd.DataFrame({
        "customer_id": rng.integers(0, 900, n).astype(str),
        "date": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 360, n), unit="D"),
        "amount": np.round(rng.lognormal(3, 1, n), 2) + 0.01,
    })
    store = tx["customer_id"].astype(int) % 5
    frames = [tx[store == s] for s in range(5)]
    schema = cdnow_transactions_schema(as_of=None)
    runs = {}
    for secure in (False, True):
        nodes = frame_nodes(frames)
        # min-segment-size 5: 886 customers are too few for 1 % winsor limits with 10 on each side
        config = RunConfig(k=3, restarts=1, secure=secure, as_of="2024-12-31", min_segment_size=5)
        runs[secure] = Orchestrator(config, schema, transport(nodes), list(nodes)).run()
    # Assert: the same quintile bins and the same mean scores per segment
    for a, b in zip(runs[False].quantiles, runs[True].quantiles):
        assert a.quintile_bins == b.quintile_bins and a.winsor_limits == b.winsor_limits
    assert_allclose(runs[True].profile.scores, runs[False].profile.scores, atol=1e-4)
    assert runs[False].schema.transactions.as_of.isoformat() == "2024-12-31"
