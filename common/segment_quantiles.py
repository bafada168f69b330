"""Per-segment quartiles (q25, median, q75) from federated per-segment histograms.

Money features are skewed: a segment's mean income is pulled up by a few rich
customers, its median is what a marketer expects a "typical" member to earn. Each node
counts its customers per (segment, bin) for every feature that takes part in the
quantile phase (`NumericFeature.needs_quantiles`); the server adds the counts and reads
the quartiles off each segment's histogram, exactly as `common.quantiles` reads the
global ones (numpy's `inverted_cdf`, reported as the left edge of the bin holding it).

To keep the profile reply small, a feature's public bins are merged, `merge_factor`
adjacent ones at a time, into at most `MAX_SEGMENT_BINS` per-segment bins. The merge is
exact, so every per-segment bin edge is a public bin edge, and the reply holds
k × (sum of per-segment bins) counts whatever the number of customers. The price is
resolution: a per-segment quartile is at most one *per-segment* bin width (on the
transformed scale) below the pooled one.
"""

from __future__ import annotations

import numpy as np

from fedseg.common import quantiles
from fedseg.common.preprocessing import LocalTable
from fedseg.common.schema import FeatureSchema, NumericFeature

MAX_SEGMENT_BINS = 256
QUARTILES = (0.25, 0.5, 0.75)


def merge_factor(n_bins: int) -> int:
    """Public bins per per-segment bin: the fewest that leave at most MAX_SEGMENT_BINS."""
    return -(-n_bins // MAX_SEGMENT_BINS)


def segment_bins(feature: NumericFeature) -> int:
    """Number of per-segment bins of a feature (the last one may merge fewer public bins)."""
    return -(-feature.n_bins // merge_factor(feature.n_bins))


def segment_bin_width(feature: NumericFeature) -> float:
    """Width of a (full) per-segment bin on the transformed scale: the quartiles' resolution."""
    low, high, bins = quantiles.grid(feature)
    return merge_factor(bins) * (high - low) / bins


def histogram_width(schema: FeatureSchema) -> int:
    """Columns of the per-segment histogram matrix: per-segment bins of every quantile feature."""
    return sum(segment_bins(schema.numeric[i]) for i in schema.quantile_indices)


def _offsets(schema: FeatureSchema) -> np.ndarray:
    widths = [segment_bins(schema.numeric[i]) for i in schema.quantile_indices]
    return np.concatenate([[0], np.cumsum(widths)[:-1]]).astype(np.int64) if widths else np.zeros(0, np.int64)


def local_segment_histograms(table: LocalTable, schema: FeatureSchema, labels: np.ndarray, k: int) -> np.ndarray:
    """This node's customers per (segment, per-segment bin), features side by side.

    ndarray of int64, shape (k, histogram_width(schema)); one count per customer and
    quantile feature, in the row of the customer's segment (`labels`, shape (n,))."""
    indices = schema.quantile_indices
    width = histogram_width(schema)
    if not indices:
        return np.zeros((k, 0), dtype=np.int64)
    factors = np.array([merge_factor(schema.numeric[i].n_bins) for i in indices], dtype=np.int64)
    coarse = quantiles.local_bins(table, schema, indices) // factors + _offsets(schema)  # (n, features)
    flat = (np.asarray(labels, dtype=np.int64)[:, None] * width + coarse).ravel()
    return np.bincount(flat, minlength=k * width).reshape(k, width).astype(np.int64)


def split_segment_histograms(histograms: np.ndarray, schema: FeatureSchema) -> list[np.ndarray]:
    """The summed (k, width) matrix, one (k, per-segment bins) block per quantile feature."""
    widths = [segment_bins(schema.numeric[i]) for i in schema.quantile_indices]
    return np.split(np.asarray(histograms), np.cumsum(widths)[:-1], axis=1) if widths else []


def feature_quartiles(feature: NumericFeature, counts: np.ndarray) -> np.ndarray:
    """q25, median, q75 per segment in original units, from one feature's summed
    per-segment counts (k, per-segment bins); possibly DP-noised counts are first made a
    valid histogram per segment (`quantiles.denoised_counts`, post-processing).
    Shape (k, 3)."""
    low, high, bins = quantiles.grid(feature)
    fine = quantiles.quantile_bins(quantiles.denoised_counts(counts), QUARTILES) * merge_factor(bins)
    edges = quantiles.bin_edge(fine, low, high, bins)
    return np.expm1(edges) if feature.transform == "log1p" else edges


def segment_quartiles(histograms: np.ndarray, schema: FeatureSchema) -> dict[str, np.ndarray]:
    """Feature name -> (k, 3) q25/median/q75 in original units, for every quantile feature."""
    blocks = split_segment_histograms(histograms, schema)
    return {schema.numeric[i].name: feature_quartiles(schema.numeric[i], block)
            for i, block in zip(schema.quantile_indices, blocks)}  # loop over features, not records
