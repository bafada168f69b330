"""What `fedseg simulate` runs on: built-in synthetic departments or a user's CSV split
into nodes by a partitioner."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fedseg.client.data import DataError, read_frame, validate_frame
from fedseg.client.reading import ReadOptions
from fedseg.common.schema import FeatureSchema, load_schema


def simulation_inputs(
    data: Path | None,
    schema_path: Path | None,
    features: str | None,
    id_column: str,
    partition: str | None,
    clients: int,
    customers: int,
    seed: int,
    options: ReadOptions | None = None,
) -> tuple[list[pd.DataFrame], FeatureSchema, str]:
    """Node frames, their schema and a one-line description of the data. A user's file
    is validated whole first, so every problem names its file, column and rows (not a
    node's temporary file) before any engine starts."""
    from fedseg.simulations.partition import partition as split

    if data is None:
        from fedseg.common.synthetic import generate_customers, synthetic_schema

        frame = generate_customers(customers, clients, seed)  # one department per node by default
        schema = _schema(schema_path, features, id_column) if (schema_path or features) else synthetic_schema()
        spec = partition or "column:department"
        label = f"synthetic data, {len(frame)} customers, partition {spec}"
    else:
        frame = read_frame(data, options)
        schema = _schema(schema_path, features, id_column)
        # columns outside the schema (a --partition column) never reach the nodes
        validate_frame(frame, schema.model_copy(update={"allow_extra_columns": True}), str(data))
        spec = partition or "iid"
        label = f"{data}, {len(frame)} rows, partition {spec}"
    frames = split(frame, spec, clients, seed)
    if any(len(f) == 0 for f in frames):
        raise DataError(f"partition {spec} left a node without rows; use fewer --clients")
    return frames, schema, label


def _schema(schema_path: Path | None, features: str | None, id_column: str) -> FeatureSchema:
    if schema_path and features:
        raise ValueError("give either --schema or --features, not both")
    if schema_path:
        return load_schema(schema_path)
    if features:
        names = [n.strip() for n in features.split(",") if n.strip()]
        return FeatureSchema.numeric_only(id_column, names)
    raise ValueError("with --data, give --schema TOML or --features a,b,c")


def cdnow_inputs(stores: int) -> tuple[list[pd.DataFrame], FeatureSchema, str]:
    """CDNOW purchases, one store per node; the nodes derive RFM (schema
    `cdnow_transactions_schema`: R/F/M quintile scores, monetary winsorized)."""
    from fedseg.simulations.cdnow import cdnow_store_transactions, cdnow_transactions_schema

    frames = cdnow_store_transactions(stores)
    rows = sum(len(f) for f in frames)
    return frames, cdnow_transactions_schema(), f"CDNOW, {rows} purchases in {stores} stores (RFM on the nodes)"
