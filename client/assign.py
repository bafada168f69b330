"""Label a node's own customers with a finished model; the labels stay on the node."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fedseg.client.data import load_table
from fedseg.common.artifact import ModelArtifact, atomic_write_text
from fedseg.common.kmeans import assign
from fedseg.common.preprocessing import LocalTable, encode_table


def segment_labels(model: ModelArtifact, table: LocalTable) -> np.ndarray:
    """Nearest-centroid segment of every row, in the model's scaled space."""
    mean, scale = model.scaler_arrays()
    X = encode_table(table, model.run.feature_schema, mean, scale)
    return assign(X, model.centroid_array())


def assign_file(model: ModelArtifact, data: Path, out: Path) -> int:
    """Write `id,segment,segment_name` for every row of `data` to `out` atomically;
    returns the row count."""
    schema = model.run.feature_schema
    table = load_table(data, schema)
    labels = segment_labels(model, table)
    names = [s.name for s in model.segments]
    frame = pd.DataFrame({schema.id: table.ids, "segment": labels, "segment_name": [names[j] for j in labels]})
    atomic_write_text(out, frame.to_csv(index=False))
    return len(frame)
