"""Customers shared between units counted once (issue 12 item 4): whole in-process runs
against scikit-learn on the deduplicated pooled table, and what the server sees."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs

from fedseg.common.config import RunConfig
from fedseg.common.psi import group
from fedseg.common.psi.protocol import STATE
from fedseg.common.schema import FeatureSchema, NumericFeature
from fedseg.server.orchestrator import Orchestrator
from fedseg.simulations.overlap import shared_parts
from tests.helpers import numeric_nodes, numeric_schema, transport

X, _ = make_blobs(3000, 4, centers=5, cluster_std=2.0, random_state=11)


def split(n_units: int, seed: int = 0) -> list[np.ndarray]:
    """The pooled rows over `n_units`, then 30 % of the customers copied into a second unit."""
    rng = np.random.default_rng(seed)
    return shared_parts(np.array_split(rng.permutation(len(X)), n_units), 0.3, rng)


BOUNDED = FeatureSchema(id="id", numeric=tuple(NumericFeature(name=f"x{j}", lower=-40.0, upper=40.0) for j in range(4)))


def run(parts, **config):
    nodes = numeric_nodes(X, parts)
    tr = transport(nodes)
    schema = BOUNDED if config.get("secure") else numeric_schema(4)
    result = Orchestrator(RunConfig(**{"k": 5, "seed": 3, **config}), schema, tr, list(nodes)).run()
    return result, tr


def cost(Xs: np.ndarray, centroids: np.ndarray) -> float:
    return float(((Xs[:, None, :] - centroids[None]) ** 2).sum(axis=2).min(axis=1).sum())


@pytest.mark.parametrize("n_units,secure", [(3, False), (5, True)])
def test_dedup_counts_every_customer_once_and_matches_sklearn_on_the_deduplicated_table(n_units, secure):
    parts = split(n_units)
    rows = np.concatenate(parts)
    assert len(rows) == 3900 and len(np.unique(rows)) == 3000  # 900 customers in two units
    result, _ = run(parts, dedup=True, secure=secure)

    assert int(result.profile.counts.sum()) == 3000 and result.n_customers == 3000
    assert_allclose(result.scaler.mean, X.mean(0), rtol=1e-9)  # the scaler of the unique customers
    assert_allclose(result.scaler.scale, X.std(0), rtol=1e-9)
    Xs = (X - X.mean(0)) / X.std(0)
    reference = KMeans(5, n_init=10, random_state=0).fit(Xs).inertia_
    assert cost(Xs, result.chosen.centroids) / reference <= 1.01
    assert result.dedup["shared_customers"] == 900 and result.dedup["duplicate_rows_removed"] == 900
    assert result.dedup["units"] == n_units


def test_without_dedup_shared_customers_are_counted_twice():
    parts = split(4)
    result, _ = run(parts)
    duplicated = X[np.concatenate(parts)]
    assert int(result.profile.counts.sum()) == len(duplicated) == 3900
    assert_allclose(result.scaler.mean, duplicated.mean(0), rtol=1e-9)
    assert result.dedup is None


def test_owners_are_spread_over_the_holders():
    """The keyed-hash owner rule: about half of a pair's shared customers stay with each."""
    parts = split(2, seed=5)
    _, tr = run(parts, dedup=True)
    removed = [json.loads(tr.states[n]["dedup"])["removed"] for n in sorted(tr.states)]
    assert sum(removed) == 900
    assert all(abs(r - 450) < 4 * np.sqrt(900 * 0.25) for r in removed), removed


def test_overlap_below_the_floor_is_not_released():
    parts = split(3)
    result, _ = run(parts, dedup=True, k=2, min_segment_size=901)
    assert result.dedup["shared_customers"] is None and result.dedup["duplicate_rows_removed"] is None


def _byte_fields(value):
    """Every base64 string of a decoded JSON message, decoded (the relayed blobs)."""
    if isinstance(value, dict):
        for v in value.values():
            yield from _byte_fields(v)
    elif isinstance(value, list):
        for v in value:
            yield from _byte_fields(v)
    elif isinstance(value, str) and len(value) >= 44:
        try:
            yield base64.urlsafe_b64decode(value)  # pydantic's JSON bytes: URL-safe base64
        except ValueError:
            return


def test_the_server_receives_no_id_no_point_and_no_token():
    parts = split(3)
    _, tr = run(parts, dedup=True)
    ids = [str(i) for i in range(len(X))]
    hashed = group.hash_ids(ids)
    scalars = [json.loads(tr.states[n][STATE])["scalar"] for n in sorted(tr.states)]
    scalars = [base64.urlsafe_b64decode(s) for s in scalars]
    once = [group.blind(a, hashed) for a in scalars]
    twice = [group.blind(b, pts) for a_pts in once for b in scalars for pts in [a_pts]]
    secret = {p[:group.TOKEN_BYTES] for pts in [hashed, *once, *twice] for p in pts}
    seen = [payload for _, payload in tr.received]
    blobs = [b for payload in seen for b in _byte_fields(json.loads(payload))]
    assert sum(len(b) for b in blobs) > 3900 * 32  # the relayed lists are there, sealed
    for blob in blobs:  # no point at any offset of any relayed blob
        windows = {blob[i:i + group.TOKEN_BYTES] for i in range(len(blob) - group.TOKEN_BYTES + 1)}
        assert not windows & secret
    text = b"".join(seen).decode()
    assert '"psi_sealed"' in text and '"psi_key"' in text
    psi = [json.loads(p) for p in seen if json.loads(p)["phase"].startswith("psi_")]
    assert len(psi) == 3 * 3  # per node its key and two sealed lists; the match reply is a bare "ready"
    for message in psi:  # a signed key, or lists sealed per peer: no id, count or pattern in the clear
        assert set(message) in ({"protocol", "phase", "node_id", "public_key", "identity", "signature"},
                                {"protocol", "phase", "sealed"}), set(message)


def test_the_report_states_the_overlap_or_why_not():
    from fedseg.server.report.markdown import overlap_text

    assert overlap_text({"units": 4, "shared_customers": 900, "duplicate_rows_removed": 900}) == (
        "900 customers were held by more than one of the 4 units; each was counted once, from one owner "
        "(900 duplicate rows left out)")
    assert "not shown" in overlap_text({"units": 3, "shared_customers": None, "duplicate_rows_removed": None})
