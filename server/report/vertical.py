"""The reports of a vertical run: the Markdown report (`common.vertical.model.report`)
with its data-coverage section, each feature labelled with the party that holds it, and
the HTML page (`vertical_page`)."""

from __future__ import annotations

from fedseg.common.vertical.model import VerticalModel, report
from fedseg.server.report.coverage_text import COLUMNS, _n, coverage_rows


def labelled_coverage(coverage: dict) -> dict:
    """The coverage section with each feature named with its party: "age (crm)"."""
    features = {f"{name} ({entry['party']})": entry for name, entry in coverage.get("features", {}).items()}
    return {**coverage, "features": features}


def vertical_coverage_lead(coverage: dict) -> str:
    """Shared customers, and the rows each party's policies left out before alignment."""
    floor = coverage["suppressed_below"]
    parties = "; ".join(f"{name} {_n(p['rows_dropped'], floor)}" for name, p in coverage["parties"].items())
    return (f"{coverage['shared_customers']:,} customers shared by every party after each applied the schema's "
            f"policies to its own columns. Rows left out by those policies before the alignment "
            f"(so not shared): {parties}. Gaps and clipped values are counted over the shared customers.")


def coverage_lines(model: VerticalModel) -> list[str]:
    if not model.coverage:
        return []
    lines = ["## Data coverage", "", vertical_coverage_lead(model.coverage), ""]
    rows = coverage_rows(labelled_coverage(model.coverage))
    if rows:
        lines += [f"| {' | '.join(COLUMNS)} |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {' | '.join(r)} |" for r in rows]
    return lines + [""]


def vertical_markdown(model: VerticalModel) -> str:
    return report(model) + "\n" + "\n".join(coverage_lines(model))


def vertical_reports(model: VerticalModel) -> dict[str, str]:
    """The files a vertical run writes beside model.json."""
    from fedseg.server.report.vertical_page import render_vertical_html

    return {"report.md": vertical_markdown(model), "report.html": render_vertical_html(model)}
