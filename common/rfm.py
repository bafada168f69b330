"""RFM (recency, frequency, monetary) features from a transaction log.

Segmentation tables are rarely stored per customer: shops keep purchases. This turns a
purchase log into one row per customer, after checking the log, so a bad row is reported
(column and 1-based data row numbers) instead of silently shifting every customer's RFM.

Conventions (documented because RFM has several):
- day granularity: times of day are dropped; `as_of` is a calendar day;
- `recency_days`: days from the customer's last purchase day to `as_of`;
- `frequency`: number of transactions (rows), as in the CDNOW literature; two orders on
  the same day count twice;
- `monetary`: total spend over all transactions; `avg_order_value` = monetary / frequency;
- `tenure_days`: days from the first purchase day to `as_of` (how long the customer is known).
"""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pandas as pd

RFM_COLUMNS = ("recency_days", "frequency", "monetary", "avg_order_value", "tenure_days")
_SHOW_ROWS = 5


def _rows(mask: np.ndarray) -> str:
    """1-based data row numbers of the first offending rows."""
    idx = np.flatnonzero(mask)[:_SHOW_ROWS] + 1
    more = int(mask.sum()) - len(idx)
    text = ", ".join(str(i) for i in idx)
    return f"row{'s' if len(idx) > 1 else ''} {text}" + (f" (+{more} more)" if more > 0 else "")


def _fail_if(mask: np.ndarray, column: str, problem: str) -> None:
    if mask.any():
        raise ValueError(f"column {column!r}: {problem} at {_rows(mask)}")


def _check_ids(col: pd.Series, column: str) -> None:
    missing = col.isna().to_numpy()
    blank = col.astype(str).str.strip().eq("").to_numpy() & ~missing
    _fail_if(missing | blank, column, "missing customer id")


def _days(col: pd.Series, column: str) -> pd.Series:
    """Purchase dates as midnight timestamps; unparseable or missing dates are errors."""
    if pd.api.types.is_datetime64_any_dtype(col):
        parsed = col
    else:
        parsed = pd.to_datetime(col, errors="coerce")
    _fail_if(parsed.isna().to_numpy(), column, "missing or unparseable date")
    if getattr(parsed.dt, "tz", None) is not None:
        raise ValueError(f"column {column!r}: dates must be timezone-naive (local calendar days)")
    return parsed.dt.normalize()


def _amounts(col: pd.Series, column: str, allow_zero: bool) -> np.ndarray:
    values = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    _fail_if(np.isnan(values), column, "missing or non-numeric amount")
    _fail_if(np.isinf(values), column, "infinite amount")
    if allow_zero:
        _fail_if(values < 0, column, "negative amount")
    else:
        _fail_if(values <= 0, column, "zero or negative amount")
    return values


def rfm_from_transactions(
    tx: pd.DataFrame,
    *,
    id_column: str,
    date_column: str,
    amount_column: str,
    as_of: date | datetime,
    allow_zero_amounts: bool = False,
) -> pd.DataFrame:
    """One row per customer (sorted by id): the id column, then `RFM_COLUMNS`.

    Raises ValueError naming the column and first bad rows for missing ids, missing or
    unparseable dates, dates after `as_of`, and NaN/infinite/non-positive amounts
    (zero is accepted with `allow_zero_amounts`, e.g. free promotional items).
    """
    missing = [c for c in (id_column, date_column, amount_column) if c not in tx.columns]
    if missing:
        raise ValueError(f"transactions lack column(s) {missing}; found {list(tx.columns)}")
    if len(tx) == 0:
        raise ValueError("transactions table has no rows")
    day = pd.Timestamp(as_of).normalize()
    _check_ids(tx[id_column], id_column)
    days = _days(tx[date_column], date_column)
    _fail_if((days > day).to_numpy(), date_column, f"date after as_of {day.date()}")
    amounts = _amounts(tx[amount_column], amount_column, allow_zero_amounts)

    log = pd.DataFrame({"id": tx[id_column].to_numpy(), "day": days.to_numpy(), "amount": amounts})
    per = log.groupby("id", sort=True).agg(
        first=("day", "min"), last=("day", "max"), frequency=("amount", "size"), monetary=("amount", "sum")
    )
    out = pd.DataFrame(
        {
            id_column: per.index.to_numpy(),
            "recency_days": (day - per["last"]).dt.days.to_numpy(dtype=np.int64),
            "frequency": per["frequency"].to_numpy(dtype=np.int64),
            "monetary": per["monetary"].to_numpy(dtype=float),
            "avg_order_value": (per["monetary"] / per["frequency"]).to_numpy(dtype=float),
            "tenure_days": (day - per["first"]).dt.days.to_numpy(dtype=np.int64),
        }
    )
    return out
