"""The segmentation report: a terminal table and a Markdown file a marketer can read."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from common.artifact import ModelArtifact, atomic_write_text


def segment_table(model: ModelArtifact, top_features: int = 4) -> Table:
    """Rich table: one row per segment with size, share, name and its standout features."""
    table = Table(title=f"fedseg: {model.k} segments of {int(model.metrics['customers'])} customers")
    for col in ("segment", "size", "share", "description", "standout features (mean vs population)"):
        table.add_column(col, justify="right" if col in ("size", "share") else "left")
    for seg in model.segments:
        table.add_row(str(seg.id), f"{seg.size:,}", f"{seg.share:.1%}", seg.name, _standouts(seg, top_features))
    return table


def _standouts(seg, top: int) -> str:
    if seg.profile is None:
        return "withheld (below minimum segment size)"
    ranked = sorted(seg.profile.numeric.items(), key=lambda kv: -abs(kv[1].z))[:top]
    parts = [f"{name} {p.mean:,.4g} vs {p.population_mean:,.4g}" for name, p in ranked]
    for col, shares in seg.profile.categories.items():
        value, share = max(shares.items(), key=lambda kv: kv[1])
        parts.append(f"{col}: {value} {share:.0%}")
        if len(parts) >= top + 2:
            break
    return "; ".join(parts)


def print_report(model: ModelArtifact, console: Console | None = None) -> None:
    console = console or Console()
    console.print(segment_table(model))
    sel = Table(title="k selection (criteria from aggregated statistics)")
    for col in ("k", "inertia", "Calinski-Harabasz", "Davies-Bouldin", "silhouette (simplified)"):
        sel.add_column(col, justify="right")
    for row in model.selection:
        mark = " *" if int(row["k"]) == model.k else ""
        sel.add_row(
            f"{int(row['k'])}{mark}", f"{row['inertia']:,.1f}", f"{row['calinski_harabasz']:,.1f}",
            f"{row['davies_bouldin']:.3f}", f"{row['silhouette']:.3f}",
        )
    console.print(sel)
    run = model.run
    console.print(
        f"{run.clients} nodes, {run.rounds} communication rounds ({run.lloyd_rounds} Lloyd), "
        f"converged: {run.converged}, privacy mode: {model.privacy.get('mode')}"
    )
    for failure in run.clients_failed:
        console.print(f"[yellow]left out: {failure}[/yellow]")


def markdown_report(model: ModelArtifact) -> str:
    """The same content as Markdown, for sharing."""
    lines = [
        f"# Customer segmentation: {model.k} segments",
        "",
        f"{int(model.metrics['customers']):,} customers on {model.run.clients} nodes; "
        f"{model.run.rounds} communication rounds; privacy mode `{model.privacy.get('mode')}`.",
        "",
        "| segment | size | share | description | standout features |",
        "|---|---:|---:|---|---|",
    ]
    for seg in model.segments:
        lines.append(f"| {seg.id} | {seg.size:,} | {seg.share:.1%} | {seg.name} | {_standouts(seg, 4)} |")
    lines += ["", "## k selection", "", "| k | inertia | Calinski-Harabasz | Davies-Bouldin | silhouette |", "|---:|---:|---:|---:|---:|"]
    for row in model.selection:
        lines.append(
            f"| {int(row['k'])} | {row['inertia']:,.1f} | {row['calinski_harabasz']:,.1f} | "
            f"{row['davies_bouldin']:.3f} | {row['silhouette']:.3f} |"
        )
    if model.run.clients_failed:
        lines += ["", "## Nodes left out", ""] + [f"- {f}" for f in model.run.clients_failed]
    return "\n".join(lines) + "\n"


def write_report(model: ModelArtifact, out_dir: Path) -> Path:
    path = out_dir / "report.md"
    atomic_write_text(path, markdown_report(model))
    return path
