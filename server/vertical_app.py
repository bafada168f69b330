"""The ServerApp of a vertical run: wait for every party, run `VerticalRun` over the
grid, write model.json and report.md together (nothing when the run stops)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from pathlib import Path

from flwr.serverapp import Grid, ServerApp

import fedseg
from fedseg.common.config import RunConfig
from fedseg.common.schema import FeatureSchema
from fedseg.common.vertical.model import VerticalModel
from fedseg.server.app import bound_server_app, end_run, log_event
from fedseg.server.flower_transport import GridTransport, wait_for_nodes
from fedseg.server.orchestrator import Event
from fedseg.server.vertical_run import VerticalRun, run_and_save


def run_vertical(grid: Grid, config: RunConfig, blocks: Mapping[str, FeatureSchema], out_dir: Path,
                 on_event: Callable[[Event], None] = log_event, node_timeout: float = 120.0) -> VerticalModel:
    """As the horizontal ServerApp: every exchange bounded by `exchange-timeout`, one
    `failed` line on any failure, and the parties told the run ended (their caches go)."""
    nodes: list[int] = []
    try:
        nodes = wait_for_nodes(grid, len(blocks), timeout=node_timeout)
        on_event(Event("connect", f"{len(nodes)} nodes connected; each exchange waits at most "
                                  f"{config.exchange_timeout:g} s (exchange-timeout)"))
        run = VerticalRun(config, blocks, GridTransport(grid, timeout=config.exchange_timeout), nodes, on_event)
        model = run_and_save(run, out_dir, fedseg.__version__)
    except BaseException as exc:
        on_event(Event("failed", f"run failed, no model written: {exc}"))
        raise
    finally:
        if nodes:
            end_run(grid, nodes)
    on_event(Event("done", f"model written to {out_dir / 'model.json'}", run.exchanges))
    return model


def make_vertical_server_app(config: RunConfig, blocks: Mapping[str, FeatureSchema], out_dir: Path,
                             on_event: Callable[[Event], None] = log_event, sink: list | None = None) -> ServerApp:
    """A ServerApp bound to a config built in Python (`fedseg simulate --vertical`)."""
    return bound_server_app(lambda grid: run_vertical(grid, config, blocks, out_dir, on_event), sink)


def run_vertical_from_config(grid: Grid, config: RunConfig, run_config: Mapping[str, Any], schema: FeatureSchema,
                             out_dir: Path) -> VerticalModel:
    """`flwr run` with run config `mode = "vertical"` and `vertical = "crm=a,b;shop=c"`:
    the schema names every party's features; each SuperNode's roster identity is its
    party and its own node config points to its table of the id and its columns."""
    from fedseg.common.vertical.spec import block_schemas, held_only, parse_split

    parties = parse_split(str(run_config.get("vertical") or ""))
    return run_vertical(grid, config, block_schemas(held_only(schema, parties), parties), out_dir)
