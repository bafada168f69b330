"""`fedseg simulate --vertical`: one node per party on Flower's Simulation Engine, each
reading only its own columns, named by its roster identity (the party)."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from fedseg.common.config import RunConfig
from fedseg.common.schema import FeatureSchema
from fedseg.common.vertical.model import VerticalModel
from fedseg.common.vertical.spec import block_schemas
from fedseg.server.app import log_event
from fedseg.server.orchestrator import Event, RunError
from fedseg.server.vertical_app import make_vertical_server_app
from fedseg.simulations.driver import run_engine, write_node_identities, write_partitions


def simulate_vertical(frames: dict[str, pd.DataFrame], schema: FeatureSchema, parties: dict[str, list[str]],
                      config: RunConfig, out_dir: Path, on_event: Callable[[Event], None] = log_event,
                      num_cpus: int | None = None) -> tuple[VerticalModel, float]:
    """Run the parties in simulation; the model and the wall time."""
    blocks = block_schemas(schema, parties)
    names = list(frames)
    sink: list[VerticalModel] = []
    with tempfile.TemporaryDirectory(prefix="fedseg-vsim-") as tmp:
        write_partitions([frames[n] for n in names], schema, Path(tmp))
        write_node_identities(Path(tmp), len(names), names)
        start = time.perf_counter()
        run_engine(make_vertical_server_app(config, blocks, out_dir, on_event, sink), tmp, len(names), num_cpus)
        wall = time.perf_counter() - start
    if not sink:
        raise RunError("the vertical simulation ended without a model; see the log above for the cause")
    return sink[0], wall
