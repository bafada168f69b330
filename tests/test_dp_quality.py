"""DP quality machinery: clipping in the scaled space, centred preprocessing sums, the
noise-aware scaler, the candidate choice from released sums, and the ledger of a whole
run checked against zCDP composition computed by hand (independent of the planner)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fedseg.client.handlers import NodeData, handle
from fedseg.common import kmeans
from fedseg.common.config import RunConfig
from fedseg.common.preprocessing import LocalTable, PrepareStats, local_prepare_stats, scaler_from_stats, transform_numeric
from fedseg.common.dp.noise import clip_rows
from fedseg.common.dp.sensitivity import grouped_sum_sensitivity, max_record_norm, scaled_box
from fedseg.common.messages import Scaler
from fedseg.common.phases.lloyd import LloydRequest
from fedseg.common.phases.prepare import PrepareRequest
from fedseg.server import dp_planner
from fedseg.server.dp_planner import DPPlanner
from fedseg.server.orchestrator import Candidate, Orchestrator
from fedseg.simulations.local_transport import LocalTransport
from fedseg.common.synthetic import generate_customers, synthetic_schema
from tests.helpers import frame_nodes, numeric_schema

SCHEMA = synthetic_schema()


# ---- clipping ------------------------------------------------------------------------


def test_clip_rows_by_hand():
    X = np.array([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0], [-6.0, 8.0]])
    out = clip_rows(X, 1.0)
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.3, 0.4], [0.0, 0.0], [-0.6, 0.8]])
    assert X[0, 0] == 3.0  # the input is not modified
    with pytest.raises(ValueError):
        clip_rows(X, 0.0)
    with pytest.raises(ValueError):
        clip_rows(X[0], 1.0)


def test_clipped_group_sums_sensitivity_by_brute_force_add_remove():
    """Adding one customer, however far out, moves the stacked per-group sums of clipped
    rows by at most sqrt(groupings) · R, and a far customer attains it."""
    rng = np.random.default_rng(3)
    R, groupings = 1.5, 3
    D = rng.normal(size=(50, 4)) * 2
    centres = [rng.normal(size=(k, 4)) for k in (2, 3, 4)]

    def stacked(X):
        stats = kmeans.local_stats(clip_rows(X, R), np.vstack(centres), [2, 3, 4])
        return stats.sums.ravel(), stats.counts

    base = stacked(D)
    worst_sum = worst_count = 0.0
    for x in np.vstack([rng.normal(size=(100, 4)) * 10, [[1e6, -1e6, 0, 0]]]):
        s, c = stacked(np.vstack([D, x]))
        worst_sum = max(worst_sum, np.linalg.norm(s - base[0]))
        worst_count = max(worst_count, np.linalg.norm(c - base[1]))
    assert worst_sum == pytest.approx(math.sqrt(groupings) * R)
    assert worst_count == pytest.approx(math.sqrt(groupings))
    assert grouped_sum_sensitivity(record_norm=100.0, n_groupings=groupings, clip_norm=R) == pytest.approx(math.sqrt(3) * 1.5)
    # clipping never makes a row longer than the box allows
    assert grouped_sum_sensitivity(record_norm=2.0, n_groupings=4, clip_norm=10.0) == pytest.approx(4.0)


def test_lloyd_handler_sums_clipped_rows_only_when_asked():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(300, 3)) * 3
    table = LocalTable(ids=np.arange(300).astype(str), numeric=X, codes=np.zeros((300, 0), np.int64))
    schema = numeric_schema(3)
    node = NodeData("dpq-lloyd", lambda s: table)
    scaler = Scaler(mean=np.zeros(3), scale=np.ones(3))
    C = rng.normal(size=(2, 3))
    plain = handle(LloydRequest(schema=schema, scaler=scaler, centroids=C, sizes=[2]), node)
    clipped = handle(LloydRequest(schema=schema, scaler=scaler, centroids=C, sizes=[2], clip_norm=2.0), node)
    ref_plain = kmeans.local_stats(X, C, [2])
    Xc = X * np.minimum(1.0, 2.0 / np.linalg.norm(X, axis=1))[:, None]
    ref_clip = kmeans.local_stats(Xc, C, [2])
    np.testing.assert_allclose(plain.sums, ref_plain.sums)
    np.testing.assert_allclose(clipped.sums, ref_clip.sums)
    np.testing.assert_array_equal(clipped.counts, ref_clip.counts)


# ---- preprocessing ---------------------------------------------------------------------


def test_centred_prepare_stats_and_noiseless_scaler_match_the_plain_one():
    df = generate_customers(3000, 4, seed=2).drop(columns=["true_segment", "department"])
    node = frame_nodes([df])[1]
    table = node.table(SCHEMA)
    planner = DPPlanner(RunConfig(k=4, epsilon=1.0), SCHEMA)
    c = planner.prepare_center()
    box = np.array([[f.lower for f in SCHEMA.numeric], [f.upper for f in SCHEMA.numeric]])
    np.testing.assert_allclose(c, (transform_numeric(box, SCHEMA)[0] + transform_numeric(box, SCHEMA)[1]) / 2)
    values = transform_numeric(table.numeric, SCHEMA)
    centred = local_prepare_stats(table, SCHEMA, c)
    np.testing.assert_allclose(centred.sums, (values - c).sum(0))
    np.testing.assert_allclose(centred.sumsq, np.square(values - c).sum(0))
    reply = handle(PrepareRequest(schema=SCHEMA, center=c), node)
    np.testing.assert_allclose(reply.sumsq, centred.sumsq)
    # without noise, the centred route gives the plain scaler (population std)
    mean, scale = planner.scaler(centred, c)
    ref_mean, ref_scale = scaler_from_stats(local_prepare_stats(table, SCHEMA))
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(scale, ref_scale, rtol=1e-7)
    np.testing.assert_allclose(mean[: values.shape[1]], values.mean(0), rtol=1e-9)
    np.testing.assert_allclose(scale[: values.shape[1]], values.std(0), rtol=1e-7)


def test_centred_prepare_sensitivity_uses_half_widths():
    planner = DPPlanner(RunConfig(k=4, epsilon=1.0), SCHEMA)
    c = planner.prepare_center()
    _, _, deltas, weights = planner.sensitivities(PrepareRequest(schema=SCHEMA, center=c))
    box = transform_numeric(np.array([[f.lower for f in SCHEMA.numeric], [f.upper for f in SCHEMA.numeric]]), SCHEMA)
    half = (box[1] - box[0]) / 2
    np.testing.assert_allclose(weights["sums"], half)
    np.testing.assert_allclose(weights["sumsq"], half**2)
    assert deltas["sums"] == pytest.approx(math.sqrt(len(SCHEMA.numeric)))
    # brute force: one customer at any corner adds (x - c)_j / half_j, of norm sqrt(p)
    corner = np.where(np.arange(len(half)) % 2 == 0, box[0], box[1])
    assert np.linalg.norm((corner - c) / half) == pytest.approx(deltas["sums"])


def test_noisy_variance_is_floored_at_twice_its_noise_std():
    planner = DPPlanner(RunConfig(k=4, epsilon=1.0), SCHEMA)
    c = planner.prepare_center()
    planner.plan(PrepareRequest(schema=SCHEMA, center=c))
    sd = planner.entry_sigma["prepare.sumsq"]
    p, q = len(SCHEMA.numeric), SCHEMA.n_encoded - len(SCHEMA.numeric)
    n = 1000
    stats = PrepareStats(n, np.zeros(p), -np.ones(p), np.full(q, 2000.0))  # negative "variance"
    mean, scale = planner.scaler(stats, c)
    np.testing.assert_allclose(scale[:p], np.sqrt(2 * sd / n))
    assert np.all(np.isfinite(scale)) and np.all(scale > 0)  # shares clipped into (0, 1)


# ---- candidate choice -------------------------------------------------------------------


def test_best_candidate_from_sums_and_counts_matches_the_true_cost():
    rng = np.random.default_rng(9)
    X = np.vstack([rng.normal(m, 0.5, size=(200, 2)) for m in ([0, 0], [4, 0], [0, 4])])
    planner = DPPlanner(RunConfig(k=3, epsilon=1.0), numeric_schema(2))
    cands, costs = [], []
    for _ in range(6):
        C = X[rng.choice(len(X), 3, replace=False)]
        stats = kmeans.local_stats(X, C, [3])
        new = kmeans.update_centroids(stats, C)
        cands.append(Candidate(3, new, stats=stats, evaluated=C))
        costs.append(kmeans.local_stats(X, new, [3]).inertia.sum() if np.all(stats.counts > 0) else np.inf)
    chosen = planner.best(cands)
    assert costs[next(i for i, c in enumerate(cands) if c is chosen)] == pytest.approx(min(costs))


# ---- the ledger of a whole run, against composition by hand -------------------------------


@pytest.fixture(scope="module")
def dp_run():
    df = generate_customers(6000, 4, seed=8).drop(columns=["true_segment"])
    frames = [g.drop(columns=["department"]) for _, g in df.groupby("department")]
    tr = LocalTransport(frame_nodes(frames))
    config = RunConfig(k=4, seed=1, max_rounds=4, epsilon=1.0, delta=1e-6)
    orch = Orchestrator(config, SCHEMA, tr, list(tr.nodes))
    return orch.run(), orch


def test_ledger_matches_zcdp_composition_by_hand(dp_run):
    result, orch = dp_run
    releases = result.privacy["releases"]
    L = math.log(1e6)
    rho_total = (math.sqrt(1.0 + L) - math.sqrt(L)) ** 2  # Bun–Steinke, solved by hand
    # the synthetic schema's money features (income, monetary) are robust-scaled by default,
    # so the run also releases the quantile-phase histograms
    w = {"quantiles": dp_planner.QUANTILES_WEIGHT,
         "preprocessing": dp_planner.PREPROCESSING_WEIGHT, "initialization": dp_planner.INITIALIZATION_WEIGHT,
         "lloyd": dp_planner.LLOYD_PHASE_WEIGHT, "profiling": dp_planner.PROFILING_WEIGHT}
    share = {ph: rho_total * v / sum(w.values()) for ph, v in w.items()}
    spent = {ph: sum(r["rho"] for r in releases if r["phase"] == ph) for ph in w}
    for ph in ("quantiles", "preprocessing", "initialization", "profiling"):
        assert spent[ph] == pytest.approx(share[ph], rel=1e-9)
    assert spent["lloyd"] == pytest.approx(share["lloyd"] * result.lloyd_rounds / 4, rel=1e-9)
    total = sum(r["rho"] for r in releases)
    assert total <= rho_total * (1 + 1e-9)
    eps = total + 2 * math.sqrt(total * L)
    assert result.privacy["epsilon"] == pytest.approx(eps, rel=1e-12)
    assert eps <= 1.0 + 1e-9
    # each release: ρ = Δ²/(2σ²) with Δ computed here from the public clip radius
    R = dp_planner.CLIP_PER_ROOT_D * math.sqrt(SCHEMA.n_encoded)
    radius = min(R, max_record_norm(*scaled_box(SCHEMA, result.scaler)))
    for r, nxt in zip(releases, releases[1:] + [None]):
        assert r["rho"] == pytest.approx(r["sensitivity"] ** 2 / (2 * r["sigma"] ** 2), rel=1e-9)
        if r["what"] == "lloyd.sums":  # released with the counts of the same candidates
            assert nxt["what"] == "lloyd.counts"
            cands = nxt["sensitivity"] ** 2
            assert cands == pytest.approx(round(cands)) and 1 <= round(cands) <= orch.release.planner.candidates
            assert r["sensitivity"] == pytest.approx(math.sqrt(round(cands)) * radius)
        if r["what"] == "bucket_sums.sums":
            assert r["sensitivity"] == pytest.approx(math.sqrt(dp_planner.INIT_TABLES) * radius)
        if r["what"] == "prepare.sums":
            assert r["sensitivity"] == pytest.approx(math.sqrt(len(SCHEMA.numeric)))
    assert {r["what"] for r in releases} >= {"lloyd.sums", "bucket_sums.sums", "prepare.sums"}


def test_clip_radius_is_public_and_far_below_the_box(dp_run):
    result, orch = dp_run
    R = orch.release.clip_norm
    assert R == pytest.approx(dp_planner.CLIP_PER_ROOT_D * math.sqrt(SCHEMA.n_encoded))
    assert R < max_record_norm(*scaled_box(SCHEMA, result.scaler)) / 2
    # a segment whose noisy count fell below min-segment-size is merged (disclosure control)
    assert result.chosen.centroids.shape == (4 - result.merged, SCHEMA.n_encoded) and result.merged <= 1
