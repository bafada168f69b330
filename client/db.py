"""A node's customer table from a SQL database (SQLAlchemy), and labels written back.

The node reads the table itself; nothing of it leaves the node. Any database SQLAlchemy
has a driver for works: SQLite out of the box (a plain file path is taken as a SQLite
file), PostgreSQL with `psycopg` installed (`postgresql://user@host:5432/db`).

- `db-table`: only the schema's columns are selected (a shared table may hold columns,
  such as e-mail addresses, that the segmentation must never touch).
- `db-query`: the query's columns are validated exactly like a file's.

Every failure is a `DataError` naming the database (password hidden) and what went
wrong: a URL that is not one, a missing driver, a server that cannot be reached, a
missing table, a failing or empty query.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from fedseg.client.data import DataError, validate_frame
from fedseg.client.fingerprint import Fingerprint
from fedseg.client.streaming import BATCH_ROWS, validate_batches
from fedseg.common.preprocessing import LocalTable
from fedseg.common.schema import FeatureSchema

CONNECT_TIMEOUT_S = 10


def _sa():
    try:
        import sqlalchemy
    except ImportError as exc:  # pragma: no cover - a dependency of fedseg and of flwr
        raise DataError("reading a database needs SQLAlchemy: pip install sqlalchemy") from exc
    return sqlalchemy


def parse_url(url: str):
    """A SQLAlchemy URL; a bare path means a SQLite file. `postgresql://` uses psycopg 3
    when psycopg2 is not installed."""
    sa = _sa()
    text = str(url).strip()
    if not text:
        raise DataError("db-url is empty")
    if "://" not in text:
        text = f"sqlite:///{Path(text).expanduser().resolve()}"
    try:
        parsed = sa.engine.make_url(text)
    except sa.exc.ArgumentError as exc:
        raise DataError(f"db-url {url!r} is not a database URL (e.g. sqlite:////srv/customers.db, "
                        f"postgresql://user@host:5432/db): {exc}") from None
    if parsed.drivername == "postgresql" and importlib.util.find_spec("psycopg2") is None:
        if importlib.util.find_spec("psycopg") is not None:
            parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def shown(url) -> str:
    """The URL as it may appear in a message or log: password hidden."""
    return url.render_as_string(hide_password=True)


def _engine(url):
    sa = _sa()
    backend = url.get_backend_name()
    if backend == "sqlite":
        database = url.database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            pass
        elif not Path(database).is_file():
            # SQLAlchemy would silently create an empty database file here
            raise DataError(f"{shown(url)}: SQLite database file {database} does not exist")
    connect_args = {"connect_timeout": CONNECT_TIMEOUT_S} if backend == "postgresql" else {}
    try:
        return sa.create_engine(url, connect_args=connect_args, poolclass=sa.pool.NullPool)
    except (sa.exc.NoSuchModuleError, ImportError, ModuleNotFoundError) as exc:
        hint = " (pip install 'psycopg[binary]')" if backend == "postgresql" else ""
        raise DataError(f"{shown(url)}: no database driver for {url.drivername!r}{hint}: {exc}") from None
    except sa.exc.ArgumentError as exc:
        raise DataError(f"{shown(url)}: {exc}") from None


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return text[0] if text else type(orig).__name__


def _split_table(name: str) -> tuple[str | None, str]:
    name = name.strip()
    if not name:
        raise DataError("db-table is empty")
    if "." in name:
        schema, _, table = name.rpartition(".")
        return schema, table
    return None, name


def read_sql_frame(url: str, table: str | None = None, query: str | None = None,
                   columns: list[str] | None = None) -> tuple[pd.DataFrame, str]:
    """Read a table (only `columns` of it, when given) or the rows of a query.

    Returns the frame and a source label for messages (`<url> table <name>`)."""
    with sql_batches(url, table=table, query=query, columns=columns) as (batches, source):
        return pd.concat(list(batches), ignore_index=True), source


@contextlib.contextmanager
def sql_batches(url: str, table: str | None = None, query: str | None = None,
                columns: list[str] | None = None, batch_rows: int = BATCH_ROWS):
    """The rows of a table or query as frames of at most `batch_rows` rows (the driver
    streams them: no `fetchall`), and a source label; database errors become DataError,
    also while the batches are being read."""
    sa = _sa()
    if bool(table) == bool(query):
        raise DataError("give exactly one of db-table or db-query with db-url")
    parsed = parse_url(url)
    engine = _engine(parsed)
    try:
        with engine.connect() as conn:
            stmt, source, empty = _statement(sa, conn, parsed, table, query, columns)
            try:
                yield _stream(conn, stmt, source, empty, batch_rows), source
            except sa.exc.DBAPIError as exc:
                if query is None or exc.connection_invalidated:
                    raise
                raise DataError(f"{source}: the query failed: {_first_line(exc)}") from None
    except DataError:
        raise
    except sa.exc.OperationalError as exc:
        raise DataError(f"{shown(parsed)}: cannot connect to the database: {_first_line(exc)}") from None
    except sa.exc.SQLAlchemyError as exc:
        raise DataError(f"{shown(parsed)}: database error: {_first_line(exc)}") from None
    finally:
        engine.dispose()


def _statement(sa, conn, parsed, table: str | None, query: str | None, columns: list[str] | None):
    """The SELECT to run, the source label and the message for an empty result."""
    if table:
        schema_name, table_name = _split_table(str(table))
        source = f"{shown(parsed)} table {table}"
        inspector = sa.inspect(conn)
        if not inspector.has_table(table_name, schema=schema_name):
            names = inspector.get_table_names(schema=schema_name)
            raise DataError(f"{source}: no such table (tables there: {sorted(names)})")
        reflected = sa.Table(table_name, sa.MetaData(), schema=schema_name, autoload_with=conn)
        present = [c for c in (columns or reflected.columns.keys()) if c in reflected.columns]
        if not present:
            raise DataError(f"{source}: none of the columns {columns} are in the table "
                            f"(it has {list(reflected.columns.keys())})")
        return sa.select(*[reflected.columns[c] for c in present]), source, "the table has no rows"
    text = str(query).strip().rstrip(";")
    source = f"{shown(parsed)} query {hashlib.sha256(text.encode()).hexdigest()[:8]}"
    if not text:
        raise DataError(f"{shown(parsed)}: db-query is empty")
    return sa.text(text), source, "the query returned no rows"


def _stream(conn, stmt, source: str, empty: str, batch_rows: int) -> Iterator[pd.DataFrame]:
    """Run a statement with a server-side cursor where the driver has one; frames of its
    rows (types as the driver returns them), one batch at a time."""
    result = conn.execution_options(stream_results=True, yield_per=batch_rows).execute(stmt)
    if not result.returns_rows:
        raise DataError(f"{source}: the statement returns no rows (db-query must be a SELECT)")
    columns = list(result.keys())
    rows = 0
    for part in result.partitions(batch_rows):
        rows += len(part)
        yield pd.DataFrame.from_records(part, columns=columns)
    if rows == 0:
        raise DataError(f"{source}: {empty}")


def db_fingerprint(url: str, schema: FeatureSchema, table: str | None = None,
                   query: str | None = None) -> Fingerprint:
    """Row count and the sum of every numeric schema column, computed by the database
    (see `client/fingerprint.py`): cheap next to reading the rows."""
    sa = _sa()
    parsed = parse_url(url)
    tx = schema.transactions
    numeric = [c for c in schema.columns if c in schema.numeric_names or (tx is not None and c == tx.amount)]
    engine = _engine(parsed)
    try:
        with engine.connect() as conn:
            stmt, source, _ = _statement(sa, conn, parsed, table, query, list(schema.columns) if table else None)
            rows = stmt.subquery("t") if table else stmt.columns(*[sa.column(c) for c in numeric]).subquery("t")
            sums = [sa.func.sum(sa.cast(rows.c[c], sa.Float)) for c in numeric if c in rows.c]
            values = conn.execute(sa.select(sa.func.count(), *sums).select_from(rows)).one()
    except DataError:
        raise
    except sa.exc.SQLAlchemyError as exc:
        raise DataError(f"{shown(parsed)}: cannot fingerprint the table: {_first_line(exc)}") from None
    finally:
        engine.dispose()
    # rounded: a parallel database may add the same floats in another order
    return Fingerprint(quick=":".join(f"{float(v or 0):.12g}" for v in values))


def load_db_table(url: str, schema: FeatureSchema, table: str | None = None,
                  query: str | None = None) -> LocalTable:
    """Read and validate a node's table from a database, batch by batch (a
    transactions table whole: its customers are summed over all their purchases)."""
    columns = list(schema.columns) if table else None
    if schema.transactions is not None:
        frame, source = read_sql_frame(url, table=table, query=query, columns=columns)
        return validate_frame(frame, schema, source)
    with sql_batches(url, table=table, query=query, columns=columns) as (batches, source):
        return validate_batches(batches, schema, source)


def write_labels_table(url: str, table: str, id_column: str, ids: np.ndarray, labels: np.ndarray,
                       names: list[str] | None = None) -> int:
    """Replace `table` in the database with columns `<id>, segment[, segment_name]`;
    returns the row count."""
    sa = _sa()
    parsed = parse_url(url)
    schema_name, table_name = _split_table(table)
    frame = pd.DataFrame({id_column: np.asarray(ids, dtype=str), "segment": np.asarray(labels, dtype=np.int64)})
    if names is not None:
        frame["segment_name"] = [names[int(j)] for j in labels]
    engine = _engine(parsed)
    try:
        with engine.begin() as conn:
            frame.to_sql(table_name, conn, schema=schema_name, if_exists="replace", index=False)
    except sa.exc.SQLAlchemyError as exc:
        raise DataError(f"{shown(parsed)} table {table}: cannot write labels: {_first_line(exc)}") from None
    finally:
        engine.dispose()
    return len(frame)
