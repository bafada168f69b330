"""`fedseg check` and `fedseg schema`: a table as its owner sees it, before any run.

`check` lists every problem at once (grouped by column and kind, the first 20 rows of
each, then a count) and the coverage of every column: values present, gaps and what the
schema's policy does with them, values clipped to the public bounds, rows left out.
`schema` proposes a schema TOML from a table, its bounds marked for the owner to confirm.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from fedseg.client.reading import ReadOptions
from fedseg.common.schema import FeatureSchema
from fedseg.common.table_policy import Coverage

DelimiterOpt = Annotated[Optional[str], typer.Option(help="CSV column separator [default: sniffed among , ; TAB |]")]
EncodingOpt = Annotated[Optional[str], typer.Option(help="CSV text encoding, e.g. latin-1 [default: UTF-8, "
                                                    "else Windows-1252 with a note]")]


def read_options(delimiter: str | None, encoding: str | None) -> ReadOptions:
    """`--delimiter`/`--encoding` as typed (`\\t` or `tab` for a tab)."""
    if delimiter in ("\\t", "tab", "TAB"):
        delimiter = "\t"
    if delimiter is not None and len(delimiter) != 1:
        raise ValueError(f"--delimiter must be one character, got {delimiter!r}")
    return ReadOptions(delimiter=delimiter, encoding=encoding)


def coverage_lines(coverage: Coverage, schema: FeatureSchema) -> list[str]:
    """One line per column: present values, gaps and their policy, clipped, dropped."""
    lines = [f"coverage: {coverage.rows} rows read, {coverage.kept} take part"]
    features = [*schema.numeric, *schema.categorical]
    for i, f in enumerate(features):  # loop over columns, not records
        present = coverage.rows - int(coverage.missing[i])
        share = 100.0 * present / max(coverage.rows, 1)
        parts = [f"{present} present ({share:.1f} %)"]
        if coverage.missing[i]:
            parts.append(f"{int(coverage.missing[i])} missing (missing = {f.missing!r}: "
                         f"{int(coverage.imputed[i])} imputed)")
        if i < len(schema.numeric) and coverage.clipped[i]:
            parts.append(f"{int(coverage.clipped[i])} clipped to [{f.lower}, {f.upper}]")
        if coverage.dropped[i]:
            parts.append(f"{int(coverage.dropped[i])} rows dropped")
        lines.append(f"  {f.name}: " + "; ".join(parts))
    return lines


def check_table(schema_path: Path, data: Path, options: ReadOptions, say) -> None:
    """Validate `data` against the schema exactly as a node would; `say` prints a line.
    Raises DataError listing every problem (after printing the coverage)."""
    from fedseg.client.data import inspect_frame, read_frame
    from fedseg.common.schema import load_schema
    from fedseg.common.schema_pin import schema_fingerprint
    from fedseg.common.table_problems import raise_if_any

    schema = load_schema(schema_path)
    frame = read_frame(data, options)
    for note in options.notes:
        say(f"note: {note}")
    found = inspect_frame(frame, schema, str(data))
    if found.coverage is not None:
        for line in coverage_lines(found.coverage, schema.customer_view() if schema.transactions else schema):
            say(line)
    raise_if_any(str(data), found.problems)
    say(f"[green]ok[/green]: {data}: {found.table.n_rows} rows match {schema_path}")
    say(f"schema-sha256 = {schema_fingerprint(schema)}")


def draft_file(data: Path, out: Path | None, id_column: str | None, options: ReadOptions) -> str:
    """The proposed schema TOML for `data`, written to `out` when given."""
    from fedseg.client.data import read_frame
    from fedseg.common.artifact import atomic_write_text
    from fedseg.common.schema_draft import draft_schema

    frame = read_frame(data, options)
    if not all(dtype == object or str(dtype).startswith("string") for dtype in frame.dtypes):
        frame = frame.astype(str).replace({"nan": "", "None": "", "<NA>": ""})  # Parquet: native types as text
    text = draft_schema(frame, str(data), id_column)
    if out is not None:
        atomic_write_text(out, text)
    return text


DATA_CODES = ("bad-table",)  # failure codes that mean "this node's data", not the network


def data_failures(failed: dict) -> str:
    """A sentence naming the nodes a run left out because of their data ("" if none):
    `fedseg simulate` then exits non-zero, though a model was written from the rest."""
    nodes = sorted(int(n) for n, code in failed.items() if code in DATA_CODES)
    if not nodes:
        return ""
    return (f"node(s) {nodes} left the run because of their data (bad-table); the model was built without "
            "them (see the data-check lines above)")


def needs_bounds(schema: FeatureSchema, option: str) -> None:
    """Secure aggregation and DP size everything from public bounds: fail before any
    engine starts, with the way to get them."""
    missing = [f.name for f in schema.numeric if f.lower is None or f.upper is None]
    if missing:
        raise ValueError(f"{option} needs public lower and upper bounds for every numeric feature; missing for "
                         f"{missing}. Write a schema with `fedseg schema TABLE --out schema.toml`, confirm the "
                         "proposed bounds as public, and pass --schema schema.toml")
