"""The HTML report's "Data" section: what the nodes counted about their tables (gaps,
out-of-range values, customers shared between units), as the Markdown report gives it.
Aggregates only, disclosure control already applied in the artifact."""

from __future__ import annotations

from html import escape as esc

from fedseg.common.artifact import ModelArtifact
from fedseg.server.report.coverage_text import COLUMNS, coverage_lead, coverage_rows


def data_section(model: ModelArtifact) -> str:
    """Empty when the run counted nothing about its data."""
    from fedseg.server.report.markdown import overlap_text

    parts = []
    if model.privacy.get("deduplication"):
        parts.append(f'<p id="overlap">{esc(overlap_text(model.privacy["deduplication"]))}.</p>')
    if model.coverage:
        parts.append(f'<p id="coverage">{esc(coverage_lead(model.coverage))}</p>')
        rows = coverage_rows(model.coverage)
        if rows:
            head = "".join(f"<th>{esc(c)}</th>" for c in COLUMNS)
            body = "".join("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in r) + "</tr>" for r in rows)
            parts.append(f'<table id="coverage-table" class="data"><thead><tr>{head}</tr></thead>'
                         f"<tbody>{body}</tbody></table>")
    return "".join(parts)
