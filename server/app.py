"""The fedseg ServerApp: read the run config, drive the orchestrator over the grid,
write the model artifact and the report."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from fedseg.common.artifact import ModelArtifact, load_artifact, save_artifact
from fedseg.common.config import RunConfig
from fedseg.common.schema import FeatureSchema, load_schema
from fedseg.server.flower_transport import GridTransport, wait_for_nodes
from fedseg.server.model import build_artifact
from fedseg.server.orchestrator import Event, Orchestrator
from fedseg.common.playbook import load_playbook
from fedseg.server.report.page import write_html_report
from fedseg.server.report.markdown import write_report

log = logging.getLogger("fedseg")


def log_event(event: Event) -> None:
    log.warning("[fedseg] %s: %s", event.phase, event.message)


def schema_from_run_config(run_config: Mapping[str, Any]) -> FeatureSchema:
    """The schema file the run config names, or the built-in synthetic schema."""
    if run_config.get("schema"):
        return load_schema(str(run_config["schema"]))
    from fedseg.common.synthetic import synthetic_schema

    return synthetic_schema()


def run_segmentation(
    grid: Grid,
    config: RunConfig,
    schema: FeatureSchema,
    out_dir: Path,
    on_event: Callable[[Event], None] = log_event,
    node_timeout: float = 120.0,
) -> ModelArtifact:
    """One whole run over the grid; the artifact is written atomically to out_dir."""
    nodes = wait_for_nodes(grid, config.min_nodes, timeout=node_timeout)
    on_event(Event("connect", f"{len(nodes)} nodes connected"))
    transport = GridTransport(grid)
    warm = load_artifact(config.warm_start) if config.warm_start else None
    result = Orchestrator(config, schema, transport, nodes, on_event, warm=warm).run()
    artifact = build_artifact(result, config, schema)
    save_artifact(artifact, out_dir / "model.json")
    write_report(artifact, out_dir)
    write_html_report(artifact, out_dir, load_playbook())
    on_event(Event("done", f"model written to {out_dir / 'model.json'}", result.rounds))
    return artifact


def make_server_app(
    config: RunConfig,
    schema: FeatureSchema,
    out_dir: Path,
    on_event: Callable[[Event], None] = log_event,
    sink: list | None = None,
) -> ServerApp:
    """A ServerApp bound to a config built in Python (the `fedseg simulate` driver)."""
    server_app = ServerApp()

    @server_app.main()
    def _main(grid: Grid, context: Context) -> None:
        artifact = run_segmentation(grid, config, schema, out_dir, on_event)
        if sink is not None:
            sink.append(artifact)

    return server_app


app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Entry point for `flwr run`: everything comes from the run config."""
    run_config = dict(context.run_config)
    config = RunConfig.from_flower(run_config)
    out_dir = Path(str(run_config.get("out-dir") or "runs/flwr")).expanduser().resolve()
    if str(run_config.get("mode") or "") == "vertical":  # parties holding different columns
        from fedseg.server.vertical_app import run_vertical_from_config

        run_vertical_from_config(grid, config, run_config, schema_from_run_config(run_config), out_dir)
        return
    run_segmentation(grid, config, schema_from_run_config(run_config), out_dir)
