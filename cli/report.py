"""CLI commands `fedseg report` (HTML report, optional PNG) and `fedseg drift` (compare models).

Registered in `cli/main.py`; like the other commands, a user-facing failure prints one
clear line and exits with status 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

console = Console()


def _fail(message: str) -> None:
    """Print one red error line and exit with status 2."""
    console.print(f"[bold red]error:[/bold red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


def report_cmd(
    model: Annotated[Path, typer.Argument(help="model.json from a run")],
    out: Annotated[Optional[Path], typer.Option(help="HTML file to write (default: report.html next to the model)")] = None,
    playbook: Annotated[Optional[Path], typer.Option(help="playbook TOML (default: the one shipped with fedseg)")] = None,
    no_playbook: Annotated[bool, typer.Option("--no-playbook", help="leave the playbook out")] = False,
    png: Annotated[Optional[Path], typer.Option(help="also render a PNG screenshot with headless Chromium")] = None,
    width: Annotated[int, typer.Option(min=320, help="PNG width in pixels")] = 1280,
) -> None:
    """Write a self-contained HTML report of a model (charts inline, nothing loaded from the web)."""
    from fedseg.common.artifact import ArtifactError, load_artifact
    from fedseg.common.naming import NamingError
    from fedseg.common.playbook import PlaybookError, load_playbook
    from fedseg.server.report.page import write_html_report
    from fedseg.server.report.screenshot import ChromiumError, screenshot

    try:
        artifact = load_artifact(model)
        book = None if no_playbook else load_playbook(playbook)
        target = out or model.with_name("report.html")
        path = write_html_report(artifact, target.parent, book, filename=target.name)
        console.print(f"report: {path}")
        if png is not None:
            console.print(f"screenshot: {screenshot(path, png, width=width)}")
    except (ArtifactError, PlaybookError, NamingError, ChromiumError, OSError) as exc:
        _fail(str(exc))


def drift_table(report, old_label: str = "old", new_label: str = "new") -> Table:
    """Rich table: one row per matched, vanished or appeared segment, coloured by status."""
    colours = {"stable": "green", "growing": "cyan", "shrinking": "yellow", "moved": "magenta",
               "vanished": "red", "appeared": "blue"}
    table = Table(title=f"segment drift: {old_label} → {new_label}")
    for col, just in (("old segment", "left"), ("new segment", "left"), ("share old → new", "right"),
                      ("moved", "right"), ("status", "left")):
        table.add_column(col, justify=just)
    for s in report.segments:
        colour = colours[s.status]
        table.add_row(
            "–" if s.old_id is None else f"{s.old_id} {s.old_name}",
            "–" if s.new_id is None else f"{s.new_id} {s.new_name}",
            f"{s.old_share:.1%} → {s.new_share:.1%} ({s.share_change * 100:+.1f} pp)",
            "–" if s.movement is None else f"{s.movement:.2f}",
            f"[{colour}]{s.status}[/{colour}]",
        )
    return table


def drift_cmd(
    old: Annotated[Path, typer.Argument(help="earlier model.json")],
    new: Annotated[Path, typer.Argument(help="later model.json")],
    match_threshold: Annotated[float, typer.Option(min=0.0, help="max centroid distance (z-units) for a match")] = 1.5,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="also write the drift report as JSON")] = None,
) -> None:
    """Compare two models: matched segments, centroid movement, share changes, drift score."""
    from fedseg.common.artifact import ArtifactError, atomic_write_text, load_artifact
    from fedseg.common.drift import DriftError, drift

    try:
        report = drift(load_artifact(old), load_artifact(new), match_threshold=match_threshold)
        if json_out is not None:
            atomic_write_text(json_out, report.model_dump_json(indent=2))
    except (ArtifactError, DriftError, OSError) as exc:
        _fail(str(exc))
    console.print(drift_table(report, str(old), str(new)))
    console.print(
        f"drift score {report.score:.3f} = share total variation {report.share_tvd:.3f} + centroid movement "
        f"beyond {report.move_threshold:g} z-units {report.excess_movement:.3f} "
        f"(share-weighted; mean movement {report.mean_movement:.3f})"
    )
