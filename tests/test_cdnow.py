"""CDNOW transactions from the lifetimes wheel, and their RFM features.

Expected values were read off the raw file (`grep ' 00003 ' CDNOW_master.txt`) and
added up by hand; dates are counted to as_of 1998-07-01.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import date

import pandas as pd
import pytest

from fedseg.client.data import validate_frame
from fedseg.simulations.cdnow import cdnow_customers, cdnow_path, cdnow_rfm_schema, load_cdnow_transactions, store_of
from fedseg.simulations.partition import partition


@pytest.fixture(scope="module")
def customers() -> pd.DataFrame:
    return cdnow_customers().set_index("customer_id")


def test_transactions_shape():
    tx = load_cdnow_transactions()
    assert list(tx.columns) == ["customer_id", "date", "amount"]
    assert len(tx) == 69_659
    assert tx["customer_id"].nunique() == 23_570
    assert tx["date"].min() == pd.Timestamp("1997-01-01") and tx["date"].max() == pd.Timestamp("1998-06-30")
    first = tx.iloc[0]
    assert (first["customer_id"], first["date"], first["amount"]) == ("00001", pd.Timestamp("1997-01-01"), 11.77)
    assert (tx["amount"] == 0).sum() == 80  # promotional zero-dollar rows are kept


def test_loading_does_not_import_lifetimes():
    # lifetimes/__init__ needs autograd and dill; reading the data file must not run it
    code = "import sys; from simulations.cdnow import cdnow_customers; cdnow_customers(); print('lifetimes' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert cdnow_path().name == "CDNOW_master.txt"


def test_customer_count_and_default_as_of(customers):
    assert len(customers) == 23_570
    # as_of = 1998-07-01: the last purchase day (1998-06-30) is 1 day back
    assert customers["recency_days"].min() == 1


@pytest.mark.parametrize(
    ("cid", "recency", "frequency", "monetary", "tenure"),
    [
        # 00002: two rows on 1997-01-12 ($12.00 + $77.00); 365 + 170 days to 1998-07-01
        ("00002", 535, 2, 89.00, 535),
        # 00003: 6 rows 1997-01-02 .. 1998-05-28: 20.76+20.76+19.54+57.45+20.96+16.99
        ("00003", 34, 6, 156.46, 545),
        # 00455: a single $0.00 purchase on 1997-01-02
        ("00455", 545, 1, 0.0, 545),
    ],
)
def test_rfm_by_hand(customers, cid, recency, frequency, monetary, tenure):
    row = customers.loc[cid]
    assert row["recency_days"] == recency
    assert row["frequency"] == frequency
    assert row["monetary"] == pytest.approx(monetary)
    assert row["avg_order_value"] == pytest.approx(monetary / frequency)
    assert row["tenure_days"] == tenure


def test_explicit_as_of():
    out = cdnow_customers(as_of=date(1998, 12, 31)).set_index("customer_id")
    assert out.loc["00003", "recency_days"] == 34 + 183  # + Jul..Dec 1998
    with pytest.raises(ValueError, match="date after as_of"):
        cdnow_customers(as_of=date(1998, 1, 1))


def test_stores_are_deterministic_and_balanced(customers):
    counts = customers["store"].value_counts()
    assert sorted(counts.index) == [f"store-{i}" for i in range(1, 6)]
    assert counts.min() > 0.18 * len(customers)
    again = store_of(pd.Series(customers.index[:100]))
    assert again.tolist() == customers["store"].iloc[:100].tolist()
    assert set(store_of(pd.Series(["1", "2", "3", "4", "5", "6", "7"]), n_stores=3)) <= {"store-1", "store-2", "store-3"}


def test_schema_fits_the_data(customers):
    schema = cdnow_rfm_schema()
    frame = customers.reset_index()
    for f in schema.numeric:
        assert frame[f.name].between(f.lower, f.upper).all(), f.name
    parts = partition(frame, "column:store", 0, seed=0)
    assert len(parts) == 5
    table = validate_frame(parts[0][schema.columns], schema, "store-1")
    assert table.n_rows == len(parts[0])
