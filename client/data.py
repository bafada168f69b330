"""Loading and validating a node's customer table against the schema.

Every problem is reported with the file, the column and the offending rows, all problems
at once (`common.table_problems`), so a data steward can fix the table in one pass; gaps
and out-of-range values follow the schema's policies (`common.table_policy`). A node with
bad data answers the server with a code only and drops out alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fedseg.client.reading import ReadOptions, one_column_hint, read_csv
from fedseg.common.preprocessing import LocalTable
from fedseg.common.rfm import rfm_from_transactions
from fedseg.common.schema import FeatureSchema
from fedseg.common.table_policy import Coverage, apply_policies, to_numbers
from fedseg.common.table_problems import DataError, Problem, problem_at, raise_if_any, rows_text

__all__ = ["DataError", "Inspection", "inspect_frame", "load_table", "read_frame", "validate_frame"]


def _rows(mask: np.ndarray) -> str:
    """1-based data row numbers of the first offending rows (row 1 is below the header)."""
    return rows_text(np.flatnonzero(mask))


def read_frame(path: str | Path, options: ReadOptions | None = None) -> pd.DataFrame:
    """Read a CSV (every cell as text, so nothing is silently coerced; delimiter and
    encoding sniffed unless `options` says) or Parquet file."""
    path = Path(path)
    options = options or ReadOptions()
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    try:
        if path.suffix.lower() in {".parquet", ".pq"}:
            return pd.read_parquet(path)
        return read_csv(path, options)
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path}: file is empty") from exc
    except (pd.errors.ParserError, OSError, ValueError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{path}: cannot parse table: {exc}") from exc


@dataclass
class Inspection:
    """Everything a table check found: the clean table (None when there are problems),
    every problem, and the per-column counts (None when the columns did not match)."""

    table: LocalTable | None
    problems: list[Problem] = field(default_factory=list)
    coverage: Coverage | None = None


def validate_frame(frame: pd.DataFrame, schema: FeatureSchema, source: str) -> LocalTable:
    """Check columns, ids, numbers and categories and apply the schema's gap and range
    policies; return clean arrays, or raise one DataError listing every problem. A
    transactions node first derives its customer table (RFM per customer)."""
    found = inspect_frame(frame, schema, source)
    raise_if_any(source, found.problems)
    return found.table


def inspect_frame(frame: pd.DataFrame, schema: FeatureSchema, source: str) -> Inspection:
    """Every problem of a table at once (grouped by column and kind), and its coverage."""
    if schema.transactions is not None:
        return inspect_frame(customers_from_transactions(frame, schema, source), schema.customer_view(), source)
    columns = [str(c) for c in frame.columns]
    problems: list[Problem | None] = []
    absent = [c for c in schema.columns if c not in columns]
    if absent:
        problems.append(Problem(None, f"missing column(s) {absent} (the schema expects {schema.columns})"
                                + one_column_hint(columns)))
    extra = [c for c in columns if c not in schema.columns]
    if extra and not schema.allow_extra_columns and len(columns) > 1:
        problems.append(Problem(None, f"unexpected column(s) {extra}; remove them or set allow_extra_columns = true"))
    if len(frame) == 0:
        problems.append(Problem(None, "table has a header but no rows"))
    if absent or len(frame) == 0:
        return Inspection(None, [p for p in problems if p is not None])
    ids = _ids(frame[schema.id], schema.id, problems)
    n = len(frame)
    numeric = np.column_stack([_numeric(frame[c], c, problems) for c in schema.numeric_names]) \
        if schema.numeric else np.zeros((n, 0))
    codes = np.column_stack([_codes(frame[c.name], c.name, c.values, problems) for c in schema.categorical]) \
        if schema.categorical else np.zeros((n, 0), dtype=np.int64)
    cleaned = apply_policies(numeric, codes, schema)
    problems += cleaned.problems
    if cleaned.coverage.kept == 0:
        problems.append(Problem(None, "every row is left out by the schema's drop policies"))
    found = [p for p in problems if p is not None]
    table = None if found else LocalTable(ids=ids[cleaned.keep], numeric=cleaned.numeric, codes=cleaned.codes,
                                          coverage=cleaned.coverage, defects=cleaned.defects)
    return Inspection(table, found, cleaned.coverage)


def _blank(col: pd.Series) -> tuple[pd.Series, np.ndarray]:
    text = col.astype(str).str.strip()
    return text, (text == "").to_numpy() | col.isna().to_numpy()


def _ids(col: pd.Series, name: str, problems: list) -> np.ndarray:
    text, blank = _blank(col)
    problems.append(problem_at(name, "missing id", blank))
    problems.append(problem_at(name, "duplicate id(s)", text.duplicated(keep="first").to_numpy() & ~blank))
    return text.to_numpy(dtype=str)


def _numeric(col: pd.Series, name: str, problems: list) -> np.ndarray:
    """Values with NaN for a gap (empty cell or NaN); a cell that is not a number is a
    problem (its value is then a placeholder: the table is not used)."""
    if col.dtype == object or pd.api.types.is_string_dtype(col):
        text, blank = _blank(col)
        values, gap, bad = to_numbers(text)
        bad &= ~blank
        if bad.any():
            first = str(text.to_numpy()[np.flatnonzero(bad)[0]])
            problems.append(problem_at(name, f"{first!r} is not a number", bad))
            values[bad] = 0.0
        return values
    if pd.api.types.is_bool_dtype(col) or not pd.api.types.is_numeric_dtype(col):
        problems.append(Problem(name, f"expected numbers, found {col.dtype}"))
        return np.zeros(len(col))
    return col.to_numpy(dtype=float, na_value=np.nan)


def _codes(col: pd.Series, name: str, vocab: tuple[str, ...], problems: list) -> np.ndarray:
    """Vocabulary index per row, -1 for a gap (empty cell); an unknown value is a problem."""
    text, blank = _blank(col)
    text = text.to_numpy(dtype=str)
    lookup = {v: i for i, v in enumerate(vocab)}
    uniq, inverse = np.unique(text, return_inverse=True)
    codes = np.array([lookup.get(v, -1) for v in uniq], dtype=np.int64)  # distinct values only
    per_row = codes[inverse.ravel()]
    unknown = (per_row < 0) & ~blank
    if unknown.any():
        first = str(text[np.flatnonzero(unknown)[0]])
        problems.append(problem_at(name, f"{first!r} is not in the vocabulary {list(vocab)}", unknown))
        per_row[unknown] = 0
    return np.where(blank, -1, per_row).astype(np.int64)


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


def load_table(path: str | Path, schema: FeatureSchema, options: ReadOptions | None = None) -> LocalTable:
    """Read and validate one file."""
    return validate_frame(read_frame(path, options), schema, str(path))
