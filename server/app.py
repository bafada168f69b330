"""The fedseg ServerApp: read the run config, drive the orchestrator over the grid,
write the model artifact and the report."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from fedseg.common.artifact import ModelArtifact, artifact_text, load_artifact
from fedseg.common.config import RunConfig
from fedseg.common.schema import FeatureSchema, load_schema
from fedseg.common.wire import RunEndRequest
from fedseg.server.flower_transport import GridTransport, wait_for_nodes
from fedseg.server.model import build_artifact
from fedseg.server import output
from fedseg.server.orchestrator import Event, Orchestrator, RunError
from fedseg.server.output import OutputError
from fedseg.common.playbook import load_playbook
from fedseg.server.report.page import render_html
from fedseg.server.report.markdown import markdown_report

log = logging.getLogger("fedseg")
OUTPUTS = ("model.json", "report.md", "report.html")  # what a run writes to its output folder


def log_event(event: Event) -> None:
    log.warning("[fedseg] %s: %s", event.phase, event.message)


def schema_from_run_config(run_config: Mapping[str, Any]) -> FeatureSchema:
    """The schema file the run config names, or the built-in synthetic schema."""
    if run_config.get("schema"):
        return load_schema(str(run_config["schema"]))
    from fedseg.common.synthetic import synthetic_schema

    return synthetic_schema()


RUN_END_TIMEOUT_S = 30.0


def run_segmentation(
    grid: Grid,
    config: RunConfig,
    schema: FeatureSchema,
    out_dir: Path,
    on_event: Callable[[Event], None] = log_event,
    node_timeout: float = 120.0,
) -> ModelArtifact:
    """One whole run over the grid. The output folder is probed before the first
    exchange; the model and reports are written all or none (`server/output.py`); any
    failure ends in one `failed` event naming its cause and a marker in the folder.
    Nodes still in the run are told it ended, whatever the outcome (`end_run`)."""
    orchestrator: Orchestrator | None = None
    try:
        output.probe(out_dir)
        nodes = wait_for_nodes(grid, config.min_nodes, timeout=node_timeout)
        on_event(Event("connect", f"{len(nodes)} nodes connected; each exchange waits at most "
                                  f"{config.exchange_timeout:g} s (exchange-timeout)"))
        transport = GridTransport(grid, timeout=config.exchange_timeout)
        warm = load_artifact(config.warm_start) if config.warm_start else None
        orchestrator = Orchestrator(config, schema, transport, nodes, on_event, warm=warm)
        result = orchestrator.run()
        artifact = build_artifact(result, config, schema)
        output.publish(out_dir, {"model.json": artifact_text(artifact, out_dir / "model.json"),
                                 "report.md": markdown_report(artifact),
                                 "report.html": render_html(artifact, load_playbook())})
    except BaseException as exc:
        reason = f"{type(exc).__name__}: {exc}" if not isinstance(exc, (RunError, OutputError)) else str(exc)
        if not isinstance(exc, OutputError) or out_dir.is_dir():
            output.mark_failed(out_dir, reason, OUTPUTS)
        on_event(Event("failed", f"run failed, no model written: {reason}"))
        raise
    finally:
        if orchestrator is not None:
            end_run(grid, orchestrator.active)
    on_event(Event("done", f"model written to {out_dir / 'model.json'}", result.rounds))
    return artifact


def end_run(grid: Grid, nodes: list[int]) -> None:
    """Nodes still in the run drop their cached tables; a bounded wait, and a failure
    here never hides the run's own outcome (nodes sweep stale caches themselves)."""
    try:
        GridTransport(grid, timeout=RUN_END_TIMEOUT_S).send({nid: RunEndRequest() for nid in nodes})
    except Exception as exc:  # noqa: BLE001
        log.warning("fedseg: run-end message not delivered (%s); nodes drop their caches when idle", exc)


def bound_server_app(run: Callable[[Grid], object], sink: list | None = None) -> ServerApp:
    """A ServerApp whose main runs `run(grid)` with a config built in Python (the
    `fedseg simulate` drivers, horizontal and vertical); the result goes to `sink`."""
    server_app = ServerApp()

    @server_app.main()
    def _main(grid: Grid, context: Context) -> None:
        result = run(grid)
        if sink is not None:
            sink.append(result)

    return server_app


def make_server_app(
    config: RunConfig,
    schema: FeatureSchema,
    out_dir: Path,
    on_event: Callable[[Event], None] = log_event,
    sink: list | None = None,
) -> ServerApp:
    """A ServerApp bound to a config built in Python (the `fedseg simulate` driver)."""
    return bound_server_app(lambda grid: run_segmentation(grid, config, schema, out_dir, on_event), sink)


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
