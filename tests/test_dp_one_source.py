"""The planner's noise and the node's draw are one source of DP arithmetic.

References by hand: Bun–Steinke ρ of the target, the planner's phase and field weights,
σ = Δ/sqrt(2ρ) on the wire (the total, issue 10), the node's share σ/sqrt(t − c); the
node's shares added up (Monte Carlo) carry the ledger's σ.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from fedseg.client.node_dp import share_stds
from fedseg.client.policy import NodePolicy
from fedseg.common.config import RunConfig
from fedseg.common.dp.noise import add_noise_shares
from fedseg.common.secagg.fixed_point import encode
from fedseg.common.schema import FeatureSchema, NumericFeature
from fedseg.common.phases.prepare import PrepareRequest
from fedseg.server.dp_planner import DPPlanner

# x0 in [0, 10], x1 in [-2, 4]: per-feature bounds b = (10, 4), p = 2, no categoricals
SCHEMA = FeatureSchema(id="id", numeric=(NumericFeature(name="x0", lower=0.0, upper=10.0),
                                         NumericFeature(name="x1", lower=-2.0, upper=4.0)))
T = 3  # the fewest nodes a round may end with


def _prep_rho() -> float:
    L = math.log(1e6)
    total = (math.sqrt(1.0 + L) - math.sqrt(L)) ** 2
    # phase weights: preprocessing 1, initialisation 2, Lloyd 5, profiles 4 (no quantiles,
    # no warm start)
    return total * 1.0 / 12.0


def test_planner_sends_the_total_sigma_by_hand():
    planner = DPPlanner(RunConfig(k=2, epsilon=1.0, delta=1e-6), SCHEMA)
    stds = planner.plan(PrepareRequest(schema=SCHEMA))
    rho = _prep_rho()
    # field weights in preprocessing: count 1, sums 1, sumsq 3 (of 5); Δ = 1, √2, √2
    sigma_count = 1.0 / math.sqrt(2 * rho / 5)
    sigma_sums = math.sqrt(2) / math.sqrt(2 * rho / 5)
    sigma_sumsq = math.sqrt(2) / math.sqrt(2 * rho * 3 / 5)
    assert stds["count"] == pytest.approx(sigma_count, rel=1e-12)
    np.testing.assert_allclose(stds["sums"], np.array([10.0, 4.0]) * sigma_sums, rtol=1e-12)
    np.testing.assert_allclose(stds["sumsq"], np.array([100.0, 16.0]) * sigma_sumsq, rtol=1e-12)
    sigmas = {r["what"]: r["sigma"] for r in planner.ledger.to_dict()["releases"]}
    assert sigmas["prepare.count"] == pytest.approx(sigma_count, rel=1e-12)
    assert sigmas["prepare.sums"] == pytest.approx(sigma_sums, rel=1e-12)


@pytest.mark.parametrize("colluders", [0, 1])
def test_node_shares_add_up_to_the_planned_sigma_monte_carlo(colluders):
    """The t − c honest shares of the t survivors carry the full σ (c colluders remove theirs)."""
    planner = DPPlanner(RunConfig(k=2, epsilon=1.0, delta=1e-6), SCHEMA)
    stds = share_stds(planner.plan(PrepareRequest(schema=SCHEMA)), threshold=T,
                      policy=NodePolicy(max_colluders=colluders))
    sigma = {r["what"]: r["sigma"] for r in planner.ledger.to_dict()["releases"]}
    draws = 20_000
    scales = {"count": 1.0, "sums": 8.0, "sumsq": 64.0}  # public fixed-point divisors
    frac_bits = 24
    zero = {tag: encode(np.zeros(n), frac_bits=frac_bits, max_nodes=T)
            for tag, n in {"count": draws, "sums": 2 * draws, "sumsq": 2 * draws}.items()}
    tiled = {tag: np.tile(np.atleast_1d(std), draws) for tag, std in stds.items()}  # `draws` replies at once
    rng = np.random.default_rng(11)
    total = {tag: np.zeros(v.shape) for tag, v in zero.items()}
    for _ in range(T - colluders):  # the honest survivors each add their share, as _secure_round does
        noisy = add_noise_shares(zero, tiled, scales, frac_bits=frac_bits, max_nodes=T, randbytes=rng.bytes)
        total = {tag: total[tag] + noisy[tag].view(np.int64) * 2.0**-frac_bits * scales[tag] for tag in total}
    total = {tag: v.reshape(draws, -1).squeeze() for tag, v in total.items()}
    assert total["count"].std() == pytest.approx(sigma["prepare.count"], rel=0.03)
    np.testing.assert_allclose(total["sums"].std(axis=0), np.array([10.0, 4.0]) * sigma["prepare.sums"], rtol=0.03)
    np.testing.assert_allclose(total["sumsq"].std(axis=0), np.array([100.0, 16.0]) * sigma["prepare.sumsq"], rtol=0.03)


def test_add_noise_shares_leaves_unreleased_tags_and_draws_from_the_os_by_default():
    vectors = {"sums": encode(np.zeros(4), frac_bits=24, max_nodes=3), "inertia": encode(np.ones(4), frac_bits=24, max_nodes=3)}
    a = add_noise_shares(vectors, {"sums": 1.0}, {"sums": 1.0, "inertia": 1.0}, frac_bits=24, max_nodes=3)
    b = add_noise_shares(vectors, {"sums": 1.0}, {"sums": 1.0, "inertia": 1.0}, frac_bits=24, max_nodes=3)
    np.testing.assert_array_equal(a["inertia"], vectors["inertia"])
    assert a["sums"].dtype == np.uint64  # integers on the fixed-point grid, ready to mask
    assert not np.array_equal(a["sums"], b["sums"])  # fresh OS bytes per call
    assert add_noise_shares(vectors, {}, {}, frac_bits=24, max_nodes=3)["sums"] is vectors["sums"]


def test_noise_that_leaves_the_fixed_point_range_is_refused():
    from fedseg.common.secagg.fixed_point import FixedPointOverflowError, max_abs_value
    edge = max_abs_value(frac_bits=0, max_nodes=3) * (1 - 1e-6)  # 3e12 below the bound
    near_edge = {"sums": encode(np.full(200, edge), frac_bits=0, max_nodes=3)}
    with pytest.raises(FixedPointOverflowError, match="noised entry"):
        add_noise_shares(near_edge, {"sums": 1e13}, {"sums": 1.0}, frac_bits=0, max_nodes=3)
