"""A node holding a transactions table: RFM derived on the node, bad rows reported with
file, column and row; a bad node fails alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fedseg.client.data import DataError, load_table, validate_frame
from fedseg.common.config import ConfigError, RunConfig
from fedseg.common.schema import SchemaError, parse_schema
from fedseg.server.orchestrator import Orchestrator
from tests.helpers import frame_nodes, transport

SCHEMA_TOML = """
id = "cust"

[[numeric]]
name = "recency_days"
lower = 0.0
upper = 400.0

[[numeric]]
name = "frequency"
lower = 1.0
upper = 100.0

[[numeric]]
name = "monetary"
transform = "log1p"
lower = 0.0
upper = 10000.0

[transactions]
date = "when"
amount = "amt"
as_of = 2024-03-31
"""


def tx() -> pd.DataFrame:
    return pd.DataFrame({
        "cust": ["b", "a", "a", "b", "a", "c"],
        "when": ["2024-03-01", "2024-01-01", "2024-02-15", "2024-03-01", "2024-01-20", "2023-12-31"],
        "amt": ["10", "5", "20", "30", "15", "100"],
    })


def test_node_derives_rfm_by_hand(tmp_path):
    # Prepare: a: 3 orders, last Feb 15 (45 days), 40; b: 2 orders Mar 1 (30 days), 40; c: Dec 31 (91 days), 100
    schema = parse_schema(SCHEMA_TOML)
    path = tmp_path / "store.csv"
    tx().to_csv(path, index=False)
    # Execute
    table = load_table(path, schema)
    # Assert
    assert table.ids.tolist() == ["a", "b", "c"]
    assert table.numeric.tolist() == [[45, 3, 40], [30, 2, 40], [91, 1, 100]]
    assert schema.columns == ["cust", "when", "amt"]


@pytest.mark.parametrize(
    ("column", "row", "value", "message"),
    [
        ("when", 2, "2024-04-02", "'when': date after as_of 2024-03-31 at row 2"),
        ("when", 3, "-2024-01-01", "'when': negative date at row 3"),
        ("when", 1, "1850-01-01", "'when': date before 1900-01-01 (negative or implausible) at row 1"),
        ("when", 4, "", "'when': missing or unparseable date at row 4"),
        ("amt", 5, "0", "'amt': zero or negative amount at row 5"),
        ("amt", 6, "-3.5", "'amt': zero or negative amount at row 6"),
        ("cust", 2, "", "'cust': missing customer id at row 2"),
    ],
)
def test_bad_rows_name_file_column_row(tmp_path, column, row, value, message):
    frame = tx()
    frame.loc[row - 1, column] = value
    path = tmp_path / "store-7.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError) as err:
        load_table(path, parse_schema(SCHEMA_TOML))
    assert str(path) in str(err.value) and message in str(err.value)


def test_missing_column_and_missing_as_of():
    schema = parse_schema(SCHEMA_TOML.replace("as_of = 2024-03-31", ""))
    with pytest.raises(DataError, match="needs an as-of date"):
        validate_frame(tx(), schema, "store-1.csv")
    with pytest.raises(DataError, match=r"store-1.csv: missing column\(s\) \['amt'\]"):
        validate_frame(tx().drop(columns="amt"), parse_schema(SCHEMA_TOML), "store-1.csv")


def test_schema_rejects_features_a_transactions_node_cannot_derive():
    with pytest.raises(SchemaError, match="derives only"):
        parse_schema(SCHEMA_TOML.replace('name = "frequency"', 'name = "income"'))
    with pytest.raises(ConfigError, match="as-of"):
        RunConfig.parse({"as_of": "2024-02-30"})


def test_bad_node_fails_alone_and_run_config_as_of_applies(caplog):
    # Prepare: three stores of a purchase log, one with a future purchase
    rng = np.random.default_rng(3)
    n = 3000
    log = pd.DataFrame({
        "cust": rng.integers(0, 600, n).astype(str),
        "when": (pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 300, n), unit="D")).astype(str),
        "amt": np.round(rng.uniform(1, 200, n), 2).astype(str),
    })
    store = log["cust"].astype(int) % 3
    frames = [log[store == s].reset_index(drop=True) for s in range(3)]
    frames[1].loc[4, "when"] = "2025-06-01"
    schema = parse_schema(SCHEMA_TOML.replace("as_of = 2024-03-31", ""))
    nodes = frame_nodes(frames)
    # Execute
    result = Orchestrator(RunConfig(k=3, restarts=1, as_of="2024-12-31"), schema, transport(nodes), list(nodes)).run()
    # Assert: node 2 (frames[1]) left with a precise reason; the others made the model
    assert result.failures == {2: "bad-table"}  # a code for the server; the detail in the node's log
    node_log = " ".join(r.getMessage() for r in caplog.records if r.name == "fedseg.client")
    assert "'when': date after as_of 2024-12-31 at row 5" in node_log
    pooled = pd.concat([frames[0], frames[2]])
    assert result.n_customers == pooled["cust"].nunique()
    last = pd.to_datetime(pooled["when"]).groupby(pooled["cust"]).max()
    ref = (pd.Timestamp("2024-12-31") - last).dt.days.to_numpy(float)
    assert result.scaler.mean[0] == pytest.approx(ref.mean(), rel=1e-12)
