"""Test helpers: build in-process nodes from arrays or frames."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd

from client.data import validate_frame
from client.handlers import NodeData
from common.preprocessing import LocalTable
from common.schema import FeatureSchema
from simulations.local_transport import LocalTransport


def numeric_nodes(X: np.ndarray, parts: list[np.ndarray], prefix: str = "t") -> dict[int, NodeData]:
    """One in-process node per index array, holding those rows of X as numeric features."""
    nodes = {}
    for i, idx in enumerate(parts):
        table = LocalTable(ids=idx.astype(str), numeric=X[idx], codes=np.zeros((len(idx), 0), np.int64))
        nodes[i + 1] = NodeData(f"{prefix}-{i}-{uuid.uuid4()}", lambda schema, t=table: t)
    return nodes


def frame_nodes(frames: list[pd.DataFrame], prefix: str = "f") -> dict[int, NodeData]:
    """One in-process node per frame, validated against the schema of each request."""
    return {
        i + 1: NodeData(f"{prefix}-{i}-{uuid.uuid4()}", lambda schema, f=f, i=i: validate_frame(f, schema, f"node-{i}"))
        for i, f in enumerate(frames)
    }


def numeric_schema(d: int) -> FeatureSchema:
    return FeatureSchema.numeric_only("id", [f"x{j}" for j in range(d)])


def transport(nodes: dict[int, NodeData]) -> LocalTransport:
    return LocalTransport(nodes)
