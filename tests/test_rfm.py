"""RFM from a transaction log: hand-computed values and row-precise errors."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from fedseg.common.rfm import rfm_from_transactions


def log() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "cust": ["b", "a", "a", "b", "a", "c"],
            "when": ["2024-03-01", "2024-01-01", "2024-02-15", "2024-03-01", "2024-01-20", "2023-12-31"],
            "amt": [10.0, 5.0, 20.0, 30.0, 15.0, 100.0],
        }
    )


def rfm(tx: pd.DataFrame, as_of=date(2024, 3, 31), **kw) -> pd.DataFrame:
    return rfm_from_transactions(tx, id_column="cust", date_column="when", amount_column="amt", as_of=as_of, **kw)


def test_hand_computed_rfm():
    # Prepare: a: 3 orders (Jan 1, Jan 20, Feb 15) = 40; b: 2 orders the same day (Mar 1) = 40;
    # c: one order on Dec 31 = 100. As of Mar 31 2024 (leap year: Feb has 29 days).
    # Execute
    out = rfm(log())
    # Assert
    assert list(out.columns) == ["cust", "recency_days", "frequency", "monetary", "avg_order_value", "tenure_days"]
    assert list(out["cust"]) == ["a", "b", "c"]
    assert list(out["recency_days"]) == [14 + 31, 30, 31 + 29 + 31]  # Feb 15→Mar 31, Mar 1→Mar 31, Dec 31→Mar 31
    assert list(out["frequency"]) == [3, 2, 1]  # same-day orders count separately
    assert_allclose(out["monetary"], [40.0, 40.0, 100.0])
    assert_allclose(out["avg_order_value"], [40 / 3, 20.0, 100.0])
    assert list(out["tenure_days"]) == [31 + 29 + 30, 30, 91]


def test_day_granularity_and_datetime_as_of():
    # Prepare: a purchase at 23:00 on as_of's own day is not in the future
    tx = pd.DataFrame({"cust": ["x", "x"], "when": pd.to_datetime(["2024-03-30 08:00", "2024-03-31 23:00"]), "amt": [1, 2]})
    # Execute
    out = rfm(tx, as_of=datetime(2024, 3, 31, 9, 0))
    # Assert
    assert out["recency_days"].tolist() == [0]
    assert out["tenure_days"].tolist() == [1]


@pytest.mark.parametrize(
    ("column", "row", "value", "message"),
    [
        ("cust", 3, None, "'cust': missing customer id at row 3"),
        ("cust", 2, "  ", "'cust': missing customer id at row 2"),
        ("when", 4, "not a date", "'when': missing or unparseable date at row 4"),
        ("when", 5, None, "'when': missing or unparseable date at row 5"),
        ("when", 1, "2024-04-01", "'when': date after as_of 2024-03-31 at row 1"),
        ("amt", 6, 0.0, "'amt': zero or negative amount at row 6"),
        ("amt", 2, -5.0, "'amt': zero or negative amount at row 2"),
        ("amt", 3, np.nan, "'amt': missing or non-numeric amount at row 3"),
        ("amt", 1, np.inf, "'amt': infinite amount at row 1"),
    ],
)
def test_bad_rows_are_named(column, row, value, message):
    # Prepare
    tx = log().astype({column: object})
    tx.loc[row - 1, column] = value
    # Execute / Assert
    with pytest.raises(ValueError, match=message):
        rfm(tx)


def test_several_bad_rows_listed_one_based():
    tx = log()
    tx["amt"] = [1.0, -1.0, 2.0, -3.0, 0.0, 4.0]
    with pytest.raises(ValueError, match=r"'amt': zero or negative amount at rows 2, 4, 5$"):
        rfm(tx)


def test_zero_amount_allowed_on_request_but_not_negative():
    tx = log()
    tx.loc[5, "amt"] = 0.0
    out = rfm(tx, allow_zero_amounts=True)
    assert out.loc[out["cust"] == "c", "monetary"].item() == 0.0
    tx.loc[5, "amt"] = -1.0
    with pytest.raises(ValueError, match="negative amount at row 6"):
        rfm(tx, allow_zero_amounts=True)


def test_missing_column_and_empty_log():
    with pytest.raises(ValueError, match=r"lack column\(s\) \['amt'\]"):
        rfm(log().drop(columns=["amt"]))
    with pytest.raises(ValueError, match="no rows"):
        rfm(log().iloc[:0])


def test_matches_an_independent_loop_on_random_log():
    # Prepare: a random log, checked against a plain per-customer computation
    rng = np.random.default_rng(3)
    n = 500
    tx = pd.DataFrame(
        {
            "cust": rng.integers(0, 40, n).astype(str),
            "when": pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D"),
            "amt": rng.uniform(1, 100, n).round(2),
        }
    )
    as_of = date(2024, 1, 10)
    # Execute
    out = rfm(tx, as_of=as_of).set_index("cust")
    # Assert
    for cust, rows in tx.groupby("cust"):
        days = [(as_of - d.date()).days for d in rows["when"]]
        assert out.loc[cust, "recency_days"] == min(days)
        assert out.loc[cust, "tenure_days"] == max(days)
        assert out.loc[cust, "frequency"] == len(rows)
        assert out.loc[cust, "monetary"] == pytest.approx(sum(rows["amt"]))
