"""Loading and validating a node's customer table against the schema.

Every problem is reported with the file, the column and the first offending rows, so a
data steward can fix the table; a node with bad data answers the server with this
message and drops out alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fedseg.common.preprocessing import LocalTable
from fedseg.common.rfm import rfm_from_transactions
from fedseg.common.schema import FeatureSchema

_SHOW_ROWS = 5


class DataError(ValueError):
    """A table that does not match the schema; the message names file, column, rows."""


def _rows(mask: np.ndarray) -> str:
    """1-based data row numbers of the first offending rows (row 1 is below the header)."""
    idx = np.flatnonzero(mask)[:_SHOW_ROWS] + 1
    more = int(mask.sum()) - len(idx)
    text = ", ".join(str(i) for i in idx)
    return f"row{'s' if len(idx) > 1 else ''} {text}" + (f" (+{more} more)" if more > 0 else "")


def read_frame(path: str | Path) -> pd.DataFrame:
    """Read a CSV (every cell as text, so nothing is silently coerced) or Parquet file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    try:
        if path.suffix.lower() in {".parquet", ".pq"}:
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path}: file is empty") from exc
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot parse table: {exc}") from exc


def validate_frame(frame: pd.DataFrame, schema: FeatureSchema, source: str) -> LocalTable:
    """Check columns, ids, numbers and categories; return clean arrays. A transactions
    node first derives its customer table (RFM per customer)."""
    if schema.transactions is not None:
        return validate_frame(customers_from_transactions(frame, schema, source), schema.customer_view(), source)
    columns = [str(c) for c in frame.columns]
    missing = [c for c in schema.columns if c not in columns]
    if missing:
        raise DataError(f"{source}: missing column(s) {missing} (the schema expects {schema.columns})")
    extra = [c for c in columns if c not in schema.columns]
    if extra and not schema.allow_extra_columns:
        raise DataError(
            f"{source}: unexpected column(s) {extra}; remove them or set allow_extra_columns = true"
        )
    if len(frame) == 0:
        raise DataError(f"{source}: table has a header but no rows")
    ids = _ids(frame[schema.id], schema.id, source)
    numeric = np.column_stack([_numeric(frame[c], c, source) for c in schema.numeric_names]) if schema.numeric else np.zeros((len(frame), 0))
    codes = np.column_stack(
        [_codes(frame[c.name], c.name, c.values, source) for c in schema.categorical]
    ) if schema.categorical else np.zeros((len(frame), 0), dtype=np.int64)
    return LocalTable(ids=ids, numeric=numeric, codes=codes)


def _ids(col: pd.Series, name: str, source: str) -> np.ndarray:
    text = col.astype(str).str.strip()
    blank = (text == "").to_numpy() | col.isna().to_numpy()
    if blank.any():
        raise DataError(f"{source}: column {name!r}: missing id at {_rows(blank)}")
    dup = text.duplicated(keep="first").to_numpy()
    if dup.any():
        raise DataError(f"{source}: column {name!r}: duplicate id(s) at {_rows(dup)}")
    return text.to_numpy(dtype=str)


def _numeric(col: pd.Series, name: str, source: str) -> np.ndarray:
    if col.dtype == object or pd.api.types.is_string_dtype(col):
        text = col.astype(str).str.strip()
        blank = (text == "").to_numpy() | col.isna().to_numpy()
        values = pd.to_numeric(text.where(~blank, None), errors="coerce").to_numpy(dtype=float)
        bad = np.isnan(values) & ~blank & ~text.str.lower().isin(["nan", "-nan"]).to_numpy()
        if bad.any():
            first = str(text.to_numpy()[np.flatnonzero(bad)[0]])
            raise DataError(f"{source}: column {name!r}: {first!r} is not a number at {_rows(bad)}")
    elif pd.api.types.is_bool_dtype(col) or not pd.api.types.is_numeric_dtype(col):
        raise DataError(f"{source}: column {name!r}: expected numbers, found {col.dtype}")
    else:
        values = col.to_numpy(dtype=float, na_value=np.nan)
    if np.isnan(values).any():
        raise DataError(f"{source}: column {name!r}: missing value (NaN) at {_rows(np.isnan(values))}")
    if np.isinf(values).any():
        raise DataError(f"{source}: column {name!r}: infinite value at {_rows(np.isinf(values))}")
    return values


def _codes(col: pd.Series, name: str, vocab: tuple[str, ...], source: str) -> np.ndarray:
    text = col.astype(str).str.strip().to_numpy(dtype=str)
    lookup = {v: i for i, v in enumerate(vocab)}
    uniq, inverse = np.unique(text, return_inverse=True)
    codes = np.array([lookup.get(v, -1) for v in uniq], dtype=np.int64)  # distinct values only
    per_row = codes[inverse]
    unknown = per_row < 0
    if unknown.any():
        first = str(text[np.flatnonzero(unknown)[0]])
        raise DataError(
            f"{source}: column {name!r}: {first!r} is not in the vocabulary {list(vocab)} at {_rows(unknown)}"
        )
    return per_row.astype(np.int64)


def customers_from_transactions(frame: pd.DataFrame, schema: FeatureSchema, source: str) -> pd.DataFrame:
    """RFM per customer from this node's purchases (vectorised, see `common.rfm`); bad
    rows fail with the file, column and row numbers."""
    tx = schema.transactions
    if tx.as_of is None:
        raise DataError(f"{source}: a transactions table needs an as-of date (run config `as-of` or [transactions] as_of)")
    missing = [c for c in schema.columns if c not in [str(c) for c in frame.columns]]
    if missing:
        raise DataError(f"{source}: missing column(s) {missing} (a transactions table needs {schema.columns})")
    if len(frame) == 0:
        raise DataError(f"{source}: table has a header but no rows")
    try:
        dates = _tx_dates(frame[tx.date], tx.date, tx.earliest)
        return rfm_from_transactions(
            frame.assign(**{tx.date: dates}), id_column=schema.id, date_column=tx.date,
            amount_column=tx.amount, as_of=tx.as_of, allow_zero_amounts=tx.allow_zero_amounts,
        )
    except ValueError as exc:
        raise DataError(f"{source}: {exc}") from exc


def _tx_dates(col: pd.Series, name: str, earliest) -> pd.Series:
    """Calendar dates; a negative (leading '-') or pre-`earliest` date is an error."""
    if pd.api.types.is_datetime64_any_dtype(col):
        parsed = col
    else:
        text = col.astype(str).str.strip()
        negative = text.str.startswith("-").to_numpy()
        if negative.any():
            raise ValueError(f"column {name!r}: negative date at {_rows(negative)}")
        parsed = pd.to_datetime(text.where(text != "", None), errors="coerce", format="mixed")
        bad = parsed.isna().to_numpy()
        if bad.any():
            raise ValueError(f"column {name!r}: missing or unparseable date at {_rows(bad)}")
    early = (parsed < pd.Timestamp(earliest)).to_numpy()
    if early.any():
        raise ValueError(f"column {name!r}: date before {earliest} (negative or implausible) at {_rows(early)}")
    return parsed


def load_table(path: str | Path, schema: FeatureSchema) -> LocalTable:
    """Read and validate one file."""
    return validate_frame(read_frame(path), schema, str(path))
