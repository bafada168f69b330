"""Federated quantiles from histograms over public bins.

Every node counts its customers per bin; bins split each feature's public range
[lower, upper] into `bins` equal parts on the transformed scale (log1p features are
binned in log space). The server adds the counts and reads quantiles off the summed
histogram: no record leaves a node, and the counts do not depend on how customers are
split across nodes.

Quantile definition: numpy's `inverted_cdf` (the smallest value x with F(x) >= q). The
federated quantile is the left edge of the bin holding that value, so it is exact when
values sit on bin edges (integer days with one bin per day) and otherwise at most one
bin width below the pooled one. Scores compare bin indices, so a customer's score is
exact unless it shares a bin with a quintile edge.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel

from fedseg.common.preprocessing import LocalTable, transform_numeric
from fedseg.common.schema import FeatureSchema, NumericFeature

QUINTILES = (0.2, 0.4, 0.6, 0.8)
NORMAL_IQR = 1.3489795003921634  # Q3 - Q1 of a standard normal: IQR / this estimates the std
REPORTED = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def grid(feature: NumericFeature) -> tuple[float, float, int]:
    """(low, high, bins) of a feature's public bins on the transformed scale."""
    box = np.array([feature.lower, feature.upper], dtype=float)
    if feature.transform == "log1p":
        box = np.log1p(box)
    return float(box[0]), float(box[1]), feature.n_bins


def bin_index(values: np.ndarray, low: float, high: float, bins: int) -> np.ndarray:
    """Bin of each transformed value; `(v - low) * bins / (high - low)` keeps integer
    values on integer-width bins exact. The upper bound falls into the last bin."""
    idx = np.floor((values - low) * bins / (high - low))
    return np.clip(idx, 0, bins - 1).astype(np.int64)


def bin_edge(index: np.ndarray | int, low: float, high: float, bins: int) -> np.ndarray:
    """Left edge of bin `index` on the transformed scale."""
    return low + np.asarray(index, dtype=float) * (high - low) / bins


def _unwinsorized(schema: FeatureSchema) -> FeatureSchema:
    """Histograms describe the data before any winsorizing (they set the limits)."""
    numeric = tuple(f.model_copy(update={"winsor_limits": None}) for f in schema.numeric)
    return schema.model_copy(update={"numeric": numeric})


def local_bins(table: LocalTable, schema: FeatureSchema, indices: list[int]) -> np.ndarray:
    """Bin index per customer and feature: ndarray of shape (n, len(indices)); -1 for a
    gap (a value still to be imputed, counted in no bin)."""
    values = transform_numeric(table.numeric, _unwinsorized(schema), allow_gaps=True)
    cols = [np.where(np.isnan(values[:, i]), -1, bin_index(np.nan_to_num(values[:, i]), *grid(schema.numeric[i])))
            for i in indices]
    return np.column_stack(cols) if cols else np.zeros((table.n_rows, 0), dtype=np.int64)


def local_histograms(table: LocalTable, schema: FeatureSchema) -> np.ndarray:
    """Counts per bin of every quantile feature, concatenated: shape (sum of bins,)."""
    indices = schema.quantile_indices
    bins = [schema.numeric[i].n_bins for i in indices]
    local = local_bins(table, schema, indices)
    idx = local + np.concatenate([[0], np.cumsum(bins)[:-1]]).astype(np.int64)
    return np.bincount(idx[local >= 0].ravel(), minlength=int(sum(bins))).astype(np.int64)


def split_histograms(counts: np.ndarray, schema: FeatureSchema) -> list[np.ndarray]:
    """The summed concatenated histogram, one array per quantile feature."""
    bins = [schema.numeric[i].n_bins for i in schema.quantile_indices]
    return np.split(np.asarray(counts), np.cumsum(bins)[:-1])


def denoised_counts(counts: np.ndarray) -> np.ndarray:
    """Summed (possibly DP-noised) counts of one feature as a valid histogram.

    The cumulative counts are made monotone and non-negative (running maximum of the
    cumulative sum, floored at 0), and the bin counts are their differences: every
    count is a non-negative integer and negative noise is absorbed (clipped) rather
    than every empty bin's positive noise being kept. Exact counts pass unchanged.
    Post-processing of the released sums: no privacy cost. A 2-D array is one histogram
    per row (per-segment histograms)."""
    cum = np.cumsum(np.rint(np.asarray(counts, dtype=float)), axis=-1)
    cum = np.maximum.accumulate(np.maximum(cum, 0.0), axis=-1)
    return np.diff(cum, axis=-1, prepend=0.0).astype(np.int64)


def quantile_bins(counts: np.ndarray, qs: tuple[float, ...] | list[float]) -> np.ndarray:
    """Bin of the inverted-CDF quantile: the first bin whose cumulative count >= q·n
    (counts >= 0, e.g. `denoised_counts`). Shape (len(qs),); a 2-D array is one
    histogram per row (per-segment histograms), shape (rows, len(qs))."""
    counts = np.asarray(counts)
    cum = np.cumsum(counts, axis=-1)
    target = np.asarray(qs, dtype=float) * cum[..., -1:]
    below = (cum[..., None, :] < target[..., :, None]).sum(axis=-1)  # cum is non-decreasing
    return np.minimum(below, counts.shape[-1] - 1).astype(np.int64)


def scores(bins: np.ndarray, edge_bins: np.ndarray, direction: str) -> np.ndarray:
    """1-5 quintile scores: 1 + number of quintile edges strictly below the customer's
    bin; `low` reverses them (fewest days since the last purchase score 5)."""
    high = 1 + (bins[:, None] > edge_bins[None, :]).sum(axis=1)
    return high if direction == "high" else 6 - high


def local_scores(table: LocalTable, schema: FeatureSchema, edge_bins: np.ndarray) -> np.ndarray:
    """Scores per customer and scored feature: shape (n, n_scored); `edge_bins` (n_scored, 4)."""
    indices = schema.score_indices
    bins = local_bins(table, schema, indices)
    cols = [scores(bins[:, j], edge_bins[j], schema.numeric[i].score) for j, i in enumerate(indices)]
    return np.column_stack(cols).astype(float) if cols else np.zeros((table.n_rows, 0))


class FeatureQuantiles(BaseModel):
    """What the federation learned about one feature's distribution (public output)."""

    name: str
    bins: int
    bin_width: float  # on the transformed scale
    quintile_bins: list[int]
    quintile_edges: list[float]  # original units (left bin edges)
    quantiles: dict[str, float]  # original units
    median: float  # transformed scale
    iqr: float  # transformed scale
    winsor_limits: tuple[float, float] | None = None  # transformed scale
    scaling: str = "standard"
    score: str = "none"


def _original(feature: NumericFeature, value: np.ndarray) -> np.ndarray:
    return np.expm1(value) if feature.transform == "log1p" else value


def summarize(feature: NumericFeature, counts: np.ndarray) -> FeatureQuantiles:
    """Quintile edges, reported quantiles, median/IQR and winsor limits of one feature."""
    low, high, bins = grid(feature)
    edge = lambda qs: bin_edge(quantile_bins(counts, qs), low, high, bins)  # noqa: E731
    quint = quantile_bins(counts, QUINTILES)
    q25, q50, q75 = edge((0.25, 0.5, 0.75))
    limits = None
    if feature.winsorize is not None:
        lo_bin, hi_bin = quantile_bins(counts, feature.winsorize)
        # the upper limit is the right edge of its bin, so the quantile value is kept
        limits = (float(bin_edge(lo_bin, low, high, bins)), float(bin_edge(hi_bin + 1, low, high, bins)))
    return FeatureQuantiles(
        name=feature.name, bins=bins, bin_width=(high - low) / bins,
        quintile_bins=quint.tolist(),
        quintile_edges=_original(feature, bin_edge(quint, low, high, bins)).tolist(),
        quantiles={str(q): float(v) for q, v in zip(REPORTED, _original(feature, edge(REPORTED)))},
        median=float(q50), iqr=float(q75 - q25), winsor_limits=limits,
        scaling="robust" if feature.robust else "standard", score=feature.score,
    )


def with_winsor_limits(schema: FeatureSchema, found: list[FeatureQuantiles]) -> FeatureSchema:
    """The schema the nodes use after the quantile phase: winsor limits filled in."""
    by_name = {q.name: q.winsor_limits for q in found}
    numeric = tuple(
        f.model_copy(update={"winsor_limits": by_name.get(f.name)}) if f.name in by_name else f
        for f in schema.numeric
    )
    return schema.model_copy(update={"numeric": numeric})


def with_impute_values(schema: FeatureSchema, found: list[FeatureQuantiles], only_gaps: bool = True) -> FeatureSchema:
    """The schema with the federated median (original units) as `impute_value` of every
    imputing feature the coverage phase found gaps in (`only_gaps=False`: of every
    imputing feature, when gaps were not counted, as under DP): the median of the values
    present, read off the summed histogram (under DP the noisy one). Gaps then take it on
    every node; a feature without gaps keeps its schema, so nodes keep their cached table."""
    by_name = {q.name: q for q in found}
    numeric = tuple(
        f.model_copy(update={"impute_value": float(_original(f, np.float64(by_name[f.name].median)))})
        if f.name in by_name and f.missing == "impute" and (f.gaps or not only_gaps) else f
        for f in schema.numeric
    )
    return schema.model_copy(update={"numeric": numeric})


def robust_scaler(schema: FeatureSchema, found: list[FeatureQuantiles], mean: np.ndarray,
                  scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median and IQR / 1.349 for robust features (std kept where the IQR is 0).

    The IQR is divided by a standard normal's IQR (scikit-learn's `RobustScaler(
    unit_variance=True)`): on normal data robust and standard scaling agree, so making
    robust scaling the default for money features does not change how much they weigh
    in the distance against the other features; only the tails stop setting the scale."""
    mean, scale = mean.copy(), scale.copy()
    by_name = {q.name: q for q in found}
    for i, f in enumerate(schema.numeric):  # loop over features, not records
        q = by_name.get(f.name)
        if q is not None and f.robust:
            mean[i] = q.median
            scale[i] = q.iqr / NORMAL_IQR if q.iqr > 0 else scale[i]
    return mean, scale


def score_edge_bins(schema: FeatureSchema, found: list[FeatureQuantiles]) -> np.ndarray:
    """Quintile edge bins of the scored features: shape (n_scored, 4)."""
    by_name = {q.name: q for q in found}
    rows = [by_name[schema.numeric[i].name].quintile_bins for i in schema.score_indices]
    return np.array(rows, dtype=np.int64).reshape(len(rows), len(QUINTILES))
