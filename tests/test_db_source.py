"""Database node sources (SQLite, PostgreSQL) through the node config, label write-back,
and a clear message for every bad input.

PostgreSQL: `.ci/run` starts a throwaway server on 127.0.0.1 and exports
FEDSEG_TEST_POSTGRES_URL. Without it the tests start their own cluster when the
PostgreSQL server binaries are installed (Debian: `apt-get install postgresql`), and fail
with a message saying so otherwise.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fedseg.client.data import DataError, load_table
from fedseg.client.source import describe_source, node_data, write_node_labels
from fedseg.common.synthetic import generate_customers, synthetic_schema

SCHEMA = synthetic_schema()


@pytest.fixture(scope="module")
def customers() -> pd.DataFrame:
    frame = generate_customers(600, 2, 7)
    return frame.drop(columns=["department", "true_segment"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def reference(customers, tmp_path_factory):
    """The same rows read the way a CSV node reads them."""
    path = tmp_path_factory.mktemp("ref") / "customers.csv"
    customers.to_csv(path, index=False)
    return load_table(path, SCHEMA)


def _same(table, ref) -> None:
    order = np.argsort(table.ids)
    ref_order = np.argsort(ref.ids)
    np.testing.assert_array_equal(table.ids[order], ref.ids[ref_order])
    np.testing.assert_allclose(table.numeric[order], ref.numeric[ref_order])
    np.testing.assert_array_equal(table.codes[order], ref.codes[ref_order])


def _load(config: dict):
    return node_data(config, {}).table(SCHEMA)


def _error(config: dict) -> str:
    with pytest.raises(DataError) as info:
        _load(config)
    return str(info.value)


# ---- SQLite ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sqlite_db(customers, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "crm.db"
    with sqlite3.connect(path) as con:
        extra = customers.assign(email="someone@example.com")  # a column the schema must not touch
        extra.to_sql("customers", con, index=False)
        con.execute("CREATE TABLE empty_customers AS SELECT * FROM customers WHERE 0")
    return path


def test_sqlite_table_reads_only_schema_columns(sqlite_db, reference):
    _same(_load({"db-url": f"sqlite:///{sqlite_db}", "db-table": "customers"}), reference)


def test_sqlite_bare_path_and_query(sqlite_db, reference):
    cols = ", ".join(SCHEMA.columns)
    table = _load({"db-url": str(sqlite_db), "db-query": f"SELECT {cols} FROM customers"})
    _same(table, reference)
    north = _load({"db-url": str(sqlite_db), "db-query": f"SELECT {cols} FROM customers WHERE region = 'north'"})
    assert 0 < north.n_rows < reference.n_rows


def test_db_url_from_environment(sqlite_db, reference, monkeypatch):
    monkeypatch.setenv("FEDSEG_TEST_CRM_URL", f"sqlite:///{sqlite_db}")
    config = {"db-url-env": "FEDSEG_TEST_CRM_URL", "db-table": "customers"}
    _same(_load(config), reference)
    assert "crm.db table customers" in describe_source(config)


@pytest.mark.parametrize(
    "config, expected",
    [
        ({"db-table": "nope"}, "no such table (tables there: ['customers', 'empty_customers'])"),
        ({"db-table": "empty_customers"}, "the table has no rows"),
        ({"db-query": "SELECT * FROM customers WHERE 1 = 0"}, "the query returned no rows"),
        ({"db-query": "   "}, "db-query is empty"),
        ({"db-query": "SELEC customer_id FROM customers"}, 'the query failed: near "SELEC": syntax error'),
        ({"db-query": "SELECT * FROM missing"}, "the query failed: no such table: missing"),
        ({"db-query": "SELECT * FROM customers"}, "unexpected column(s) ['email']"),
        ({"db-query": "SELECT customer_id, age FROM customers"}, "missing column(s)"),
        ({}, "give exactly one of db-table or db-query"),
        ({"db-table": "customers", "db-query": "SELECT 1"}, "give exactly one of db-table or db-query"),
        ({"db-table": "customers", "data-path": "/x.csv"}, "either data-path or db-url"),
    ],
)
def test_sqlite_bad_input_is_a_clear_message(sqlite_db, config, expected):
    assert expected in _error({"db-url": str(sqlite_db), **config})


@pytest.mark.parametrize(
    "url, expected",
    [
        ("sqlite:////nonexistent/dir/crm.db", "SQLite database file /nonexistent/dir/crm.db does not exist"),
        ("mysql+nodriver://u:pw@127.0.0.1/db", "no database driver for 'mysql+nodriver'"),
        ("postgresql://bob:hunter2@127.0.0.1:1/crm", "cannot connect to the database"),
        ("", "give exactly one of db-table or db-query"),
    ],
)
def test_bad_url_is_a_clear_message_without_password(url, expected):
    config = {"db-url": url, "db-table": "customers"} if url else {"db-table": "customers"}
    message = _error(config)
    assert expected in message or ("db-table/db-query need db-url" in message and not url)
    assert "hunter2" not in message and "pw@" not in message


def test_db_url_env_unset_is_a_clear_message(monkeypatch):
    monkeypatch.delenv("FEDSEG_TEST_UNSET", raising=False)
    assert "FEDSEG_TEST_UNSET" in _error({"db-url-env": "FEDSEG_TEST_UNSET", "db-table": "t"})


def test_query_cannot_change_the_database(sqlite_db):
    assert "db-query must be a SELECT" in _error({"db-url": str(sqlite_db), "db-query": "DELETE FROM customers"})
    with sqlite3.connect(sqlite_db) as con:
        assert con.execute("SELECT COUNT(*) FROM customers").fetchone()[0] == 600


def test_labels_written_to_file_and_table(sqlite_db, tmp_path):
    ids, labels = np.array(["a", "b", "c"]), np.array([2, 0, 1])
    for name in ("labels.csv", "labels.parquet"):
        where = write_node_labels({"labels-path": str(tmp_path / name)}, "customer_id", ids, labels)
        back = pd.read_csv(where, dtype={"customer_id": str}) if name.endswith("csv") else pd.read_parquet(where)
        assert back["customer_id"].tolist() == ["a", "b", "c"] and back["segment"].tolist() == [2, 0, 1]
    config = {"db-url": str(sqlite_db), "labels-table": "segments"}
    assert write_node_labels(config, "customer_id", ids, labels) == "table segments"
    with sqlite3.connect(sqlite_db) as con:
        assert con.execute("SELECT customer_id, segment FROM segments ORDER BY customer_id").fetchall() == [
            ("a", 2), ("b", 0), ("c", 1)
        ]
    with pytest.raises(DataError, match="labels-path"):
        write_node_labels({}, "customer_id", ids, labels)


# ---- PostgreSQL -----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin() -> Path | None:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
    if candidates:
        return candidates[-1].parent
    found = shutil.which("pg_ctl")
    return Path(found).parent if found else None


@pytest.fixture(scope="module")
def postgres_url():
    """FEDSEG_TEST_POSTGRES_URL, or a throwaway cluster on 127.0.0.1 stopped at the end."""
    if os.environ.get("FEDSEG_TEST_POSTGRES_URL"):
        yield os.environ["FEDSEG_TEST_POSTGRES_URL"]
        return
    bindir = _pg_bin()
    if bindir is None or not (bindir / "initdb").exists():
        pytest.fail("PostgreSQL is required: install the server (`apt-get install postgresql`) "
                    "or set FEDSEG_TEST_POSTGRES_URL")
    as_user: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        if shutil.which("runuser") is None:
            pytest.fail("running as root without runuser: cannot start PostgreSQL; set FEDSEG_TEST_POSTGRES_URL")
        as_user = ["runuser", "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="fedseg-pg-"))
    password = secrets.token_hex(12)
    (root / "pw").write_text(password)
    if as_user:
        shutil.chown(root, "postgres")
        shutil.chown(root / "pw", "postgres")
    port = _free_port()
    data = root / "data"
    run = dict(check=True, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, cwd=root)
    started = False
    try:
        subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "fedseg",
                        "--auth=scram-sha-256", f"--pwfile={root / 'pw'}"], **run)
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w",
                        "-o", f"-c listen_addresses=127.0.0.1 -p {port} -k {root}", "start"], **run)
        started = True
        yield f"postgresql://fedseg:{password}@127.0.0.1:{port}/postgres"
    finally:
        if started:
            subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                           capture_output=True, timeout=60, stdin=subprocess.DEVNULL, cwd=root)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def pg_table(postgres_url, customers):
    """The customers in a fresh PostgreSQL schema (typed columns), dropped at the end."""
    import sqlalchemy as sa

    from fedseg.client.db import parse_url

    engine = sa.create_engine(parse_url(postgres_url))
    schema = f"fedseg_test_{uuid.uuid4().hex[:8]}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with engine.begin() as conn:
                conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
            break
        except sa.exc.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    try:
        with engine.begin() as conn:
            typed = customers.assign(city_tier=customers["city_tier"].astype(int))
            typed.to_sql("customers", conn, schema=schema, index=False)
        yield schema
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


@pytest.mark.integration
def test_postgres_table_and_query(postgres_url, pg_table, reference):
    _same(_load({"db-url": postgres_url, "db-table": f"{pg_table}.customers"}), reference)
    cols = ", ".join(f'"{c}"' for c in SCHEMA.columns)
    query = f"SELECT {cols} FROM {pg_table}.customers"
    _same(_load({"db-url": postgres_url, "db-query": query}), reference)


@pytest.mark.integration
def test_postgres_bad_input_is_a_clear_message(postgres_url, pg_table):
    missing = _error({"db-url": postgres_url, "db-table": f"{pg_table}.nope"})
    assert "no such table (tables there: ['customers'])" in missing
    empty = _error({"db-url": postgres_url, "db-query": f"SELECT * FROM {pg_table}.customers WHERE false"})
    assert "the query returned no rows" in empty
    failed = _error({"db-url": postgres_url, "db-query": "SELECT * FROM no_such_relation"})
    assert "the query failed" in failed and "no_such_relation" in failed
    from fedseg.client.db import parse_url

    url = parse_url(postgres_url)
    wrong = url.set(password="wrong-password").render_as_string(hide_password=False)
    refused = _error({"db-url": wrong, "db-table": f"{pg_table}.customers"})
    assert "cannot connect to the database" in refused and "wrong-password" not in refused
    if url.password:
        assert url.password not in missing + empty + failed + refused


@pytest.mark.integration
def test_postgres_labels_written_back(postgres_url, pg_table):
    import sqlalchemy as sa

    from fedseg.client.db import parse_url

    config = {"db-url": postgres_url, "labels-table": f"{pg_table}.segments"}
    write_node_labels(config, "customer_id", np.array(["x", "y"]), np.array([1, 0]))
    engine = sa.create_engine(parse_url(postgres_url))
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(f"SELECT customer_id, segment FROM {pg_table}.segments ORDER BY 1")).all()
    finally:
        engine.dispose()
    assert [tuple(r) for r in rows] == [("x", 1), ("y", 0)]


def test_in_run_label_write_back_matches_the_model(sqlite_db, tmp_path):
    """`label_after_profile` on the final request writes the nearest-centroid labels."""
    from fedseg.client.source import label_after_profile
    from fedseg.common.kmeans import assign
    from fedseg.common.preprocessing import encode_table, local_prepare_stats, scaler_from_stats
    from fedseg.common.messages import Scaler
    from fedseg.common.phases.profile import ProfileRequest

    config = {"db-url": str(sqlite_db), "db-table": "customers", "labels-path": str(tmp_path / "labels.csv")}
    data = node_data(config, {})
    table = data.table(SCHEMA)
    mean, scale = scaler_from_stats(local_prepare_stats(table, SCHEMA))
    centroids = encode_table(table, SCHEMA, mean, scale)[:3].copy()
    request = ProfileRequest(schema=SCHEMA, scaler=Scaler(mean=mean, scale=scale), centroids=centroids)
    assert label_after_profile({"db-url": str(sqlite_db), "db-table": "customers"}, request, data) is None
    assert label_after_profile(config, request, data) == str(tmp_path / "labels.csv")
    back = pd.read_csv(tmp_path / "labels.csv", dtype={"customer_id": str})
    expected = assign(encode_table(table, SCHEMA, mean, scale), centroids)
    assert back["customer_id"].tolist() == table.ids.tolist()
    assert back["segment"].tolist() == expected.tolist()
