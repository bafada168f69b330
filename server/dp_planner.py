"""Differential privacy for a run: which fields each phase releases, with how much noise.

Distributed Gaussian mechanism under secure aggregation: every node adds its share
N(0, σ²/t) to each released field, t being the fewest nodes a round may end with, so the
unmasked sum carries noise of variance at least σ² and the server never sees a sum
without it. σ per field comes from the field's L2 sensitivity (records clipped to the
schema's public bounds; add/remove one customer) and its share of the zCDP budget; the
ledger records every release and refuses one over budget.
"""

from __future__ import annotations

import math

import numpy as np

from common import privacy
from common.config import RunConfig
from common.preprocessing import transform_numeric
from common.schema import FeatureSchema
from common.wire import (
    BucketCountsRequest,
    BucketSumsRequest,
    LloydRequest,
    PrepareRequest,
    ProfileRequest,
    Request,
    Scaler,
)

LLOYD_PHASE_WEIGHT = 5.0
TAG_WEIGHTS = {"count": 1.0, "counts": 1.0, "sums": 3.0, "sumsq": 1.0, "category_counts": 1.0}


def _box(schema: FeatureSchema) -> np.ndarray:
    return np.array([[f.lower for f in schema.numeric], [f.upper for f in schema.numeric]], dtype=float)


def scaled_record_norm(schema: FeatureSchema, scaler: Scaler) -> float:
    """Largest L2 norm of an encoded, scaled record whose values lie in the public box."""
    p = len(schema.numeric)
    q = schema.n_encoded - p
    lo_hi = np.hstack([transform_numeric(_box(schema), schema), np.array([[0.0] * q, [1.0] * q])])
    return float(np.sqrt(np.square(np.abs((lo_hi - scaler.mean) / scaler.scale).max(axis=0)).sum()))


def _feature_bounds(values: np.ndarray) -> np.ndarray:
    """Largest |value| per feature over a 2 × p box (at least a tiny positive number)."""
    return np.maximum(np.abs(values).max(axis=0), 1e-12)


class DPPlanner:
    """Per phase request: released fields, per-node noise std per field, ledger entries."""

    def __init__(self, config: RunConfig, schema: FeatureSchema, min_survivors: int) -> None:
        self.schema = schema
        self.min_survivors = min_survivors
        self.ledger = privacy.PrivacyLedger(
            privacy.BudgetPlan(
                epsilon=config.epsilon, delta=config.delta, max_rounds=config.max_rounds,
                round_weight=LLOYD_PHASE_WEIGHT / config.max_rounds, initialization_weight=2.0,
            )
        )
        self.count_sigma: dict[str, float] = {}

    def sensitivities(self, request: Request) -> tuple[str, float, dict[str, float], dict[str, np.ndarray]]:
        """(ledger phase, ρ of this release, Δ per released field, per-entry weights).

        Per-feature sums are released as sums of values divided by their public bound
        (Δ = √p), i.e. with noise proportional to each feature's own bound: a feature
        ranging to 10,000 does not drown one ranging to 100."""
        s, plan = self.schema, self.ledger.plan
        n_cat = math.sqrt(len(s.categorical))
        root_p = math.sqrt(len(s.numeric))
        if isinstance(request, (PrepareRequest, ProfileRequest)):
            raw = isinstance(request, ProfileRequest)
            bound = _feature_bounds(_box(s) if raw else transform_numeric(_box(s), s))
            k = len(request.centroids) if raw else 1
            weights = {"sums": np.tile(bound, k), "sumsq": np.tile(np.square(bound), k)}
            deltas = {"count" if not raw else "counts": 1.0, "sums": root_p, "sumsq": root_p}
            if s.categorical:
                deltas["category_counts"] = n_cat
            phase = "profiling" if raw else "preprocessing"
            return phase, plan.rho_for(phase), deltas, weights
        norm = scaled_record_norm(s, request.scaler)
        if isinstance(request, BucketCountsRequest) and not isinstance(request, BucketSumsRequest):
            tables = math.sqrt(request.normals.shape[0])
            return "initialization", plan.rho_for("initialization") / 2, {"counts": tables}, {}
        if isinstance(request, BucketSumsRequest):
            tables = math.sqrt(request.normals.shape[0])
            return "initialization", plan.rho_for("initialization") / 2, {
                "sums": tables * norm, "counts": tables}, {}
        assert isinstance(request, LloydRequest)
        cands = math.sqrt(len(request.sizes))
        return "lloyd", plan.rho_for("lloyd"), {"sums": cands * norm, "counts": cands}, {}

    def plan(self, request: Request) -> dict[str, float | list[float]]:
        """Per-node noise std per released field, a scalar or one per entry (fields not
        listed are not released)."""
        phase, rho, deltas, weights = self.sensitivities(request)
        total = sum(TAG_WEIGHTS[t] for t in deltas)
        noise: dict[str, float] = {}
        for tag, delta in deltas.items():
            rho_tag = rho * TAG_WEIGHTS[tag] / total
            sigma = privacy.sigma_for(rho=rho_tag, sensitivity=delta)
            self.ledger.record(phase, "distributed-gaussian", rho_tag, sigma, delta, f"{request.phase}.{tag}")
            share = sigma / math.sqrt(self.min_survivors)
            noise[tag] = (share * weights[tag]).tolist() if tag in weights else share
            if tag in ("count", "counts"):
                self.count_sigma[request.phase] = sigma
        return noise

    def privacy_section(self) -> dict:
        return {**self.ledger.to_dict(), "mode": "dp+secure", "noise": "distributed Gaussian, added by nodes"}
