"""The segmentation report: a terminal table and a Markdown file a marketer can read."""

from __future__ import annotations

import math
from pathlib import Path

from rich.console import Console
from rich.table import Table

from fedseg.common.artifact import ModelArtifact, atomic_write_text
from fedseg.server.report.caveats import caveats
from fedseg.server.report.coverage_text import coverage_markdown, coverage_summary


def feature_labels(model: ModelArtifact) -> dict[str, str]:
    """Readable label of every column and encoded feature ("channel=online" -> "channel: online")."""
    schema = model.run.feature_schema
    out = {n: schema.label_of(n) for n in (*schema.numeric_names, *schema.categorical_names)}
    for c in schema.categorical:
        out.update({f"{c.name}={v}": f"{schema.label_of(c.name)}: {v}" for v in c.values})
    return out


def segment_table(model: ModelArtifact, top_features: int = 4) -> Table:
    """Rich table: one row per segment with size, share, name and its standout features."""
    labels = feature_labels(model)
    table = Table(title=f"fedseg: {model.k} segments of {int(model.metrics['customers'])} customers")
    for col in ("segment", "size", "share", "description", "standout features (mean vs population)"):
        table.add_column(col, justify="right" if col in ("size", "share") else "left")
    for seg in model.segments:
        table.add_row(str(seg.id), f"{seg.size:,}", share_text(seg), seg.name, _standouts(seg, top_features, labels))
    return table


def readable(x: float | None) -> str:
    """Numbers for people: thousands separators, about 3 significant digits."""
    if x is None or not math.isfinite(x):
        return "–"
    a = abs(x)
    if a >= 1000:
        return f"{x:,.0f}"
    if a >= 100:
        return f"{x:.0f}"
    if a >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def _mean_text(p) -> str:
    """'83,291 (median 71,049)': the segment median next to the mean where it is known;
    under DP '83,291 ± 1,020' (95 % interval of the noise)."""
    return readable(p.mean) + ci_text(p.mean_ci95) + (f" (median {readable(p.median)})" if p.median is not None else "")


def ci_text(half_width: float | None, percent: bool = False) -> str:
    """' ± 1,020' (or ' ± 0.4 pp' for shares): a DP figure's 95 % interval; '' when exact."""
    if half_width is None:
        return ""
    return f" ± {half_width * 100:.1f} pp" if percent else f" ± {readable(half_width)}"


def share_text(seg) -> str:
    """'14.5%' or, under DP, '14.5% ± 0.2 pp'."""
    return f"{seg.share:.1%}" + ci_text(seg.share_ci95, percent=True)


def median_rows(seg) -> list[tuple[str, float, float, float, float]]:
    """(feature, median, q25, q75, mean) in original units for every feature of a
    described segment that has quartiles (the quantile-phase features)."""
    if seg.profile is None:
        return []
    return [(name, p.median, p.q25, p.q75, p.mean) for name, p in seg.profile.numeric.items()
            if p.median is not None]


def _standouts(seg, top: int, labels: dict[str, str] | None = None) -> str:
    """The `top` features furthest from the population, the RFM scores and top categories, as one line."""
    if seg.profile is None:
        return "withheld (below minimum segment size)"
    ranked = sorted(seg.profile.numeric.items(), key=lambda kv: -abs(kv[1].z))[:top]
    labels = labels or {}
    parts = [f"{labels.get(name, name)} {_mean_text(p)} vs {readable(p.population_mean)}" for name, p in ranked]
    if seg.profile.scores:
        parts.insert(0, score_text(seg.profile.scores))
    for col, shares in seg.profile.categories.items():
        value, share = max(shares.items(), key=lambda kv: kv[1])
        parts.append(f"{labels.get(col, col)}: {value} {share:.0%}")
        if len(parts) >= top + 2:
            break
    return "; ".join(parts)


def score_text(scores: dict[str, float]) -> str:
    """'mean score R 4.8 · F 5.0 · M 5.0': quintile scores 1-5, from global quantiles."""
    return "mean score " + " · ".join(f"{_letter(n)} {v:.1f}" for n, v in scores.items())


def _letter(name: str) -> str:
    """R, F or M for the RFM features; other names unchanged."""
    return {"recency_days": "R", "frequency": "F", "monetary": "M"}.get(name, name)


def changes_text(drift: dict) -> str:
    """One line on customers that changed segment since the warm-start model."""
    return (f"since {drift['warm_start_from']}: {drift['changed_segment']:,} of {drift['customers']:,} customers "
            f"({drift['changed_share']:.1%}) changed segment (counted on the nodes, summed)")


def quantile_rows(model: ModelArtifact) -> list[list[str]]:
    """Feature, quintile edges, median, winsor limits (original units) per quantile feature."""
    rows = []
    for q in model.quantiles or []:
        edges = ", ".join(readable(e) for e in q["quintile_edges"])
        lim = q.get("winsor_limits")
        if lim is not None and q["name"] in model.run.feature_schema.numeric_names:
            f = model.run.feature_schema.numeric[model.run.feature_schema.numeric_names.index(q["name"])]
            back = [math.expm1(v) if f.transform == "log1p" else v for v in lim]
            lim_text = f"{readable(back[0])} .. {readable(back[1])}"
        else:
            lim_text = "-"
        rows.append([q["name"], edges, readable(q["quantiles"]["0.5"]), lim_text, q.get("scaling", "standard")])
    return rows


def print_report(model: ModelArtifact, console: Console | None = None) -> None:
    """Print the segments, the k-selection table and the run's facts to the terminal."""
    console = console or Console()
    console.print(segment_table(model))
    for line in caveats(model):
        console.print(f"[yellow]note:[/yellow] {line}", highlight=False)
    if model.selection:
        console.print(selection_table(model))
    run = model.run
    console.print(
        f"{run.clients} nodes, {run.rounds} communication rounds ({run.lloyd_rounds} Lloyd), "
        f"converged: {run.converged}, privacy mode: {model.privacy.get('mode')}"
    )
    for nid, code in run.clients_failed.items():
        console.print(f"[yellow]left out: node {nid}: {code}[/yellow]")
    if model.drift:
        console.print(changes_text(model.drift))
    if model.coverage:
        console.print(coverage_summary(model.coverage), highlight=False)


def selection_table(model: ModelArtifact) -> Table:
    """The k-selection criteria per k (plaintext and secure runs; none under DP)."""
    sel = Table(title="k selection (criteria from aggregated statistics)")
    for col in ("k", "inertia", "Calinski-Harabasz", "Davies-Bouldin", "silhouette (simplified)"):
        sel.add_column(col, justify="right")
    for row in model.selection:
        mark = " *" if int(row["k"]) == model.k else ""
        sel.add_row(
            f"{int(row['k'])}{mark}", f"{row['inertia']:,.1f}", f"{row['calinski_harabasz']:,.1f}",
            f"{row['davies_bouldin']:.3f}", f"{row['silhouette']:.3f}",
        )
    return sel


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
    labels = feature_labels(model)
    for seg in model.segments:
        lines.append(f"| {seg.id} | {seg.size:,} | {share_text(seg)} | {seg.name} | {_standouts(seg, 4, labels)} |")
    notes = caveats(model)
    if notes:
        lines += [""] + [f"> **Note:** {n}" for n in notes]
    if model.selection:
        lines += ["", "## k selection", "", "| k | inertia | Calinski-Harabasz | Davies-Bouldin | silhouette |",
                  "|---:|---:|---:|---:|---:|"]
    for row in model.selection:
        lines.append(
            f"| {int(row['k'])} | {row['inertia']:,.1f} | {row['calinski_harabasz']:,.1f} | "
            f"{row['davies_bouldin']:.3f} | {row['silhouette']:.3f} |"
        )
    lines += _median_lines(model)
    if model.quantiles:
        lines += ["", "## Global quantiles (federated histograms over public bins)", "",
                  "| feature | quintile edges | median | winsorized to | scaling |", "|---|---|---:|---|---|"]
        lines += [f"| {' | '.join(r)} |" for r in quantile_rows(model)]
    if model.drift:
        lines += ["", "## Segment changes", "", changes_text(model.drift) + "."]
    if model.coverage:
        lines += coverage_markdown(model.coverage)
    if model.privacy.get("deduplication"):
        lines += ["", "## Customers shared between units", "", overlap_text(model.privacy["deduplication"]) + "."]
    if model.run.clients_failed:
        lines += ["", "## Nodes left out", ""] + [f"- node {n}: {c}" for n, c in model.run.clients_failed.items()]
        lines += ["", "Nodes included per phase (one figure per exchange): " + "; ".join(
            f"{phase} {', '.join(map(str, counts))}" for phase, counts in model.run.phase_nodes.items()) + "."]
    return "\n".join(lines) + "\n"


def overlap_text(dedup: dict) -> str:
    """The deduplication in one sentence: the released sums, or why none is shown."""
    shared, removed = dedup.get("shared_customers"), dedup.get("duplicate_rows_removed")
    if shared is None or removed is None:
        return (f"customers held by several of the {dedup['units']} units were counted once; how many is not "
                "shown (below the disclosure floor, or not released under differential privacy)")
    return (f"{shared:,} customers were held by more than one of the {dedup['units']} units; each was counted "
            f"once, from one owner ({removed:,} duplicate rows left out)")


def _median_lines(model: ModelArtifact) -> list[str]:
    """'Typical values per segment': median and middle half next to the mean (original units)."""
    if not any(median_rows(s) for s in model.segments):
        return []
    labels = feature_labels(model)
    lines = ["", "## Typical values per segment (medians from federated histograms)", "",
             "| segment | feature | median | middle half (25th–75th percentile) | mean |", "|---|---|---:|---:|---:|"]
    for seg in model.segments:
        if seg.profile is None:
            lines.append(f"| {seg.id} {seg.name} | – | withheld (below minimum segment size) | | |")
        for name, med, q25, q75, mean in median_rows(seg):
            lines.append(f"| {seg.id} {seg.name} | {labels.get(name, name)} | {readable(med)} | {readable(q25)} – {readable(q75)} | "
                         f"{readable(mean)} |")
    return lines


def write_report(model: ModelArtifact, out_dir: Path) -> Path:
    """Write `report.md` atomically into `out_dir`; returns its path."""
    path = out_dir / "report.md"
    atomic_write_text(path, markdown_report(model))
    return path
