"""Test helpers: build in-process nodes from arrays or frames."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
from scipy.stats import norm

from fedseg.client.data import validate_frame
from fedseg.client.handlers import NodeData
from fedseg.common.preprocessing import LocalTable
from fedseg.common.schema import FeatureSchema
from fedseg.simulations.local_transport import LocalTransport


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


NORMAL_IQR = 2 * float(norm.ppf(0.75))  # Q3 - Q1 of a standard normal


def pooled_scaler_reference(raw: np.ndarray, schema: FeatureSchema) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the federated scaler should be, from the pooled transformed data `raw`
    (encoded with mean 0, scale 1): mean/std per column, except robust numeric features:
    inverted-CDF median and IQR / 1.349. Also the tolerance per column: 1e-9 for exact
    sums, one public bin width (two for the IQR) where quantiles come from histograms."""
    std = raw.std(axis=0)
    mean, scale = raw.mean(axis=0), np.where(std > 1e-12, std, 1.0)
    tol = np.full(raw.shape[1], 1e-9)
    for i, f in enumerate(schema.numeric):  # features, not records
        if not f.robust:
            continue
        bounds = np.log1p([f.lower, f.upper]) if f.transform == "log1p" else np.array([f.lower, f.upper])
        width = (bounds[1] - bounds[0]) / f.n_bins
        q1, med, q3 = np.quantile(raw[:, i], [0.25, 0.5, 0.75], method="inverted_cdf")
        mean[i], scale[i], tol[i] = med, (q3 - q1) / NORMAL_IQR, 2 * width
    return mean, scale, tol



def run_as_newcomer(script: str | list[str], cwd, timeout: float = 600, **env_extra: str):
    """A README command as a newcomer runs it (a bash block under `-euo pipefail`, or an
    argv), with this venv's tools first on PATH; the test fails with its output unless it
    exits 0. Returns the finished process."""
    import os
    import subprocess

    from fedseg.simulations.local_deployment import BIN

    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1", **env_extra}
    argv = ["bash", "-euo", "pipefail", "-c", script] if isinstance(script, str) else script
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done
