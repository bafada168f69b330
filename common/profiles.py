"""Segment profiles in original units, from per-segment sums over all nodes.

Numeric profiles use the values clipped to the schema's public bounds (no transform),
so a marketer reads "mean income 54,000" rather than a z-score. Features that take part
in the quantile phase also get the segment's quartiles (q25, median, q75) from
per-segment histograms (`common.segment_quantiles`): for skewed money features the
median is the typical member, the mean is not. A segment smaller than the minimum
release size is never described on its own; quartiles need a group of
`disclosure.quantile_floor(min size)` (4 x min size) customers.

Under DP (`noise` given) the noisy sums are post-processed into a consistent profile
(means and standard deviations inside the public bounds, category shares in [0, 1]
summing to 1) and every mean carries the half-width of its 95 % interval from the
noise's σ (`mean_ci95`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel

from fedseg.common import disclosure
from fedseg.common.kmeans import assign
from fedseg.common.preprocessing import LocalTable, clip_numeric, one_hot
from fedseg.common.schema import FeatureSchema
from fedseg.common.segment_quantiles import local_segment_histograms, segment_quartiles


@dataclass(frozen=True)
class ProfileStats:
    """Per-segment sums (one node's, or summed over nodes as `phases.profile.stats`
    gives them): counts (k,), sums/sumsq (k, p), category_counts (k, q),
    histograms (k, per-segment bins of the quantile features)."""

    counts: np.ndarray
    sums: np.ndarray
    sumsq: np.ndarray
    category_counts: np.ndarray
    scores: np.ndarray | None = None  # (k, n_scored) sums of RFM 1-5 quintile scores
    histograms: np.ndarray | None = None  # (k, width) customers per segment and per-segment bin


class NumericProfile(BaseModel):
    mean: float
    std: float
    population_mean: float
    z: float  # (segment mean - population mean) / population std
    # quartiles in original units (features in the quantile phase only; older models: None)
    q25: float | None = None
    median: float | None = None
    q75: float | None = None
    mean_ci95: float | None = None  # DP: half-width of the mean's 95 % interval (noise only)


class SegmentProfile(BaseModel):
    numeric: dict[str, NumericProfile]
    categories: dict[str, dict[str, float]]  # column -> value -> share within segment
    scores: dict[str, float] = {}  # feature -> mean RFM 1-5 quintile score (global quintiles)
    share_ci95: float | None = None  # DP: half-width of a category share's 95 % interval


def local_profile_stats(
    table: LocalTable, schema: FeatureSchema, X: np.ndarray, centroids: np.ndarray,
    limits: np.ndarray | None = None,
) -> ProfileStats:
    """This node's per-segment sums for the final centroids (X: encoded scaled rows).

    `limits` (DP, shape (k, 2, p) or (2, p) for all, inside the public box): each customer's values
    clipped to their segment's limits and centred on their midpoint, so a customer
    moves a sum by at most the half-width."""
    k = len(centroids)
    labels = assign(X, centroids)
    member = np.zeros((k, len(labels)))
    member[labels, np.arange(len(labels))] = 1.0
    values = clip_numeric(table.numeric, schema)
    if limits is not None:
        own = np.broadcast_to(limits, (k, *np.shape(limits)[-2:]))[labels]  # (n, 2, p): own segment's
        values = np.clip(values, own[:, 0], own[:, 1]) - own.mean(axis=1)
    return ProfileStats(
        counts=np.bincount(labels, minlength=k).astype(np.int64),
        sums=member @ values,
        sumsq=member @ np.square(values),
        category_counts=member @ one_hot(table.codes, schema),
        histograms=local_segment_histograms(table, schema, labels, k),
    )


Z95 = 1.959963984540054  # two-sided 95 % normal quantile


def build_profiles(stats: ProfileStats, schema: FeatureSchema, min_size: int,
                   noise: dict | None = None) -> list[SegmentProfile | None]:
    """A profile per segment, or None where the segment is below `min_size`; `noise`
    (DP: σ per released field, `NoisyRelease.profile_noise`) turns on the consistency
    post-processing and the 95 % intervals."""
    counts = np.maximum(np.asarray(stats.counts, dtype=float), 0.0)
    n = max(counts.sum(), 1.0)
    low, high = _bounds(schema)
    # population mean = size-weighted mean of the (bounded) segment means: the same
    # number as the pooled sum for exact sums, and inside the bounds for noisy ones
    ok = counts > 0
    pop_mean = (counts[ok, None] * np.clip(stats.sums[ok] / counts[ok, None], low, high)).sum(axis=0) / n
    pop_std = _population_std(stats, counts, n, pop_mean, low, high)
    quartiles = _quartiles(stats, schema)
    q_floor = disclosure.quantile_floor(min_size)
    out: list[SegmentProfile | None] = []
    for j, count in enumerate(counts):  # loop over segments, not records
        if count < min_size:
            out.append(None)
            continue
        mean = np.clip(stats.sums[j] / count, low, high)
        std = _std(stats.sumsq[j] / count, mean, low, high)
        z = np.divide(mean - pop_mean, pop_std, out=np.zeros_like(mean), where=pop_std > 0)
        ci = _mean_ci(noise, mean, count, j, len(counts))
        numeric = {
            f.name: NumericProfile(
                mean=float(mean[i]), std=float(std[i]), population_mean=float(pop_mean[i]), z=float(z[i]),
                mean_ci95=None if ci is None else float(ci[i]),
                **(_segment_quartiles(quartiles, f.name, j) if count >= q_floor else {}),
            )
            for i, f in enumerate(schema.numeric)
        }
        share_ci = None if noise is None else Z95 * float(noise.get("category_counts", 0.0)) / count
        out.append(SegmentProfile(numeric=numeric, categories=_category_shares(stats, schema, j),
                                  scores=_mean_scores(stats, schema, j), share_ci95=share_ci))
    return out


def _bounds(schema: FeatureSchema) -> tuple[np.ndarray, np.ndarray]:
    """Public lower/upper bound per numeric feature (±inf where the schema has none)."""
    low = np.array([-np.inf if f.lower is None else f.lower for f in schema.numeric])
    high = np.array([np.inf if f.upper is None else f.upper for f in schema.numeric])
    return low, high


def _std(mean_sq: np.ndarray, mean: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Standard deviation from a (possibly noisy) mean of squares: never negative, never
    above half the public range (the largest a bounded variable can have)."""
    std = np.sqrt(np.maximum(mean_sq - np.square(mean), 0.0))
    return np.minimum(std, (high - low) / 2)


def _population_std(stats: ProfileStats, counts: np.ndarray, n: float, pop_mean: np.ndarray,
                    low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Population std, never below the spread of the segment means (law of total
    variance: the between-segment part is a lower bound). Exact sums always meet the
    bound; noisy sums of squares can fall far below it and would make every z zero."""
    total = _std(stats.sumsq.sum(axis=0) / n, pop_mean, low, high)
    ok = counts > 0
    means = np.clip(stats.sums[ok] / counts[ok, None], low, high)
    between = np.sqrt((counts[ok, None] * np.square(means - pop_mean)).sum(axis=0) / n)
    return np.maximum(total, between)


def _mean_ci(noise: dict | None, mean: np.ndarray, count: float, j: int, k: int) -> np.ndarray | None:
    """Half-width of the 95 % interval of sums/count under independent Gaussian noise on
    the sum (σ_S per feature) and the count (σ_n): delta method, Var ≈ (σ_S² + m² σ_n²)/n².

    σ_S is per feature or per (segment, feature) (k0 × p, segment j's row); when small
    segments were merged (k < k0 rows), a released row holds several noisy sums and
    its σ_S is bounded by the root sum of squares over all rows."""
    if noise is None:
        return None
    s_sum = np.asarray(noise.get("sums", np.zeros(len(mean))), dtype=float)
    if s_sum.ndim == 2:
        s_sum = s_sum[j] if len(s_sum) == k else np.sqrt(np.square(s_sum).sum(axis=0))
    s_count = float(noise.get("counts", 0.0))
    return Z95 * np.sqrt(np.square(s_sum) + np.square(mean * s_count)) / count


def _quartiles(stats: ProfileStats, schema: FeatureSchema) -> dict[str, np.ndarray]:
    """Feature -> (k, 3) quartiles from the summed per-segment histograms (none without)."""
    if stats.histograms is None or stats.histograms.shape[1] == 0:
        return {}
    return segment_quartiles(stats.histograms, schema)


def _segment_quartiles(quartiles: dict[str, np.ndarray], name: str, j: int) -> dict[str, float]:
    """q25/median/q75 keyword arguments of segment j's profile of one feature (or none)."""
    if name not in quartiles:
        return {}
    q25, median, q75 = (float(v) for v in quartiles[name][j])
    return {"q25": q25, "median": median, "q75": q75}


def _mean_scores(stats: ProfileStats, schema: FeatureSchema, j: int) -> dict[str, float]:
    """Mean quintile score of segment j per scored feature (empty without scores); kept
    in the public range [1, 5] (noisy DP sums may stray outside it: post-processing)."""
    if stats.scores is None or stats.scores.shape[1] == 0:
        return {}
    names = [schema.numeric[i].name for i in schema.score_indices]
    return {n: float(np.clip(stats.scores[j, c] / stats.counts[j], 1.0, 5.0)) for c, n in enumerate(names)}


def _category_shares(stats: ProfileStats, schema: FeatureSchema, j: int) -> dict[str, dict[str, float]]:
    shares: dict[str, dict[str, float]] = {}
    start = 0
    for col in schema.categorical:  # noisy counts: clipped at 0, shares then sum to 1
        block = np.maximum(stats.category_counts[j, start : start + len(col.values)], 0.0)
        total = block.sum()
        shares[col.name] = {v: float(c / total) if total else 1.0 / len(col.values) for v, c in zip(col.values, block)}
        start += len(col.values)
    return shares


def describe(profile: SegmentProfile | None, top: int = 3) -> str:
    """A short name from the features that set the segment apart from the population."""
    if profile is None:
        return "small segment (not described)"
    ranked = sorted(profile.numeric.items(), key=lambda kv: -abs(kv[1].z))
    words = [f"{'high' if p.z > 0 else 'low'} {name}" for name, p in ranked[:top] if abs(p.z) >= 0.25]
    return ", ".join(words) if words else "average customers"
