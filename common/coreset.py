"""Federated initialisation from an aggregated coreset (ARCHITECTURE.md, "A run, phase by phase": initialization).

The server draws tables of random hyperplanes (with offsets) in the scaled space. Every
node hashes its records into the same buckets (one bucket per table and sign pattern)
and reports per-bucket counts; the server keeps the *dense* buckets, those holding at
least `min_release` customers over all nodes, and asks for their sums only. The
bucket means, weighted by their counts, form a coreset on which the server runs
weighted k-means++ and Lloyd; those centroids seed the federated Lloyd rounds. No
bucket mean describes fewer than `min_release` customers, so none is one record.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

DENSE_PER_SEGMENT = 5  # dense buckets wanted per segment before hyperplanes are dropped


@dataclass(frozen=True)
class Hyperplanes:
    """normals: shape (tables, bits, d), unit rows; offsets: shape (tables, bits)."""

    normals: np.ndarray
    offsets: np.ndarray

    @property
    def n_buckets(self) -> int:
        tables, bits, _ = self.normals.shape
        return tables * 2**bits


@dataclass(frozen=True)
class Coreset:
    """Weighted bucket means: points of shape (m, d), weights of shape (m,)."""

    points: np.ndarray
    weights: np.ndarray


def draw_hyperplanes(d: int, tables: int, bits: int, rng: np.random.Generator) -> Hyperplanes:
    """Random directions, offsets spread over the bulk of standardised data."""
    normals = rng.standard_normal((tables, bits, d))
    normals /= np.linalg.norm(normals, axis=2, keepdims=True)
    offsets = rng.uniform(-1.0, 1.0, size=(tables, bits))
    return Hyperplanes(normals, offsets)


def bucket_ids(X: np.ndarray, planes: Hyperplanes) -> np.ndarray:
    """Global bucket id of every record in every table, shape (n, tables)."""
    tables, bits, _ = planes.normals.shape
    side = np.einsum("nd,tbd->ntb", X, planes.normals) > planes.offsets[None, :, :]
    code = side.astype(np.int64) @ (1 << np.arange(bits, dtype=np.int64))
    return code + (np.arange(tables, dtype=np.int64) * 2**bits)[None, :]


def local_bucket_counts(X: np.ndarray, planes: Hyperplanes) -> np.ndarray:
    """Records per global bucket, shape (n_buckets,)."""
    return np.bincount(bucket_ids(X, planes).ravel(), minlength=planes.n_buckets).astype(np.int64)


def local_bucket_sums(
    X: np.ndarray, planes: Hyperplanes, dense: np.ndarray, values: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Sums (shape (len(dense), d)) and counts (len(dense),) of each dense bucket.

    dense: sorted ndarray of global bucket ids the server asks for.
    values: what is summed (default X), e.g. the records clipped for DP; the buckets
    are always those of X, as in `local_bucket_counts`.
    """
    ids = bucket_ids(X, planes)
    pos = np.searchsorted(dense, ids)
    pos_clipped = np.minimum(pos, max(len(dense) - 1, 0))
    hit = (pos < len(dense)) & (dense[pos_clipped] == ids) if len(dense) else np.zeros_like(ids, bool)
    rows = np.broadcast_to(np.arange(X.shape[0])[:, None], ids.shape)[hit]
    member = sparse.csr_matrix(
        (np.ones(rows.size), (pos[hit], rows)), shape=(len(dense), X.shape[0])
    )
    summed = X if values is None else values
    return np.asarray(member @ summed), np.bincount(pos[hit], minlength=len(dense)).astype(np.int64)


def truncated(planes: Hyperplanes, bits: int) -> Hyperplanes:
    """The first `bits` hyperplanes of every table: each new bucket is the union of the
    old buckets that agree on those planes (`coarsened_counts`)."""
    return Hyperplanes(planes.normals[:, :bits], planes.offsets[:, :bits])


def coarsened_counts(counts: np.ndarray, tables: int, bits: int, fewer: int) -> np.ndarray:
    """Bucket counts of `truncated(planes, fewer)` from those of all `bits` planes: a
    bucket code is sum(side_b * 2^b), so dropping the planes from `fewer` on adds up
    the buckets that differ only in the high bits. Exact, no new exchange."""
    grouped = counts.reshape(tables, 2 ** (bits - fewer), 2**fewer)
    return grouped.sum(axis=1).ravel()


def finest_bits(counts: np.ndarray, tables: int, bits: int, min_release: float, wanted: int) -> int:
    """The most planes per table that still leave `wanted` dense buckets: fine buckets
    describe the data best, but a small federation (a few hundred customers) has too
    few customers per fine bucket for any to be released. If no count of planes gets
    there, the one with the most dense buckets."""
    best, most = bits, -1
    for b in range(bits, 0, -1):  # at most 16 plane counts, not records
        dense = int((coarsened_counts(counts, tables, bits, b) >= min_release).sum())
        if dense >= wanted:
            return b
        if dense > most:
            best, most = b, dense
    return best


def dense_buckets(counts: np.ndarray, min_release: int) -> np.ndarray:
    """Sorted ids of the buckets holding at least `min_release` customers."""
    return np.flatnonzero(counts >= min_release).astype(np.int64)


def reliable_buckets(sizes: np.ndarray, min_size: float, k: int) -> np.ndarray:
    """Mask of the buckets to seed from: those of at least `min_size` customers (under DP,
    3σ of the noise on the released sizes: smaller ones are mostly noise). If that leaves
    fewer than k, the k largest with a positive size instead: a run with a small budget
    then starts from noisier means rather than failing (post-processing of released sizes)."""
    keep = sizes >= min_size
    if keep.sum() >= k:
        return keep
    largest = np.argsort(-sizes, kind="stable")[:k]
    keep = np.zeros(len(sizes), dtype=bool)
    keep[largest[sizes[largest] > 0]] = True
    return keep


def padded(core: Coreset, k: int, rng: np.random.Generator) -> Coreset:
    """At least k points: a coreset with fewer (a tiny DP budget that leaves a few noisy
    buckets) gets extra points drawn around its weighted mean, with its spread (unit
    spread in the scaled space if it has none) and its smallest weight, so k-means++ can
    seed k centroids and the Lloyd rounds move them; server-side, from aggregates only."""
    missing = k - len(core.points)
    if missing <= 0:
        return core
    d = core.points.shape[1]
    centre, spread, weight = np.zeros(d), 0.0, 1.0
    if len(core.points):
        w = core.weights / core.weights.sum()
        centre = w @ core.points
        spread = float(np.sqrt(w @ np.square(core.points - centre).sum(axis=1) / d))
        weight = core.weights.min()
    extra = centre + rng.standard_normal((missing, d)) * (spread if spread > 0 else 1.0)
    return Coreset(np.vstack([core.points, extra]), np.concatenate([core.weights, np.full(missing, weight)]))


def build_coreset(sums: np.ndarray, counts: np.ndarray) -> Coreset:
    """Bucket means weighted by bucket sizes (counts of the dense buckets only)."""
    return Coreset(points=sums / counts[:, None], weights=counts.astype(float))


def seed_candidates(coreset: Coreset, k: int, restarts: int, seed: int) -> list[np.ndarray]:
    """`restarts` distinct k-centroid solutions of weighted k-means on the coreset,
    best coreset cost first; each from k-means++ with 10 inits (run on aggregates)."""
    if len(coreset.points) < k:
        raise ValueError(
            f"only {len(coreset.points)} dense coreset buckets for k={k}: "
            "too few customers for this k, or lower --k-max"
        )
    from sklearn.cluster import KMeans  # server side only: nodes never pay its import

    fits = []
    for r in range(restarts):
        model = KMeans(n_clusters=k, n_init=10, random_state=seed + 7919 * r + 104729 * k)
        model.fit(coreset.points, sample_weight=coreset.weights)
        fits.append((float(model.inertia_), model.cluster_centers_))
    fits.sort(key=lambda f: f[0])
    unique: list[np.ndarray] = []
    for _, centers in fits:
        if not any(np.allclose(np.sort(centers, 0), np.sort(u, 0)) for u in unique):
            unique.append(centers)
    return unique


def farthest_coreset_points(coreset: Coreset, centroids: np.ndarray, n: int) -> np.ndarray:
    """The `n` coreset points that cost most under `centroids`: where to re-seed an
    empty cluster from aggregates instead of from one customer's record."""
    d2 = (
        np.square(coreset.points).sum(1)[:, None]
        - 2 * coreset.points @ centroids.T
        + np.square(centroids).sum(1)[None, :]
    )
    cost = coreset.weights * np.maximum(d2.min(axis=1), 0.0)
    return coreset.points[np.argsort(-cost)[:n]]
