"""Differential privacy for a run: which fields each phase releases, with how much noise.

Distributed Gaussian mechanism under secure aggregation: the request states the total σ
of every released field and every node adds its own share N(0, σ²/(t − c)), t being the
round's threshold and c the colluders its own policy tolerates (`client/node_dp.py`), so
the unmasked sum carries noise of variance at least σ² and the server never sees a sum
without it. The server cannot know each node's c, and its ledger below is the server's
claim; each node that sets a DP limit books the same releases in its own ledger, which
is the guarantee (PRIVACY.md, "Threat model: a deviating server"). σ per field comes
from the field's L2 sensitivity (records clipped to the schema's public bounds;
add/remove one customer) and its share of the zCDP budget; the ledger records every
release and refuses one over budget.

Quality at small ε (PRIVACY.md, "Differential privacy"): the preprocessing sums are
centred on the public box's midpoint; sums of scaled records (coreset buckets, Lloyd)
are of records clipped to the public radius R = CLIP_PER_ROOT_D · sqrt(d), far below the
box's largest norm; a few candidates run together and the best is picked from their
released sums and counts (post-processing).
"""

from __future__ import annotations

import math

import numpy as np

from fedseg.common.dp import accounting, sensitivity
from fedseg.common.dp.ledger import BudgetPlan, PrivacyLedger
from fedseg.common.config import RunConfig
from fedseg.common.dp.segment_limits import centres_in_original_units, centroid_limits, spread_limits
from fedseg.common.messages import Scaler, SchemaRequest
from fedseg.common.phases import bounds
from fedseg.common.phases.registry import phase_for
from fedseg.common.phases.segment_spread import SpreadReply, SpreadRequest, limits_and_centres
from fedseg.common.preprocessing import PrepareStats
from fedseg.common.schema import FeatureSchema

PREPROCESSING_WEIGHT = 1.0
INITIALIZATION_WEIGHT = 2.0
LLOYD_PHASE_WEIGHT = 5.0
PROFILING_WEIGHT = 4.0  # what a marketer reads: segment means (issue 11 item 3)
QUANTILES_WEIGHT = 1.0  # federated histograms, only if a feature needs quantiles
TRANSITIONS_WEIGHT = 1.0  # warm-start transition table, only with a warm start
TAG_WEIGHTS = {"count": 1.0, "counts": 1.0, "sums": 3.0, "sumsq": 1.0, "category_counts": 1.0,
               "scores": 1.0, "histograms": 1.0}
PHASE_TAG_WEIGHTS = {"preprocessing": {"count": 1.0, "sums": 1.0,
                                         "sumsq": 3.0, "category_counts": 1.0},
                     "profiling": {"counts": 1.0, "deviations": 4.0, "sums": 8.0, "sumsq": 1.0, "category_counts": 1.0,
                                   "scores": 0.5, "histograms": 1.0}}
PROFILE_CLIP_LEVEL = 0.99  # released global quantile a profile sum is clipped above (x factor)
PROFILE_CLIP_FACTOR = 2.0
CLIP_PER_ROOT_D = 1.25
CANDIDATES = 3
AVERAGED_ROUNDS = 5  # at most this many of the last half of the Lloyd rounds are averaged
INIT_TABLES = 2
INIT_PER_BUCKET = 20.0


class DPPlanner:
    """Per phase request: released fields, total noise std per field, ledger entries."""

    def __init__(self, config: RunConfig, schema: FeatureSchema, warm_start: bool | None = None) -> None:
        """`warm_start` (default: the config's) budgets the transition table; the
        histogram phase is budgeted when the schema has quantile features."""
        warm = bool(config.warm_start) if warm_start is None else warm_start
        self.schema = schema
        self.ledger = PrivacyLedger(
            BudgetPlan(
                epsilon=config.epsilon, delta=config.delta, max_rounds=config.max_rounds,
                round_weight=LLOYD_PHASE_WEIGHT / config.max_rounds,
                preprocessing_weight=PREPROCESSING_WEIGHT, initialization_weight=INITIALIZATION_WEIGHT,
                profiling_weight=PROFILING_WEIGHT,
                quantiles_weight=QUANTILES_WEIGHT if schema.quantile_indices else 0.0,
                transitions_weight=TRANSITIONS_WEIGHT if warm else 0.0,
            )
        )
        self.count_sigma: dict[str, float] = {}
        self.sum_sigma: dict[str, float] = {}
        self.entry_sigma: dict[str, np.ndarray] = {}  # noise std per entry of weighted fields
        self.clip_norm = CLIP_PER_ROOT_D * math.sqrt(schema.n_encoded)
        self.candidates = CANDIDATES

    def coreset_shape(self, n: float, max_bits: int) -> tuple[int, int]:
        """Hash tables and hyperplanes per table of the DP coreset: few, large buckets,
        so that their noisy means stay close to the truth."""
        per_bucket = INIT_PER_BUCKET * max(1.0, 3.0 * self.count_sigma.get("prepare", 0.0))
        return INIT_TABLES, int(np.clip(np.log2(max(n, 1) / per_bucket), 3, max_bits))

    def sensitivities(self, request: SchemaRequest) -> tuple[str, float, dict[str, float], dict[str, np.ndarray]]:
        """(ledger phase, ρ of this release, Δ per released field, per-entry weights), as
        the request's phase declares them (`Phase.dp_release`), records bounded by the
        planner's schema."""
        release = phase_for(request).dp_release(request, self.schema)
        rho = self.ledger.plan.rho_for(release.ledger_phase) * release.share
        return release.ledger_phase, rho, release.deltas, release.weights

    def plan(self, request: SchemaRequest) -> dict[str, float | list[float]]:
        """Total noise std σ per released field, a scalar or one per entry (fields not
        listed are not released); each node draws its share of it."""
        phase, rho, deltas, weights = self.sensitivities(request)
        tag_weights = {**TAG_WEIGHTS, **PHASE_TAG_WEIGHTS.get(phase, {})}
        rhos = accounting.split_rho(rho=rho, weights=[tag_weights[t] for t in deltas])
        stds: dict[str, float | list[float]] = {}
        for (tag, delta), rho_tag in zip(deltas.items(), rhos, strict=True):
            sigma = accounting.sigma_for(rho=rho_tag, sensitivity=delta)
            self.ledger.record(phase, "distributed-gaussian", rho_tag, sigma, delta, f"{request.phase}.{tag}")
            stds[tag] = (sigma * np.asarray(weights[tag], dtype=float)).tolist() if tag in weights else sigma
            if tag in ("count", "counts"):
                self.count_sigma[request.phase] = sigma
            if tag == "sums":
                self.sum_sigma[request.phase] = sigma
            if tag in weights:
                self.entry_sigma[f"{request.phase}.{tag}"] = sigma * np.asarray(weights[tag], dtype=float)
        return stds

    def profile_limits(self, found: list, scaler: Scaler, centroids: np.ndarray) -> np.ndarray:
        """Clip limits (k, 2, p) of the profile sums in original units: each segment's
        centroid ± SPREAD population std (`common.dp.segment_limits`) inside the public
        box, with the upper limit of every feature whose quantiles the run already released
        (money features: `quantiles.FeatureQuantiles`) lowered to PROFILE_CLIP_FACTOR ×
        its 99th percentile. Post-processing of a DP release, so public; it cuts the
        noise on a money mean by the ratio of the two limits, at the cost of the few
        values above the limit counting as the limit."""
        limits = bounds.box(self.schema).copy()
        names = [f.name for f in self.schema.numeric]
        for q in found:
            top = q.quantiles.get(str(PROFILE_CLIP_LEVEL))
            if top is not None and top > 0:
                j = names.index(q.name)
                limits[1, j] = float(np.clip(PROFILE_CLIP_FACTOR * top, limits[0, j], limits[1, j]))
        return centroid_limits(self.schema, np.asarray(scaler.mean), np.asarray(scaler.scale), centroids, limits)

    def spread_request(self, schema: FeatureSchema, found: list, scaler: Scaler,
                       centroids: np.ndarray) -> SpreadRequest:
        """The first of the two DP profile exchanges: each segment's spread around its
        centroid (`phases.segment_spread`), within the centroid limits above."""
        mean, scale = np.asarray(scaler.mean), np.asarray(scaler.scale)
        return SpreadRequest(schema=schema, scaler=scaler, centroids=centroids,
                             limits=self.profile_limits(found, scaler, centroids),
                             centres=centres_in_original_units(self.schema, mean, scale, centroids))

    def spread_limits(self, req: SpreadRequest, reply: SpreadReply) -> np.ndarray:
        """Clip limits (k, 2, p) of the profile sums: the spread request's, tightened to
        each segment's released spread (`segment_limits.spread_limits`, post-processing)."""
        limits, centres = limits_and_centres(req, self.schema)
        return spread_limits(limits, centres, np.asarray(reply.counts), np.asarray(reply.deviations),
                             self.count_sigma["segment_spread"], self.entry_sigma["segment_spread.deviations"])

    def averaged(self, rounds: list[np.ndarray], last: np.ndarray) -> np.ndarray:
        """The mean of a candidate's centroids over its last rounds: at most
        AVERAGED_ROUNDS of the second half (post-processing of released rounds). Once
        Lloyd has settled, each round's centroids are the fixed point plus fresh noise:
        the mean of m rounds carries 1/sqrt(m) of it (measured: BENCHMARKS.md)."""
        tail = [c for c in rounds[len(rounds) // 2:][-AVERAGED_ROUNDS:] if c.shape == last.shape]
        return np.mean(tail, axis=0) if tail else last

    def prepare_center(self) -> np.ndarray:
        """Midpoint of the public box in the transformed space: the nodes sum x − c and
        (x − c)², whose sensitivities are set by the box's half-widths, not its far ends."""
        box = np.vstack(sensitivity.transformed_box(self.schema))
        return box.mean(axis=0)

    def scaler(self, stats: PrepareStats, center: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and scale from the noisy, centred preprocessing sums (post-processing).

        A noisy variance can come out tiny or negative; a scale far below the truth
        would blow its feature up and every record would then be clipped along it. So a
        variance is never taken below twice the standard deviation of its own noise
        (a public number, from σ), and shares stay in [1/n, 1 − 1/n]."""
        n = max(float(stats.count), 1.0)
        shifted = stats.sums / n
        mean_num = center + shifted
        var_num = stats.sumsq / n - np.square(shifted)
        noise_sd = self.entry_sigma.get("prepare.sumsq", np.zeros_like(var_num)) / n
        var_num = np.maximum(var_num, np.maximum(2.0 * noise_sd, 1e-12))
        share = np.clip(stats.category_counts / n, 1.0 / n, 1.0 - 1.0 / n)
        mean = np.concatenate([mean_num, share])
        scale = np.sqrt(np.concatenate([var_num, share * (1.0 - share)]))
        return mean, scale

    def best(self, cands: list) -> object:
        """The candidate whose last round released the lowest estimated cost.

        For clipped records x_i (clipping does not depend on the centroids) and clusters
        with sums S_j and counts n_j, the cost at the updated centroids S_j/n_j is
        Σ‖x_i‖² − Σ_j ‖S_j‖²/n_j; the first term is the same for every candidate, so the
        largest Σ_j (‖S_j‖² − d σ²)/n_j wins (d σ² removes the noise's bias in ‖S_j‖²).
        Only already released, noisy sums and counts are used: no privacy cost."""
        sigma2 = self.sum_sigma.get("lloyd", 0.0) ** 2
        scores = []
        for c in cands:
            n = c.stats.counts.astype(float)
            ok = n > 0
            d = c.stats.sums.shape[1]
            scores.append(float(np.sum((np.square(c.stats.sums[ok]).sum(1) - d * sigma2) / n[ok])))
        return cands[int(np.argmax(scores))]

    def privacy_section(self) -> dict:
        return {**self.ledger.to_dict(), "mode": "dp+secure", "noise": "distributed Gaussian, added by nodes"}
