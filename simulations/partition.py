"""Split one table into simulated nodes (silos).

Federated results must hold up when silos differ, so besides an iid split we provide
the standard Dirichlet label-skew split (each value of a column is spread over the
clients with proportions drawn from Dirichlet(alpha): small alpha, strongly skewed
silos) and a natural split by an existing column (one node per department or store).

Specs: `iid`, `dirichlet:ALPHA:COLUMN`, `column:NAME`, or an alias in `PARTITION_ALIASES`.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

PARTITION_ALIASES: dict[str, str] = {"natural": "column:department"}
_USAGE = "expected iid, dirichlet:ALPHA:COLUMN, column:NAME or one of " + ", ".join(PARTITION_ALIASES)


class PartitionSpec(BaseModel):
    """A parsed partition spec; `alpha` only for dirichlet, `column` for dirichlet/column."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["iid", "dirichlet", "column"]
    alpha: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    column: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _fields_match_kind(self) -> PartitionSpec:
        if self.kind == "iid" and (self.alpha is not None or self.column is not None):
            raise ValueError("iid takes no alpha or column")
        if self.kind == "dirichlet" and (self.alpha is None or self.column is None):
            raise ValueError("dirichlet needs alpha and column")
        if self.kind == "column" and (self.alpha is not None or self.column is None):
            raise ValueError("column needs a column name and no alpha")
        return self


def parse_partition(spec: str) -> PartitionSpec:
    """Parse a spec string; ValueError says what is wrong and what is expected."""
    text = PARTITION_ALIASES.get(spec.strip(), spec.strip())
    kind, _, rest = text.partition(":")
    if kind == "iid" and not rest:
        return PartitionSpec(kind="iid")
    if kind == "column" and rest.strip():
        return PartitionSpec(kind="column", column=rest.strip())
    if kind == "dirichlet":
        alpha_text, _, column = rest.partition(":")
        try:
            alpha = float(alpha_text)
        except ValueError:
            raise ValueError(f"partition {spec!r}: alpha {alpha_text!r} is not a number; {_USAGE}") from None
        if not math.isfinite(alpha) or alpha <= 0:
            raise ValueError(f"partition {spec!r}: alpha must be a finite number > 0, got {alpha_text}")
        if not column.strip():
            raise ValueError(f"partition {spec!r}: dirichlet needs a column; {_USAGE}")
        return PartitionSpec(kind="dirichlet", alpha=alpha, column=column.strip())
    raise ValueError(f"partition {spec!r} is not understood; {_USAGE}")


def partition(
    df: pd.DataFrame, spec: str | PartitionSpec, n_clients: int, seed: int, *, min_rows: int = 1
) -> list[pd.DataFrame]:
    """Frames for the clients, disjoint and covering `df` (original index and row order
    kept). `n_clients` is ignored by `column:`; iid and dirichlet give every client at
    least `min_rows` rows and raise ValueError when `df` is too small for that."""
    parsed = spec if isinstance(spec, PartitionSpec) else parse_partition(spec)
    if parsed.column is not None and parsed.column not in df.columns:
        raise ValueError(f"partition column {parsed.column!r} is not in the table; columns: {list(df.columns)}")
    if parsed.kind == "column":
        assign, n_parts = _by_column(df[parsed.column])
    else:
        if n_clients < 1:
            raise ValueError(f"n_clients must be at least 1, got {n_clients}")
        if len(df) < n_clients * min_rows:
            raise ValueError(
                f"cannot give {n_clients} clients {min_rows} row(s) each from {len(df)} rows; use fewer clients"
            )
        rng = np.random.default_rng(seed)
        if parsed.kind == "iid":
            assign = _iid(len(df), n_clients, rng)
        else:
            assign = _dirichlet(df[parsed.column], parsed.alpha, n_clients, rng)
            assign = _fill_small(assign, n_clients, min_rows, rng)
        n_parts = n_clients
    return _split(df, assign, n_parts)


def _iid(n_rows: int, n_clients: int, rng: np.random.Generator) -> np.ndarray:
    """Client per row: a random permutation cut into sizes that differ by at most one."""
    assign = np.empty(n_rows, dtype=np.int64)
    assign[rng.permutation(n_rows)] = np.arange(n_rows) * n_clients // n_rows
    return assign


def _dirichlet(col: pd.Series, alpha: float, n_clients: int, rng: np.random.Generator) -> np.ndarray:
    """Label skew: rows of each value, in random order, cut by Dirichlet(alpha) proportions."""
    codes, uniques = pd.factorize(col, use_na_sentinel=False)
    n_values = len(uniques)
    shares = rng.dirichlet(np.full(n_clients, alpha), size=n_values)  # (n_values, n_clients)
    order = np.lexsort((rng.permutation(len(col)), codes))  # by value, random within value
    counts = np.bincount(codes, minlength=n_values)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(len(col), dtype=np.int64)
    rank[order] = np.arange(len(col)) - starts[codes[order]]
    cuts = np.rint(np.cumsum(shares, axis=1) * counts[:, None]).astype(np.int64)  # (n_values, n_clients)
    return (rank[:, None] >= cuts[codes]).sum(axis=1)


def _fill_small(assign: np.ndarray, n_clients: int, min_rows: int, rng: np.random.Generator) -> np.ndarray:
    """Move random rows from the largest client to any client below `min_rows`."""
    assign = assign.copy()
    sizes = np.bincount(assign, minlength=n_clients)
    while sizes.min() < min_rows:
        small, big = int(np.argmin(sizes)), int(np.argmax(sizes))
        take = min(min_rows - sizes[small], sizes[big] - min_rows)
        rows = rng.choice(np.flatnonzero(assign == big), size=take, replace=False)
        assign[rows] = small
        sizes[small] += take
        sizes[big] -= take
    return assign


def _by_column(col: pd.Series) -> tuple[np.ndarray, int]:
    """One client per distinct value, in sorted value order."""
    if col.isna().any():
        rows = ", ".join(str(i) for i in np.flatnonzero(col.isna().to_numpy())[:5] + 1)
        raise ValueError(f"partition column {col.name!r} has missing values at row(s) {rows}")
    codes, uniques = pd.factorize(col, sort=True)
    return codes.astype(np.int64), len(uniques)


def _split(df: pd.DataFrame, assign: np.ndarray, n_parts: int) -> list[pd.DataFrame]:
    order = np.argsort(assign, kind="stable")
    bounds = np.cumsum(np.bincount(assign, minlength=n_parts))[:-1]
    return [df.iloc[idx] for idx in np.split(order, bounds)]
