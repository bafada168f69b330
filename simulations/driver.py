"""Run a federated segmentation on Flower's Simulation Engine (Ray).

Each partition is written to its own file in a private temporary folder, one per
virtual SuperNode; the ClientApp of node `i` reads only `node-i.parquet`. The ServerApp
runs in this process, so progress events reach the caller directly.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from pyarrow import ArrowException

from fedseg.client.app import make_client_app
from fedseg.common.artifact import ModelArtifact
from fedseg.common.config import RunConfig
from fedseg.common.schema import FeatureSchema
from fedseg.simulations.ray_backend import backend_config, ray_address as ray_address_of
from fedseg.server.app import log_event, make_server_app
from fedseg.server.identities import make_federation
from fedseg.server.orchestrator import Event, RunError
from fedseg.server.quantile_phase import with_as_of
from fedseg.simulations.data_check import check_partitions

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("FLWR_DISABLE_UPDATE_CHECK", "1")
os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")


def write_partitions(frames: list[pd.DataFrame], schema: FeatureSchema, folder: Path) -> None:
    """One Parquet file per node. Columns outside the schema (the simulation's own
    partition and ground-truth columns) are dropped; a missing one stays missing, so the
    node reports it as it would in deployment."""
    for i, frame in enumerate(frames):
        table = frame[[c for c in frame.columns if c in schema.columns]].copy()
        if schema.id in table:
            table[schema.id] = table[schema.id].astype(str)
        try:
            table.to_parquet(folder / f"node-{i}.parquet", index=False)
        except (ArrowException, TypeError):  # mixed-type column: keep the text as CSV
            (folder / f"node-{i}.parquet").unlink(missing_ok=True)
            table.to_csv(folder / f"node-{i}.csv", index=False)


def write_node_identities(folder: Path, n_nodes: int, names: list[str] | None = None) -> None:
    """Give every simulated node its secure-aggregation identity: `node-<i>.policy.toml`
    (read by `client.policy.node_policy`) with its identity key and the pinned roster.
    `names` are the identities (a vertical run's parties), `node-<i>` by default."""
    names = names or [f"node-{i}" for i in range(n_nodes)]
    made = make_federation(folder / "identities", names)
    for i in range(n_nodes):
        lines = [f"{key} = {json.dumps(value)}\n" for key, value in made[names[i]].items()]
        (folder / f"node-{i}.policy.toml").write_text("".join(lines))


def run_engine(server_app, data_dir: str, n_nodes: int, num_cpus: int | None = None,
               ray_address: str | None = None) -> None:
    """Flower's Simulation Engine: `server_app` and one ClientApp per node reading `data_dir`,
    on a local Ray or the cluster at `ray_address` / `RAY_ADDRESS`."""
    from flwr.simulation import run_simulation

    run_simulation(
        server_app=server_app,
        client_app=make_client_app({"data-dir": data_dir}),
        num_supernodes=n_nodes,
        backend_config=backend_config(num_cpus, ray_address_of(ray_address)),
    )


def simulate(
    frames: list[pd.DataFrame],
    schema: FeatureSchema,
    config: RunConfig,
    out_dir: Path,
    on_event: Callable[[Event], None] = log_event,
    num_cpus: int | None = None,
    ray_address: str | None = None,
) -> tuple[ModelArtifact, dict[str, float]]:
    """Run the whole federation in simulation; returns the artifact and wall times.
    `ray_address` (or `RAY_ADDRESS`) joins an existing Ray cluster (`simulations/ray_backend.py`)."""
    sink: list[ModelArtifact] = []
    marks: dict[str, float] = {}

    def timed(event: Event) -> None:
        if event.round >= 1:  # the first exchange's replies are in (histograms or prepare)
            marks.setdefault("first_reply", time.perf_counter())
        on_event(event)

    with tempfile.TemporaryDirectory(prefix="fedseg-sim-") as tmp:
        write_partitions(frames, schema, Path(tmp))
        for i, problem in check_partitions(Path(tmp), with_as_of(schema, config.as_of), len(frames)).items():
            on_event(Event("data-check", f"partition {i} will leave the run (bad-table): {problem}"))
        write_node_identities(Path(tmp), len(frames))
        start = time.perf_counter()
        run_engine(make_server_app(config, schema, out_dir, timed, sink), tmp, len(frames), num_cpus, ray_address)
        end = time.perf_counter()
    if not sink:
        raise RunError("the simulation ended without a model; see the log above for the cause")
    first = marks.get("first_reply", end)
    timings = {"total": end - start, "startup_and_first_exchange": first - start, "after_first": end - first}
    return sink[0], timings
