"""Where a node's table comes from: its node config, or the simulation's data folder.

- Deployment, a file: `--node-config 'data-path="/srv/customers.csv"'` (CSV or Parquet).
- Deployment, a database (SQLAlchemy; see `client/db.py`):
  `--node-config 'db-url="sqlite:////srv/crm.db" db-table="customers"'` or
  `db-query="SELECT ... FROM ..."` instead of `db-table`; `db-url-env="CRM_DB_URL"` reads
  the URL (with its password) from that environment variable instead of the command line.
  A bare path as `db-url` is a SQLite file; `postgresql://user@host:5432/db` works with
  psycopg installed.
- Optional label write-back after a run (`fedseg label-node`): `labels-path` (CSV or
  Parquet file) or `labels-table` (a table in the node's database, replaced).
- Simulation: the run config's `data-dir` holds `node-<partition-id>.parquet|csv`.
- Neither: the built-in synthetic customers, this node's department of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fedseg.client import label_files
from fedseg.client.data import DataError, validate_frame
from fedseg.client.fingerprint import file_fingerprint
from fedseg.client.node_data import NodeData
from fedseg.client.streaming import load_file
from fedseg.client.table_store import TableStore
from fedseg.common.preprocessing import LocalTable
from fedseg.common.schema import FeatureSchema


DB_KEYS = ("db-url", "db-url-env", "db-table", "db-query")
SOURCE_KEYS = ("data-path", *DB_KEYS)
LABEL_KEYS = ("labels-path", "labels-table")


def node_data(node_config: Mapping[str, Any], run_config: Mapping[str, Any], run: str = "") -> NodeData:
    """The NodeData for this node, from Flower's node and run config; `run` (Flower's run
    id) turns on the table fingerprint and, for a deployed node's own table, the on-disk
    store (`client/table_store.py`)."""
    if any(node_config.get(k) for k in DB_KEYS):
        if node_config.get("data-path"):
            return _failing("node config: give either data-path or db-url, not both")
        return _database(node_config, run, TableStore.for_node(node_config) if run else None)
    if node_config.get("data-path"):
        path = Path(str(node_config["data-path"])).expanduser()
        return _file(path, run, TableStore.for_node(node_config) if run else None)
    partition = int(node_config.get("partition-id", 0))
    if run_config.get("data-dir"):
        return _file(simulation_file(Path(str(run_config["data-dir"])), partition), run)
    return _synthetic(partition, int(node_config.get("num-partitions", 1)), run_config)


def _file(path: Path, run: str = "", store: TableStore | None = None) -> NodeData:
    """A file source read in batches. Within a run the fingerprint guards it; without a
    run id the key carries size and modification time (a changed file is read again)."""
    try:
        stat = path.stat()
        key = f"file:{path.resolve()}" + ("" if run else f":{stat.st_size}:{stat.st_mtime_ns}")
    except OSError:
        key = f"file:{path}:missing"
    return NodeData(key, lambda schema: load_file(path, schema), run=run, store=store, source=str(path),
                    fingerprint=lambda schema, digest: file_fingerprint(path, digest))


def _failing(message: str) -> NodeData:
    """A source that cannot be read: every request is answered with this message."""

    def load(schema: FeatureSchema) -> LocalTable:
        raise DataError(message)

    return NodeData(f"invalid:{message}", load)


def database_url(node_config: Mapping[str, Any]) -> str:
    """`db-url`, or the environment variable `db-url-env` names."""
    import os

    if node_config.get("db-url-env"):
        name = str(node_config["db-url-env"])
        if node_config.get("db-url"):
            raise DataError("node config: give either db-url or db-url-env, not both")
        if not os.environ.get(name):
            raise DataError(f"node config: db-url-env names {name!r}, but that environment variable is not set")
        return os.environ[name]
    if not node_config.get("db-url"):
        raise DataError("node config: db-table/db-query need db-url (or db-url-env)")
    return str(node_config["db-url"])


def _database(node_config: Mapping[str, Any], run: str = "", store: TableStore | None = None) -> NodeData:
    table = str(node_config.get("db-table") or "") or None
    query = str(node_config.get("db-query") or "") or None
    try:
        url = database_url(node_config)
        if bool(table) == bool(query):
            raise DataError("node config: give exactly one of db-table or db-query with db-url")
    except DataError as exc:
        return _failing(str(exc))
    from fedseg.client.db import db_fingerprint, load_db_table  # SQLAlchemy only for database nodes

    import hashlib

    what = f"table:{table}" if table else f"query:{query}"
    key = "db:" + hashlib.sha256(f"{url}\n{what}".encode()).hexdigest()  # no password in keys
    return NodeData(key, lambda schema: load_db_table(url, schema, table=table, query=query),
                    run=run, store=store, source=describe_source(node_config),
                    fingerprint=lambda schema, _: db_fingerprint(url, schema, table=table, query=query))


def describe_source(node_config: Mapping[str, Any]) -> str:
    """One line naming where this node's table comes from (no password)."""
    if any(node_config.get(k) for k in DB_KEYS):
        from fedseg.client.db import parse_url, shown

        try:
            url = shown(parse_url(database_url(node_config)))
        except DataError as exc:
            return f"database ({exc})"
        what = f"table {node_config['db-table']}" if node_config.get("db-table") else "query"
        return f"{url} {what}"
    if node_config.get("data-path"):
        return str(node_config["data-path"])
    return "built-in synthetic customers"


def write_node_labels(node_config: Mapping[str, Any], id_column: str, ids, labels, names=None,
                      run_id: int | None = None) -> str:
    """Write `<id>,segment[,segment_name]` where the node config says (`labels-path` or
    `labels-table`); returns where it went. `names` (segment id -> name, from the model)
    adds the name beside the number (`fedseg label-node`; in-run labels are written
    before the names exist); `run_id` (in-run labels) goes into the file or table name. The
    labels never leave the node."""
    import numpy as np
    import pandas as pd

    from fedseg.common.artifact import atomic_write_text

    if node_config.get("labels-path") and node_config.get("labels-table"):
        raise DataError("node config: give either labels-path or labels-table, not both")
    if node_config.get("labels-table"):
        from fedseg.client.db import write_labels_table

        table = label_files.table_for_run(str(node_config["labels-table"]), run_id)
        write_labels_table(database_url(node_config), table, id_column, ids, labels, names)
        return f"table {table}"
    if not node_config.get("labels-path"):
        raise DataError("node config: set labels-path (a .csv or .parquet file) or labels-table")
    path = label_files.for_run(Path(str(node_config["labels-path"])).expanduser(), run_id)
    frame = pd.DataFrame({id_column: np.asarray(ids, dtype=str), "segment": np.asarray(labels, dtype=np.int64)})
    if names is not None:
        frame["segment_name"] = [names[int(j)] for j in labels]
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in {".parquet", ".pq"}:
        label_files.write_parquet(frame, path)
    else:
        atomic_write_text(path, frame.to_csv(index=False))
    return str(path)


def simulation_file(data_dir: Path, partition: int) -> Path:
    """`node-<partition>.parquet` if present, else `.csv` (the error names the CSV)."""
    parquet = data_dir / f"node-{partition}.parquet"
    return parquet if parquet.exists() else data_dir / f"node-{partition}.csv"


def _synthetic(partition: int, partitions: int, run_config: Mapping[str, Any]) -> NodeData:
    customers = int(run_config.get("synthetic-customers", 20000))
    seed = int(run_config.get("seed", 42))

    def load(schema: FeatureSchema) -> LocalTable:
        from fedseg.common.synthetic import generate_customers  # built-in demo data only

        frame = generate_customers(customers, partitions, seed)
        departments = sorted(frame["department"].unique())
        if partition >= len(departments):
            raise DataError(f"synthetic data: no department for partition {partition}")
        mine = frame[frame["department"] == departments[partition]]
        source = f"synthetic:{departments[partition]}"
        return validate_frame(mine.drop(columns=["department", "true_segment"]), schema, source)

    return NodeData(f"synthetic:{customers}:{partitions}:{seed}:{partition}", load)


def label_after_profile(node_config: Mapping[str, Any], request: Any, data: NodeData,
                        run_id: int | None = None) -> str | None:
    """In-run label write-back: on the final (profile) request, label this node's customers
    with the final centroids and write them where `labels-path`/`labels-table` say.

    Meant to be called by the ClientApp after answering a `ProfileRequest`; returns where
    the labels went, or None when the node config asks for no labels. The labels never
    leave the node; a failure to write them does not change the reply."""
    if not any(node_config.get(k) for k in LABEL_KEYS):
        return None
    from fedseg.common.kmeans import assign

    table = data.table(request.schema_)
    labels = assign(data.matrix(request.schema_, request.scaler), request.centroids)
    return write_node_labels(node_config, request.schema_.id, table.ids, labels, run_id=run_id)
