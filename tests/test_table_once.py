"""A node reads its table once per run and refuses a table that changed (issues 14, 13).

Deployment starts a fresh ClientApp process per message; `FreshProcessTransport` does
the same in process: every message builds its NodeData from the node config and starts
with empty in-memory caches, so only the node's on-disk store can carry the table.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fedseg.client.db as db
import fedseg.client.source as source
from fedseg.client.fingerprint import TableChanged
from fedseg.client.handlers import handle
from fedseg.client.node_data import MemoryCache, NodeData
from fedseg.client.table_store import TableStore
from fedseg.common.config import RunConfig
from fedseg.common.messages import NodeFailure
from fedseg.common.phases.prepare import PrepareRequest
from fedseg.common.synthetic import generate_customers, synthetic_schema
from fedseg.server.orchestrator import Orchestrator
from fedseg.simulations.local_transport import LocalTransport

SCHEMA = synthetic_schema()


def fresh_process() -> None:
    """What a new ClientApp process starts with: nothing in memory."""
    NodeData._MEMORY.entries.clear()
    NodeData._MEMORY.sizes.clear()
    NodeData._FIRST.clear()


class FreshProcessTransport(LocalTransport):
    """Each message: a new NodeData from the node config, empty memory (as deployed);
    `before(phase)` runs before every exchange (to change a table mid-run)."""

    def __init__(self, configs: dict[int, dict], run: str, before=lambda phase: None) -> None:
        self.configs, self.run, self.before = configs, run, before
        super().__init__({nid: source.node_data(c, {}) for nid, c in configs.items()})

    def send(self, requests):
        self.before(next(iter(requests.values())).phase)
        replies = {}
        for nid, request in requests.items():
            fresh_process()
            self.nodes[nid] = source.node_data(self.configs[nid], {}, run=self.run)
            replies.update(super().send({nid: request}))
        return replies


@pytest.fixture()
def three_units(tmp_path):
    """Three units (SQLite, CSV, Parquet) of synthetic customers, their node configs."""
    frame = generate_customers(1800, 3, 5)
    parts = [g.drop(columns=["department", "true_segment"]) for _, g in frame.groupby("department")]
    with sqlite3.connect(tmp_path / "crm.db") as con:
        parts[0].to_sql("customers", con, index=False)
    parts[1].to_csv(tmp_path / "unit2.csv", index=False)
    parts[2].to_parquet(tmp_path / "unit3.parquet", index=False)
    cache = {"table-cache-dir": str(tmp_path / "cache")}
    configs = {1: {"db-url": str(tmp_path / "crm.db"), "db-table": "customers", **cache},
               2: {"data-path": str(tmp_path / "unit2.csv"), **cache},
               3: {"data-path": str(tmp_path / "unit3.parquet"), **cache}}
    return configs, parts, frame


def count_reads(monkeypatch) -> dict[str, int]:
    reads = {"file": 0, "db": 0}
    real_file, real_db = source.load_file, db.load_db_table

    def file(*a, **k):
        reads["file"] += 1
        return real_file(*a, **k)

    def database(*a, **k):
        reads["db"] += 1
        return real_db(*a, **k)

    monkeypatch.setattr(source, "load_file", file)
    monkeypatch.setattr(db, "load_db_table", database)
    return reads


def test_each_table_is_read_once_per_run_across_fresh_processes(three_units, monkeypatch):
    configs, parts, _ = three_units
    reads = count_reads(monkeypatch)
    tr = FreshProcessTransport(configs, run="41")
    result = Orchestrator(RunConfig(k=3, seed=3, min_nodes=3), SCHEMA, tr, [1, 2, 3]).run()
    assert result.failures == {}
    assert result.rounds > 5  # many messages per node, yet one read per table:
    assert reads == {"file": 2, "db": 1}
    assert int(result.profile.counts.sum()) == sum(len(p) for p in parts)
    # the same run without any cache (each message reads the table) gives the same model
    off = {nid: {**c, "table-cache": "off"} for nid, c in configs.items()}
    ref = Orchestrator(RunConfig(k=3, seed=3, min_nodes=3), SCHEMA, FreshProcessTransport(off, run="42"),
                       [1, 2, 3]).run()
    np.testing.assert_array_equal(result.chosen.centroids, ref.chosen.centroids)
    assert reads["file"] > 2 * result.rounds - 2


def test_sqlite_rows_appended_mid_run_drop_that_node(three_units):
    """Issue 13's case: 600 rows appended to the SQLite table after prepare."""
    configs, parts, frame = three_units
    extra = parts[1].head(600).assign(customer_id=lambda f: "new-" + f["customer_id"].astype(str))
    seen: list[str] = []

    def append_after_prepare(phase: str) -> None:
        if seen and seen[-1] == "prepare" and phase != "prepare":
            with sqlite3.connect(configs[1]["db-url"]) as con:
                extra.to_sql("customers", con, index=False, if_exists="append")
        seen.append(phase)

    tr = FreshProcessTransport(configs, run="43", before=append_after_prepare)
    result = Orchestrator(RunConfig(k=3, seed=3, min_nodes=2), SCHEMA, tr, [1, 2, 3]).run()
    assert result.failures == {1: "table-changed"}
    assert result.active == [2, 3]
    assert int(result.profile.counts.sum()) == len(parts[1]) + len(parts[2])
    folder = TableStore(Path(configs[1]["table-cache-dir"]), 2**30).folder("43", tr.nodes[1].key)
    assert list(folder.glob("*.npy")) == []  # the refusing node's arrays are gone ...
    fresh_process()  # ... and asked again, it refuses again (its fingerprint stayed)
    again = handle(PrepareRequest(schema=SCHEMA), source.node_data(configs[1], {}, run="43"))
    assert again == NodeFailure(code="table-changed")


def test_file_edit_is_refused_touch_is_not(tmp_path):
    path = tmp_path / "unit.csv"
    frame = generate_customers(300, 1, 2).drop(columns=["department", "true_segment"])
    frame.to_csv(path, index=False)
    config = {"data-path": str(path), "table-cache-dir": str(tmp_path / "cache")}
    first = source.node_data(config, {}, run="9").table(SCHEMA)
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))  # same bytes, new time
    fresh_process()
    assert source.node_data(config, {}, run="9").table(SCHEMA).n_rows == first.n_rows
    text = path.read_text().replace(str(frame["customer_id"].iloc[0]), "zz-edited", 1)
    path.write_text(text)  # same size class, other content
    fresh_process()
    with pytest.raises(TableChanged):
        source.node_data(config, {}, run="9").table(SCHEMA)
    fresh_process()  # a new run takes the edited table
    assert "zz-edited" in source.node_data(config, {}, run="10").table(SCHEMA).ids


def test_store_is_private_bounded_and_swept(tmp_path):
    root = tmp_path / "cache"
    root.mkdir(mode=0o755)
    store = TableStore.for_node({"table-cache-dir": str(root), "table-cache-max-gb": 1e-5})  # ~10 KiB
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    small, big = np.arange(500, dtype=np.float64), np.zeros(2000)  # 4 KB, 16 KB
    store.save_matrix("r1", "k", "a", small)
    assert stat.S_IMODE(next(store.folder("r1", "k").glob("*.npy")).stat().st_mode) == 0o600
    np.testing.assert_array_equal(store.load_matrix("r1", "k", "a"), small)
    store.save_matrix("r2", "k", "b", big)  # over the bound: not kept
    assert store.load_matrix("r2", "k", "b") is None
    store.save_matrix("r3", "k", "c", small)
    store.save_matrix("r4", "k", "d", small)  # r1 (oldest) evicted to make room
    assert store.load_matrix("r1", "k", "a") is None and store.load_matrix("r4", "k", "d") is not None
    store.sweep(now=time.time() + store.idle_seconds + 1)
    assert list(root.iterdir()) == []


def test_memory_cache_keeps_hundreds_of_nodes():
    """200 simulated nodes on one worker: every table read once (the old count of 64 thrashed)."""
    reads = []
    nodes = [NodeData(f"mem-{i}-{time.time_ns()}", lambda s, i=i: reads.append(i) or _table(i)) for i in range(200)]
    for _ in range(3):
        for node in nodes:
            node.table(SCHEMA)
    assert sorted(reads) == list(range(200))
    cache = MemoryCache(max_bytes=100)
    for i in range(5):
        cache.put((i,), i, 60)
    assert list(cache.entries) == [3, 4] or list(cache.entries) == [(3,), (4,)]


def _table(i: int):
    from fedseg.common.preprocessing import LocalTable

    return LocalTable(ids=np.array([f"{i}"]), numeric=np.zeros((1, 3)), codes=np.zeros((1, 0), np.int64))


def test_batched_reads_equal_whole_reads(tmp_path, monkeypatch):
    """CSV, Parquet and SQLite read in batches of 64 rows equal pandas' whole-table read."""
    import fedseg.client.streaming as streaming
    from fedseg.client.data import validate_frame

    frame = generate_customers(700, 1, 4).drop(columns=["department", "true_segment"])
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet", index=False)
    with sqlite3.connect(tmp_path / "t.db") as con:
        frame.to_sql("customers", con, index=False)
    ref = validate_frame(pd.read_csv(tmp_path / "t.csv", dtype=str, keep_default_na=False), SCHEMA, "ref")
    monkeypatch.setattr(streaming, "CSV_BLOCK_BYTES", 4096)
    monkeypatch.setattr(streaming, "CSV_STREAM_FROM_BYTES", 0)  # stream even this small file
    tables = [streaming.load_file(tmp_path / "t.csv", SCHEMA),
              streaming.load_file(tmp_path / "t.parquet", SCHEMA, batch_rows=64)]
    with db.sql_batches(str(tmp_path / "t.db"), table="customers", columns=list(SCHEMA.columns),
                        batch_rows=64) as (batches, label):
        tables.append(streaming.validate_batches(batches, SCHEMA, label))
    for table in tables:
        np.testing.assert_array_equal(table.ids, ref.ids)
        np.testing.assert_allclose(table.numeric, ref.numeric, rtol=1e-12)
        np.testing.assert_array_equal(table.codes, ref.codes)


def test_messy_csv_streamed_equals_whole_read(tmp_path, monkeypatch):
    """A `;`-separated Latin-1 export with gaps and out-of-range values, streamed in 4 KiB
    blocks: the same rows, values and gap/clip counts as the whole-file reader, and the
    counts equal the hand counts of the defects written."""
    import fedseg.client.streaming as streaming
    from fedseg.client.data import load_table
    from fedseg.common.schema import load_schema
    from tests.messy import write_messy

    data, schema_path, frame, facts = write_messy(tmp_path, n=1500)
    text = data.read_bytes().replace(b";1e308;", b";50000;")  # the one value that is an error
    data.write_bytes(text)
    schema = load_schema(schema_path)
    monkeypatch.setattr(streaming, "CSV_BLOCK_BYTES", 4096)
    monkeypatch.setattr(streaming, "CSV_STREAM_FROM_BYTES", 0)
    whole, streamed = load_table(data, schema), streaming.load_file(data, schema)
    np.testing.assert_array_equal(streamed.ids, whole.ids)
    np.testing.assert_array_equal(streamed.numeric, whole.numeric)
    np.testing.assert_array_equal(streamed.codes, whole.codes)
    cov = streamed.coverage
    assert (cov.rows, cov.kept) == (1500, 1500 - len(facts["gap_visits"]))
    assert list(cov.missing) == [len(facts["nan_age"]), len(facts["empty_income"]) + len(facts["nan_income"]),
                                 len(facts["gap_visits"]), len(facts["gap_city"])]
    assert cov.clipped[0] == len(facts["above_age"])


def test_store_keeps_a_tables_gap_counts(tmp_path):
    """A fresh ClientApp process that finds its table in the store answers the coverage
    phase with the gaps the file has (before: none, as if the table were complete)."""
    from fedseg.client.data import load_table
    from fedseg.client.table_store import TableStore
    from fedseg.common.schema import load_schema
    from tests.messy import write_messy

    data, schema_path, frame, facts = write_messy(tmp_path, n=400)
    data.write_bytes(data.read_bytes().replace(b";1e308;", b";50000;"))
    table = load_table(data, load_schema(schema_path))
    (tmp_path / "store").mkdir(mode=0o700)
    store = TableStore(tmp_path / "store", max_bytes=1 << 30)
    store.save_table("7", "file:x", "d", table)
    again = store.load_table("7", "file:x", "d")
    assert list(again.coverage.missing) == list(table.coverage.missing)
    assert again.coverage.missing[3] == len(facts["gap_city"]) and again.coverage.kept == table.coverage.kept
    assert list(again.coverage.clipped) == list(table.coverage.clipped)


def test_duplicate_id_across_batches_names_its_row(tmp_path):
    import fedseg.client.streaming as streaming
    from fedseg.client.data import DataError

    frame = generate_customers(200, 1, 4).drop(columns=["department", "true_segment"])
    frame.loc[150, "customer_id"] = frame.loc[3, "customer_id"]
    frame.to_parquet(tmp_path / "d.parquet", index=False)
    with pytest.raises(DataError, match=r"duplicate id\(s\) at rows 151"):
        streaming.load_file(tmp_path / "d.parquet", SCHEMA, batch_rows=64)


def test_ray_address_reaches_the_engine(monkeypatch, tmp_path):
    """`fedseg simulate --ray-address` (or RAY_ADDRESS) is what Flower's Ray backend gets."""
    import flwr.simulation
    from typer.testing import CliRunner

    from fedseg.cli.main import cli

    seen: list[dict] = []

    def fake_run_simulation(**kwargs):
        seen.append(kwargs["backend_config"])

    monkeypatch.setattr(flwr.simulation, "run_simulation", fake_run_simulation)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    args = ["simulate", "--clients", "3", "--customers", "300", "--k", "2", "--out", str(tmp_path / "o")]
    for extra, env in ((["--ray-address", "ray://10.0.0.5:10001"], None), ([], "auto"), ([], None)):
        if env:
            monkeypatch.setenv("RAY_ADDRESS", env)
        else:
            monkeypatch.delenv("RAY_ADDRESS", raising=False)
        CliRunner().invoke(cli, args + extra)  # no model comes back from the fake engine
    assert [c["init_args"].get("address") for c in seen] == ["ray://10.0.0.5:10001", "auto", None]
    assert "num_cpus" not in seen[0]["init_args"] and seen[2]["init_args"]["num_cpus"] >= 1
