"""Shared by the vertical tests and benchmark: in-process parties with roster identities
named after them, the joined shared-customer table encoded independently (scikit-learn),
and the cost of a model on it."""

from __future__ import annotations

import tempfile

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.preprocessing import StandardScaler

from fedseg.client.policy import NodePolicy
from fedseg.common.config import RunConfig
from fedseg.common.schema import FeatureSchema
from fedseg.common.vertical.spec import block_schemas
from fedseg.server.identities import make_federation
from fedseg.server.vertical_run import VerticalResult, VerticalRun
from fedseg.simulations.local_transport import LocalTransport
from fedseg.simulations.vertical_split import shared_ids
from tests.helpers import frame_nodes


class CapturingTransport(LocalTransport):
    """LocalTransport that also keeps every request payload each node received."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.requests: list[tuple[int, bytes]] = []

    def send(self, requests):
        from fedseg.common.wire import encode

        self.requests += [(n, encode(r)) for n, r in requests.items() if n not in self.dead]
        return super().send(requests)


def party_transport(frames: dict[str, pd.DataFrame], cls=CapturingTransport) -> tuple[LocalTransport, dict[int, str]]:
    """Node i+1 holds the i-th party's frame and the roster identity of that party."""
    nodes = frame_nodes(list(frames.values()))
    folder = tempfile.mkdtemp(prefix="fedseg-vparties-")
    made = make_federation(folder, list(frames))
    policies = {i + 1: NodePolicy.model_validate(made[name]) for i, name in enumerate(frames)}
    return cls(nodes, policies, identities=False), {i + 1: name for i, name in enumerate(frames)}


def run_vertical(frames: dict[str, pd.DataFrame], schema: FeatureSchema, parties: dict[str, list[str]],
                 **config) -> tuple[VerticalResult, VerticalRun, LocalTransport]:
    tr, _ = party_transport(frames)
    run = VerticalRun(RunConfig(**{"k": 5, "seed": 1, **config}), block_schemas(schema, parties), tr, list(tr.nodes))
    return run.run(), run, tr


def joined_table(pooled: pd.DataFrame, schema: FeatureSchema, parties: dict[str, list[str]],
                 ids: np.ndarray) -> np.ndarray:
    """The shared customers' joined table, party blocks in order, encoded as the issue
    defines it (values clipped to the public bounds, log1p where the schema says, one-hot
    categories) and standardised by scikit-learn."""
    rows = pooled.assign(_id=pooled[schema.id].astype(str)).set_index("_id").loc[ids]
    columns = []
    for cols in parties.values():
        for f in schema.numeric:
            if f.name in cols:
                v = rows[f.name].to_numpy(float)
                v = np.clip(v, -np.inf if f.lower is None else f.lower, np.inf if f.upper is None else f.upper)
                columns.append(np.log1p(v) if f.transform == "log1p" else v)
        for c in schema.categorical:
            if c.name in cols:
                dummies = pd.get_dummies(pd.Categorical(rows[c.name].astype(str), categories=list(c.values)))
                columns += [dummies[v].to_numpy(float) for v in c.values]
    return StandardScaler().fit_transform(np.column_stack(columns))


def cost(X: np.ndarray, centroids: np.ndarray) -> float:
    return float(((X[:, None, :] - centroids[None]) ** 2).sum(axis=2).min(axis=1).sum())


def cost_ratio(result: VerticalResult, pooled: pd.DataFrame, frames, schema, parties, k: int) -> float:
    """The model's cost on the joined table over scikit-learn KMeans(n_init=10)'s."""
    J = joined_table(pooled, schema, parties, shared_ids(frames, schema.id))
    reference = KMeans(k, n_init=10, random_state=0).fit(J).inertia_
    return cost(J, result.centroids) / reference


def in_process_vertical(frames, schema, parties, config, out_dir, on_event=lambda e: None, num_cpus=None):
    """`simulations.vertical_sim.simulate_vertical` without Ray: the same VerticalRun over
    LocalTransport, then model.json and report.md as the vertical ServerApp writes them."""
    from fedseg.server.vertical_run import run_and_save

    tr, _ = party_transport(frames, cls=LocalTransport)
    run = VerticalRun(config, block_schemas(schema, parties), tr, list(tr.nodes), on_event)
    return run_and_save(run, out_dir, "test"), 0.0
