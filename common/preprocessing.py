"""Federated preprocessing: local sums → global standardisation → encoded matrix.

Each node sends count, per-feature sums and sums of squares of its (transformed,
clipped) numeric values and per-category counts; the server adds them and gets exactly
the pooled mean and population standard deviation. Nodes then encode their own rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fedseg.common.dp.noise import clip_to_bounds
from fedseg.common.schema import FeatureSchema
from fedseg.common.table_problems import DataError

if TYPE_CHECKING:
    from fedseg.common.table_policy import Coverage, RowDefects


@dataclass(frozen=True)
class LocalTable:
    """A node's validated customer table, as arrays.

    ids: ndarray of shape (n,), the id column as strings.
    numeric: ndarray of shape (n, n_numeric), raw values in original units.
    codes: ndarray of shape (n, n_categorical), index into each vocabulary.
    coverage: per-feature counts of gaps, imputed, clipped and dropped values (`table_policy`).
    defects: which rows those gaps and clipped values are in (to count a subset's coverage).
    """

    ids: np.ndarray
    numeric: np.ndarray
    codes: np.ndarray
    coverage: Coverage | None = None
    defects: RowDefects | None = None

    @property
    def n_rows(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class PrepareStats:
    """Aggregates for the global scaler (summable across nodes)."""

    count: int
    sums: np.ndarray
    sumsq: np.ndarray
    category_counts: np.ndarray

    def __add__(self, other: PrepareStats) -> PrepareStats:
        return PrepareStats(
            self.count + other.count,
            self.sums + other.sums,
            self.sumsq + other.sumsq,
            self.category_counts + other.category_counts,
        )


def _bounds(schema: FeatureSchema) -> tuple[np.ndarray, np.ndarray]:
    lower = np.array([-np.inf if f.lower is None else f.lower for f in schema.numeric])
    upper = np.array([np.inf if f.upper is None else f.upper for f in schema.numeric])
    return lower, upper


def clip_numeric(numeric: np.ndarray, schema: FeatureSchema, allow_gaps: bool = False) -> np.ndarray:
    """Clip raw values to the schema's public bounds (original units). A gap (NaN) left
    because the run sent no imputation value is an error unless the caller skips gaps
    (the coverage and histogram phases, which run before the median is known)."""
    if not allow_gaps:
        gaps = np.isnan(numeric).any(axis=0)
        if gaps.any():
            names = [f.name for f, g in zip(schema.numeric, gaps) if g]
            raise DataError(f"column(s) {names}: gaps, and the run sent no imputation value for them")
    lower, upper = _bounds(schema)
    return clip_to_bounds(numeric, lower, upper)


def transform_numeric(numeric: np.ndarray, schema: FeatureSchema, allow_gaps: bool = False) -> np.ndarray:
    """Clipped values with each feature's transform applied: the space we scale.
    Features with server-set winsor limits (global quantiles) are clipped to them too."""
    clipped = clip_numeric(numeric, schema, allow_gaps)
    log_cols = np.array([f.transform == "log1p" for f in schema.numeric], dtype=bool)
    if log_cols.any():
        clipped[:, log_cols] = np.log1p(clipped[:, log_cols])
    if any(f.winsor_limits is not None for f in schema.numeric):
        low = np.array([-np.inf if f.winsor_limits is None else f.winsor_limits[0] for f in schema.numeric])
        high = np.array([np.inf if f.winsor_limits is None else f.winsor_limits[1] for f in schema.numeric])
        clipped = np.clip(clipped, low, high)
    return clipped


def one_hot(codes: np.ndarray, schema: FeatureSchema) -> np.ndarray:
    """One-hot matrix of shape (n, n_onehot), vocabularies side by side."""
    sizes = [len(c.values) for c in schema.categorical]
    out = np.zeros((codes.shape[0], sum(sizes)))
    if sizes:
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        rows = np.repeat(np.arange(codes.shape[0]), len(sizes))
        out[rows, (codes + starts).ravel()] = 1.0
    return out


def local_prepare_stats(table: LocalTable, schema: FeatureSchema, center: np.ndarray | None = None) -> PrepareStats:
    """This node's contribution to the global scaler; with `center` (a public point,
    DP mode) the sums and sums of squares are of the transformed values minus it."""
    values = transform_numeric(table.numeric, schema)
    if center is not None:
        values = values - center
    return PrepareStats(
        count=table.n_rows,
        sums=values.sum(axis=0),
        sumsq=np.square(values).sum(axis=0),
        category_counts=one_hot(table.codes, schema).sum(axis=0),
    )


def scaler_from_stats(stats: PrepareStats) -> tuple[np.ndarray, np.ndarray]:
    """Pooled mean and population std per encoded feature; constant features get scale 1."""
    n = float(stats.count)
    mean_num = stats.sums / n
    var_num = np.maximum(stats.sumsq / n - np.square(mean_num), 0.0)
    share = stats.category_counts / n
    mean = np.concatenate([mean_num, share])
    std = np.sqrt(np.concatenate([var_num, share * (1.0 - share)]))
    scale = np.where(std > 1e-12 * np.maximum(1.0, np.abs(mean)), std, 1.0)
    return mean, scale


def encode_table(
    table: LocalTable, schema: FeatureSchema, mean: np.ndarray, scale: np.ndarray
) -> np.ndarray:
    """The node's rows in the encoded, scaled space: shape (n, n_encoded)."""
    raw = np.hstack([transform_numeric(table.numeric, schema), one_hot(table.codes, schema)])
    return (raw - mean) / scale
