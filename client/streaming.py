"""Big tables read in batches: CSV and Parquet through Arrow, SQL through `client/db.py`.

Why: a node with millions of customers must not hold its whole table as Python strings
(27 text cells per row are ~1.3 GiB at 1M rows). Each batch is validated by
`client/data.validate_frame` as it arrives and kept only as typed arrays, so the node's
peak memory is the validated table (8 bytes per numeric and categorical cell, plus the
ids) and one batch of text (`BATCH_ROWS` rows, or 4 MiB of CSV), whatever the file size. Only a
transactions table, which needs every purchase of a customer together, is read whole.

Validation is not repeated here: a batch error keeps `validate_frame`'s own message, with
the batch's first table row in the source label so the row numbers can be found.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from fedseg.client.data import DataError, load_table, validate_frame
from fedseg.client.reading import SNIFF_BYTES, guess_encoding, sniff_delimiter
from fedseg.common.preprocessing import LocalTable
from fedseg.common.schema import FeatureSchema
from fedseg.common.table_policy import RowDefects

BATCH_ROWS = 65_536  # Parquet and SQL batches
CSV_BLOCK_BYTES = 1 << 22  # CSV text parsed at a time
CSV_STREAM_FROM_BYTES = 1 << 26  # smaller CSVs are read whole (`client/reading`: sniffing, encoding notes)


def load_file(path: str | Path, schema: FeatureSchema, batch_rows: int = BATCH_ROWS) -> LocalTable:
    """A CSV or Parquet file read and validated in batches (a transactions file whole)."""
    path = Path(path)
    if schema.transactions is not None or not path.is_file() or path.stat().st_size == 0:
        return load_table(path, schema)  # data.py's own messages for these cases
    parquet = path.suffix.lower() in {".parquet", ".pq"}
    if not parquet and path.stat().st_size < CSV_STREAM_FROM_BYTES:
        return load_table(path, schema)
    batches = _parquet_batches(path, schema, batch_rows) if parquet else _csv_batches(path, CSV_BLOCK_BYTES)
    return validate_batches(batches, schema, str(path))


def validate_batches(frames: Iterator[pd.DataFrame], schema: FeatureSchema, source: str) -> LocalTable:
    """Validate each batch as it comes; join their arrays; ids unique over the whole table."""
    parts: list[LocalTable] = []
    start = 0
    for frame in frames:
        if len(frame) == 0 and parts:
            continue
        label = source if start == 0 else f"{source} (batch from table row {start + 1})"
        parts.append(validate_frame(frame.reset_index(drop=True), schema, label))
        start += len(frame)
    if not parts:
        raise DataError(f"{source}: table has a header but no rows")
    coverages = [p.coverage for p in parts if p.coverage is not None]
    table = parts[0] if len(parts) == 1 else LocalTable(
        ids=np.concatenate([p.ids for p in parts]), numeric=np.vstack([p.numeric for p in parts]),
        codes=np.vstack([p.codes for p in parts]),
        coverage=sum(coverages[1:], coverages[0]) if len(coverages) == len(parts) else None,
        defects=_joined_defects(parts))
    _check_unique_ids(table.ids, schema.id, source)
    return table


def _joined_defects(parts: list[LocalTable]) -> RowDefects | None:
    if any(p.defects is None for p in parts):
        return None
    return RowDefects(np.vstack([p.defects.gaps for p in parts]), np.vstack([p.defects.clipped for p in parts]))


def _check_unique_ids(ids: np.ndarray, name: str, source: str) -> None:
    """Duplicates across batches (within a batch validate_frame has found them)."""
    uniq, first, counts = np.unique(ids, return_index=True, return_counts=True)
    if len(uniq) == len(ids):
        return
    dup = np.ones(len(ids), dtype=bool)
    dup[first] = False
    rows = np.flatnonzero(dup)[:5] + 1
    raise DataError(f"{source}: column {name!r}: duplicate id(s) at rows {', '.join(map(str, rows))}"
                    + (f" (+{int(dup.sum()) - len(rows)} more)" if dup.sum() > len(rows) else ""))


def _csv_head(path: Path) -> tuple[str, str]:
    """(delimiter, encoding) of a big CSV from its first bytes, as `client/reading` does
    for a whole file: sniffed separator; UTF-8, else Windows-1252."""
    with open(path, "rb") as handle:
        head = handle.read(SNIFF_BYTES)
    text, encoding, _ = guess_encoding(head, sample=True)
    return sniff_delimiter(text), encoding


def _csv_batches(path: Path, block_bytes: int) -> Iterator[pd.DataFrame]:
    """Every cell as text (as `data.read_frame`: nothing coerced, empty cells stay "");
    Arrow parses `block_bytes` of the file at a time."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    delimiter, encoding = _csv_head(path)
    try:
        columns = list(pd.read_csv(path, dtype=str, nrows=0, sep=delimiter, encoding=encoding).columns)
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=block_bytes, encoding=encoding),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in columns},
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
        for batch in reader:
            yield batch.to_pandas()
    except (pa.ArrowInvalid, UnicodeDecodeError, pd.errors.ParserError, OSError) as exc:
        raise DataError(f"{path}: cannot parse table (read as {encoding}, separator {delimiter!r}; "
                        f"a file this large is read in blocks): {exc}") from exc


def _parquet_batches(path: Path, schema: FeatureSchema, batch_rows: int) -> Iterator[pd.DataFrame]:
    """Record batches; only the schema's columns when extra columns are allowed (then
    validation would ignore the others anyway)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        handle = pq.ParquetFile(path)
        names = handle.schema_arrow.names
        columns = [c for c in names if c in schema.columns] if schema.allow_extra_columns else None
        empty = True
        for batch in handle.iter_batches(batch_size=batch_rows, columns=columns):
            empty = False
            yield batch.to_pandas()
        if empty:
            yield pd.DataFrame(columns=columns or names)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{path}: cannot parse table: {exc}") from exc
