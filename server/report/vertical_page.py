"""The HTML report of a vertical run: one self-contained page (no scripts, nothing
loaded from the network), styled as the horizontal one (`page.py`).

Segments and sizes, then one profile table with every feature labelled with the party
that holds it ("age (crm)"), each cell coloured by the segment's standardised mean (its
centroid coordinate: segment mean minus the shared customers' mean, in their standard
deviations), the data coverage (gaps, clipped, dropped per feature, withheld below the
floor), what the run released, and its facts.
"""

from __future__ import annotations

from fedseg.common.vertical.model import VerticalModel
from fedseg.server.report.charts import esc, seg_colour, z_colour
from fedseg.server.report.coverage_text import COLUMNS, coverage_rows
from fedseg.server.report.markdown import readable
from fedseg.server.report.page import _CSS
from fedseg.server.report.vertical import labelled_coverage, vertical_coverage_lead


def _value(name: str, value: float) -> str:
    """A category's share as a percentage, a numeric mean in original units."""
    return f"{value:.0%}" if "=" in name else readable(value)


def segments_table(model: VerticalModel) -> str:
    rows = []
    for s in sorted(model.segments, key=lambda s: -s.size):
        share = s.size / model.shared_customers
        rows.append(f'<tr class="segment-row" data-segment="{s.segment}" data-size="{s.size}">'
                    f'<td class="id"><span class="swatch" style="background:{seg_colour(s.segment)}"></span>'
                    f'{s.segment}</td><td class="size num">{s.size:,}</td><td class="share num">{share:.1%}</td></tr>')
    return ('<table id="segments" class="data"><thead><tr><th>#</th><th class="num">customers</th>'
            f'<th class="num">share</th></tr></thead><tbody>{"".join(rows)}</tbody></table>')


def profile_table(model: VerticalModel) -> str:
    """Segments x features, each header naming the feature's party."""
    head = "".join(f'<th class="feature" data-feature="{esc(f.name)}" data-party="{esc(f.party)}">'
                   f'{esc(f.name)} ({esc(f.party)})</th>' for f in model.features)
    rows = []
    for s in sorted(model.segments, key=lambda s: -s.size):
        cells = []
        for j, f in enumerate(model.features):
            z = s.centroid[j]
            cells.append(f'<td class="cell num" data-feature="{esc(f.name)}" style="background:{z_colour(z)}" '
                         f'title="z {z:+.2f}">{esc(_value(f.name, s.profile[f.party][f.name]))}</td>')
        rows.append(f'<tr class="profile-row" data-segment="{s.segment}"><td>{s.segment}</td>{"".join(cells)}</tr>')
    return (f'<table id="profiles" class="data"><thead><tr><th>#</th>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def coverage_html(coverage: dict) -> str:
    rows = coverage_rows(labelled_coverage(coverage))
    head = "".join(f"<th>{esc(c)}</th>" for c in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in r) + "</tr>" for r in rows)
    return (f'<p id="coverage">{esc(vertical_coverage_lead(coverage))}</p>'
            f'<table id="coverage-table" class="data"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>')


def _cards(stats: list[tuple[str, str]]) -> str:
    return '<div class="stats">' + "".join(f'<div class="stat"><b>{esc(v)}</b><span>{esc(k)}</span></div>'
                                           for v, k in stats) + "</div>"


def render_vertical_html(model: VerticalModel) -> str:
    parties = list(dict.fromkeys(f.party for f in model.features))
    sections = [
        ("segments", "Segments", f"The {model.shared_customers:,} customers every party holds, by segment; "
         f"segments under {model.min_segment_size} customers merged into their nearest.", segments_table(model)),
        ("profiles", "Profiles", "Each segment's mean (category share) per feature, the party that holds it in "
         "brackets; colour: the segment mean against all shared customers, in their standard deviations.",
         profile_table(model)),
    ]
    if model.coverage:
        sections.append(("data", "Data coverage", "What each party counted about its own columns (counts below "
                         "the disclosure floor withheld).", coverage_html(model.coverage)))
    sections += [
        ("privacy", "Privacy", "Each party kept its columns; the parties aligned their customers by private set "
         "intersection and the server only summed their partial distances (PRIVACY.md, \"Vertical federation\").",
         _cards([("secure aggregation" if model.secure else "plain sums", "how replies were added"),
                 (str(model.min_segment_size), "minimum segment size")])),
        ("run", "Run", "Facts of the vertical run.",
         _cards([(str(len(parties)), "parties: " + ", ".join(parties)),
                 (f"{model.shared_customers:,}", "shared customers"),
                 (str(model.lloyd_rounds), "Lloyd rounds"), (str(model.exchanges), "exchanges"),
                 (str(model.merged_segments), "segments merged")])),
    ]
    nav = "".join(f'<a href="#{sid}">{esc(title)}</a>' for sid, title, _, _ in sections)
    body = "".join(f'<section id="{sid}"><h2>{esc(title)}</h2><p class="lead">{esc(lead)}</p>{content}</section>'
                   for sid, title, lead, content in sections)
    title = f"Customer segmentation: {model.k} segments (vertical federation, {len(parties)} parties)"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
            f"<header><h1>{esc(title)}</h1><p>{model.shared_customers:,} shared customers · parties "
            f"{esc(', '.join(parties))} · fedseg {esc(model.fedseg_version)}</p><nav>{nav}</nav></header>"
            f"<main>{body}<footer>Generated by fedseg. Self-contained: no scripts, nothing loaded from the network."
            "</footer></main></body></html>\n")
