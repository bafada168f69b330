"""A self-contained HTML report of a segmentation: one page, inline SVG, no scripts, no CDNs.

`render_html(model, playbook)` returns one HTML page a marketer can open offline or mail:
segment names and sizes, a profile heatmap, a z-score chart per segment with its
playbook actions, the category mix, the k-selection curves, a 2-D map of the centroids,
what the run released (privacy) and the run's facts. The charts come from `charts.py`.
"""

from __future__ import annotations

from pathlib import Path

from fedseg.common.artifact import ModelArtifact, Segment, atomic_write_text
from fedseg.common.naming import SegmentName, name_model
from fedseg.common.playbook import Playbook
from fedseg.server.report.charts import (
    Z_LIMIT, category_mix, centroid_map, esc, heatmap, seg_colour, selection_charts, sizes_chart, timings_chart,
    z_bars, z_colour,
)
from fedseg.server.report.caveats import caveats
from fedseg.server.report.data_section import data_section
from fedseg.server.report.markdown import (
    changes_text, ci_text, feature_labels, median_rows, quantile_rows, readable, score_text, share_text,
)

def _standouts(seg: Segment, top: int = 3, labels: dict[str, str] | None = None) -> str:
    """Chips for the `top` features furthest from the population, the RFM scores and majority categories."""
    if seg.profile is None:
        return '<span class="muted">withheld (below the minimum segment size)</span>'
    ranked = sorted(seg.profile.numeric.items(), key=lambda kv: -abs(kv[1].z))[:top]
    labels = labels or {}
    items = [f'<span class="chip{" dark" if abs(p.z) > 0.6 * Z_LIMIT else ""}" style="background:{z_colour(p.z)}">'
             f'{esc(labels.get(f, f))} {readable(p.mean)}{esc(ci_text(p.mean_ci95))} <small>{f"median {readable(p.median)} · " if p.median is not None else ""}'
             f'vs {readable(p.population_mean)}</small></span>' for f, p in ranked]
    if seg.profile.scores:
        items.insert(0, f'<span class="chip cat">{esc(score_text(seg.profile.scores))}</span>')
    for col, shares in seg.profile.categories.items():
        value, share = max(shares.items(), key=lambda kv: kv[1])
        if share >= 0.5:
            items.append(f'<span class="chip cat">{esc(labels.get(col, col))}: {esc(value)} {share:.0%}</span>')
    return " ".join(items)


def segment_table(model: ModelArtifact, names: list[SegmentName]) -> str:
    """The overview table: one row per segment with its colour, name, size, share and standouts."""
    rows, labels = [], feature_labels(model)
    for seg, nm in zip(model.segments, names):
        rows.append(
            f'<tr class="segment-row" data-segment="{seg.id}" data-size="{seg.size}">'
            f'<td class="id"><span class="swatch" style="background:{seg_colour(seg.id)}"></span>{seg.id}</td>'
            f'<td class="name"><strong>{esc(nm.name)}</strong></td>'
            f'<td class="size num">{seg.size:,}</td>'
            f'<td class="share num"><div class="sharebar"><span style="width:{seg.share * 100:.1f}%;'
            f'background:{seg_colour(seg.id)}"></span></div>{esc(share_text(seg))}</td>'
            f'<td>{_standouts(seg, labels=labels)}</td></tr>')
    return ('<table id="segments" class="data"><thead><tr><th>#</th><th>segment</th><th class="num">customers</th>'
            '<th class="num">share</th><th>stands out by (segment mean vs population)</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def _action_html(action) -> str:
    """One playbook action as a definition list (or a note that the segment has none)."""
    if action is None:
        return '<p class="muted">No playbook entry for this segment.</p>'
    return ('<dl class="action">'
            f'<dt>goal</dt><dd>{esc(action.goal)}</dd>'
            f'<dt>channels</dt><dd>{", ".join(esc(c) for c in action.channels)}</dd>'
            f'<dt>content</dt><dd>{esc(action.content)}</dd>'
            f'<dt>offer</dt><dd>{esc(action.offer)}</dd>'
            f'<dt>service</dt><dd>{esc(action.service_level)}</dd></dl>')


def median_table(seg: Segment, labels: dict[str, str] | None = None) -> str:
    """Typical values of one segment: median and middle half next to the mean, in
    original units, for the features with federated quartiles (empty without)."""
    rows = "".join(
        f'<tr class="median-row" data-feature="{esc(name)}"><td>{esc((labels or {}).get(name, name))}</td><td class="num median">{readable(med)}</td>'
        f'<td class="num">{readable(q25)} – {readable(q75)}</td><td class="num mean">{readable(mean)}</td></tr>'
        for name, med, q25, q75, mean in median_rows(seg))
    if not rows:
        return ""
    return ('<table class="data medians"><thead><tr><th>typical values</th><th class="num">median</th>'
            '<th class="num">middle half (25th–75th pct.)</th><th class="num">mean</th></tr></thead>'
            f'<tbody>{rows}</tbody></table>')


def segment_cards(model: ModelArtifact, names: list[SegmentName], playbook: Playbook | None) -> str:
    """A card per segment: z-score bars, typical values and, with a playbook, its action."""
    cards, labels = [], feature_labels(model)
    for seg, nm in zip(model.segments, names):
        head = (f'<h3><span class="swatch" style="background:{seg_colour(seg.id)}"></span>{seg.id} · {esc(nm.name)}</h3>'
                f'<p class="muted">{seg.size:,} customers · {esc(share_text(seg))}'
                + (f' · playbook key <code>{esc(nm.key)}</code>' if nm.key else "") + "</p>")
        body = z_bars(seg, labels=labels) + median_table(seg, labels) if seg.profile is not None else \
            '<p class="muted">Below the minimum release size: not described.</p>'
        action = ""
        if playbook is not None:
            action = "<h4>Playbook</h4>" + _action_html(playbook.action_for(nm))
        cards.append(f'<article class="card segment-card" data-segment="{seg.id}">{head}{body}{action}</article>')
    return '<div class="grid cards">' + "".join(cards) + "</div>"


def playbook_table(model: ModelArtifact, names: list[SegmentName], playbook: Playbook) -> str:
    """The playbook's action for every segment in one table, with the playbook's source."""
    rows = []
    for seg, nm in zip(model.segments, names):
        a = playbook.action_for(nm)
        cells = (f"<td>{esc(a.goal)}</td><td>{esc(', '.join(a.channels))}</td><td>{esc(a.content)}</td>"
                 f"<td>{esc(a.offer)}</td><td>{esc(a.service_level)}</td>") if a else \
            '<td colspan="5" class="muted">no playbook entry</td>'
        rows.append(f'<tr class="playbook-row" data-segment="{seg.id}"><td><span class="swatch" '
                    f'style="background:{seg_colour(seg.id)}"></span>{esc(nm.name)}</td>{cells}</tr>')
    return (f'<p class="muted">Playbook: <code>{esc(playbook.source)}</code></p>'
            '<table class="data playbook"><thead><tr><th>segment</th><th>goal</th><th>channels</th><th>content</th>'
            f'<th>offer</th><th>service level</th></tr></thead><tbody>{"".join(rows)}</tbody></table>')


def _value_html(value: object) -> str:
    """Nested run facts (dicts, lists, scalars) as key-value tables and lists."""
    if isinstance(value, dict):
        return ('<table class="kv">' + "".join(f"<tr><th>{esc(k)}</th><td>{_value_html(v)}</td></tr>"
                                               for k, v in value.items()) + "</table>")
    if isinstance(value, (list, tuple)):
        return "<ul>" + "".join(f"<li>{_value_html(v)}</li>" for v in value) + "</ul>"
    if value is None:
        return '<span class="muted">not applicable</span>'
    return esc(value)


def quantiles_section(model: ModelArtifact) -> str:
    """Global quintile edges, medians and winsor limits from the federated histograms."""
    head = "".join(f"<th>{h}</th>" for h in ("feature", "quintile edges (1-5 scores)", "median", "winsorized to", "scaling"))
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in quantile_rows(model))
    return f'<table id="quantiles" class="data"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def drift_section(model: ModelArtifact) -> str:
    """Warm start: customers that changed segment, and the (old, new) transition table."""
    d = model.drift
    olds = d.get("old_segment_names") or [str(i) for i in range(d["old_k"])]
    head = "<th>old segment → new segment</th>" + "".join(f"<th class=\"num\">{s.id}</th>" for s in model.segments)
    rows = "".join(
        f"<tr><td>{esc(i)} {esc(olds[i] if i < len(olds) else '')}</td>"
        + "".join(f'<td class="num">{"withheld" if c is None else f"{c:,}"}</td>' for c in row)
        + "</tr>" for i, row in enumerate(d["transitions"]))
    return (f'<p id="changed">{esc(changes_text(d))}.</p>'
            f'<table id="transitions" class="data"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>')


def privacy_section(model: ModelArtifact) -> str:
    """Privacy mode and budget as cards, then what each node released, then any further facts."""
    p = dict(model.privacy)
    mode = p.pop("mode", "unknown")
    eps, delta = p.pop("epsilon", None), p.pop("delta", None)
    released = p.pop("released_per_node", None)
    cards = [f'<div class="stat"><b>{esc(mode)}</b><span>privacy mode</span></div>']
    if eps is not None:
        cards.append(f'<div class="stat"><b>ε = {esc(readable(float(eps)))}</b><span>total privacy budget</span></div>')
    if delta is not None:
        cards.append(f'<div class="stat"><b>δ = {float(delta):.1e}</b><span>failure probability</span></div>')
    if "min_release_size" in p:
        cards.append(f'<div class="stat"><b>{esc(p.pop("min_release_size"))}</b>'
                     f'<span>minimum release size (customers)</span></div>')
    out = [f'<div class="stats">{"".join(cards)}</div>',
           '<p>No customer record left any node. What each node released to the server:</p>']
    if released:
        out.append('<ul class="released">' + "".join(f"<li>{_value_html(r)}</li>" for r in released) + "</ul>")
    if p:
        out.append("<h4>Further privacy facts</h4>" + _value_html(p))
    return "".join(out)


def run_section(model: ModelArtifact) -> str:
    """Facts of the run as cards, the nodes left out, time per phase and the run configuration."""
    run = model.run
    stats = [
        (f"{run.clients}", "nodes taking part"),
        (f"{len(run.clients_failed)}", "nodes left out"),
        (f"{run.rounds}", "communication rounds"),
        (f"{run.lloyd_rounds}", "Lloyd rounds"),
        ("yes" if run.converged else "no", "converged"),
        (f"{run.timings.get('total', sum(run.timings.values())):.1f} s", "server wall time"),
        (f"{run.seed}", "seed"),
    ]
    out = ['<div class="stats">' + "".join(f'<div class="stat"><b>{esc(v)}</b><span>{esc(k)}</span></div>'
                                          for v, k in stats) + "</div>"]
    if run.clients_failed:
        out.append('<h4>Nodes left out</h4><ul class="failures">'
                   + "".join(f"<li>node {esc(n)}: {esc(c)}</li>" for n, c in run.clients_failed.items()) + "</ul>")
    out.append('<div class="grid two"><div><h4>Time per phase</h4>' + timings_chart(run.timings) + "</div>"
               '<div><h4>Run configuration</h4>' + _value_html(run.config) + "</div></div>")
    return "".join(out)


_CSS = """
:root{--ink:#1f2430;--muted:#6b7280;--line:#e5e7eb;--bg:#f6f7fb}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 -apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--ink);background:var(--bg)}
header{background:#1f2a44;color:#fff;padding:28px 40px 22px}
header h1{margin:0 0 4px;font-size:26px}
header p{margin:0;color:#c9d2e6}
nav{margin-top:14px}
nav a{color:#dbe4ff;margin-right:16px;text-decoration:none;font-size:13px}
main{max-width:1220px;margin:0 auto;padding:20px 28px 60px}
section{background:#fff;border:1px solid var(--line);border-radius:10px;padding:18px 22px;margin:18px 0}
section>h2{margin:0 0 4px;font-size:19px}
section>p.lead{margin:0 0 14px;color:var(--muted)}
.stats{display:flex;flex-wrap:wrap;gap:12px;margin:6px 0 12px}
.stat{background:var(--bg);border:1px solid var(--line);border-radius:8px;padding:10px 16px;min-width:130px}
.stat b{display:block;font-size:20px}
.stat span{color:var(--muted);font-size:12px}
table.data{border-collapse:collapse;width:100%}
table.data th,table.data td{border-bottom:1px solid var(--line);padding:7px 8px;text-align:left;vertical-align:top}
table.data th{font-size:12px;color:var(--muted);font-weight:600;text-transform:uppercase;letter-spacing:.03em}
.num{text-align:right!important;white-space:nowrap}
table.medians{margin-top:8px;font-size:13px}
.swatch{display:inline-block;width:12px;height:12px;border-radius:3px;margin-right:7px;vertical-align:-1px}
.sharebar{display:inline-block;width:70px;height:8px;background:#eef0f4;border-radius:4px;margin-right:8px;vertical-align:1px;overflow:hidden}
.sharebar span{display:block;height:100%}
.chip{display:inline-block;border-radius:12px;padding:1px 9px;margin:2px 3px 2px 0;font-size:12px;border:1px solid #ddd}
.chip.cat{background:#f3f4f6}
.chip small{color:#555}
.chip.dark{color:#fff}
.chip.dark small{color:#f3d6da}
td.id{white-space:nowrap}
.muted{color:var(--muted)}
.grid{display:grid;gap:16px}
.grid.charts{grid-template-columns:repeat(auto-fill,minmax(260px,1fr))}
.grid.cards{grid-template-columns:repeat(auto-fill,minmax(370px,1fr))}
.grid.mixes{grid-template-columns:repeat(auto-fill,minmax(380px,1fr))}
.grid.two{grid-template-columns:1fr 1fr}
.card{border:1px solid var(--line);border-radius:8px;padding:12px 14px;background:#fff}
.card h3{margin:0;font-size:15px}
.card h4,section h4{margin:12px 0 4px;font-size:13px;color:#374151}
.card p{margin:2px 0 8px}
figure{margin:0}
figcaption{font-weight:600;margin-bottom:4px}
svg{max-width:100%;height:auto;font-family:inherit}
dl.action{display:grid;grid-template-columns:72px 1fr;gap:2px 8px;margin:0;font-size:13px}
dl.action dt{color:var(--muted)}
dl.action dd{margin:0}
table.kv{border-collapse:collapse;font-size:13px}
table.kv th{text-align:left;color:var(--muted);font-weight:500;padding:2px 12px 2px 0}
table.kv td{padding:2px 0}
ul.released li{margin:3px 0}
code{background:#f3f4f6;padding:0 4px;border-radius:4px}
p.caveat{background:#fff7e6;border:1px solid #f5d9a8;border-radius:6px;padding:6px 10px;margin:6px 0}
footer{color:var(--muted);font-size:12px;text-align:center;margin-top:24px}
"""


def render_html(model: ModelArtifact, playbook: Playbook | None = None) -> str:
    """The whole report as one self-contained HTML page (no scripts, no external resources)."""
    names = name_model(model, playbook.naming if playbook else None)
    customers = int(model.metrics.get("customers", sum(s.size for s in model.segments)))
    sil = model.metrics.get("silhouette")
    summary = [
        (f"{customers:,}", "customers"), (f"{model.k}", "segments"), (f"{model.run.clients}", "nodes"),
        (f"{model.run.rounds}", "communication rounds"), (str(model.privacy.get("mode", "?")), "privacy mode"),
    ]
    if sil is not None:
        summary.append((f"{sil:.3f}", "silhouette (simplified)"))
    stats = "".join(f'<div class="stat"><b>{esc(v)}</b><span>{esc(k)}</span></div>' for v, k in summary)
    stats += "".join(f'<p class="caveat"><strong>Note:</strong> {esc(c)}</p>' for c in caveats(model))
    sections = [
        ("overview", "Segments", "Who the customers are: one row per segment, named from how it differs "
         "from the whole customer base.", f'<div class="stats">{stats}</div>' + segment_table(model, names)),
        ("sizes", "Segment sizes", "Customers per segment.", sizes_chart(model, names)),
        ("profiles", "Profile heatmap", "Each cell: how far the segment's mean lies from the population mean, "
         "in population standard deviations (red above, blue below). Hover a cell for the values.",
         heatmap(model, names)),
        ("cards", "Segment by segment", "z-score of every numeric feature, the typical values (median and "
         "middle half, from federated histograms) where the schema has them"
         + (", and the playbook's actions." if playbook else "."), segment_cards(model, names, playbook)),
    ]
    mix = category_mix(model, names)
    if mix:
        sections.append(("mix", "Category mix", "Share of each category value within each segment.", mix))
    if model.selection:  # under DP no criteria are released: no selection section
        sections.append(("selection", "Choosing k", f"Criteria per number of segments, from aggregated "
                         f"statistics; the chosen k = {model.k} is marked in red.", selection_charts(model)))
    sections += [
        ("map", "Segment map", "The centroids projected on their two main axes (PCA of the centroid "
         "matrix); circle area is proportional to the segment's share, grey arrows show the features that "
         "spread the segments most.", centroid_map(model, names)),
    ]
    if playbook is not None:
        sections.append(("playbook", "Playbook", "What to do with each segment.",
                         playbook_table(model, names, playbook)))
    if model.quantiles:
        sections.append(("quantiles", "Global quantiles", "From histograms over public bins summed across nodes "
                         "(no record left a node); quintile edges give the 1-5 RFM scores.", quantiles_section(model)))
    if model.drift:
        sections.append(("drift", "Segment changes", "Customers whose segment changed since the warm-start model, "
                         "counted on each node and summed.", drift_section(model)))
    data = data_section(model)
    if data:
        sections.append(("data", "Data coverage", "What the nodes counted about their tables: gaps filled, values "
                         "clipped to the public bounds, rows left out, customers held by several units (sums over "
                         "nodes; counts below the disclosure floor withheld).", data))
    sections += [
        ("privacy", "Privacy", "How the model was learned without pooling customer records.",
         privacy_section(model)),
        ("run", "Run", "Facts of the federated run that produced this model.", run_section(model)),
    ]
    nav = "".join(f'<a href="#{sid}">{esc(title)}</a>' for sid, title, _, _ in sections)
    body = "".join(f'<section id="{sid}"><h2>{esc(title)}</h2><p class="lead">{esc(lead)}</p>{content}</section>'
                   for sid, title, lead, content in sections)
    title = f"Customer segmentation: {model.k} segments"
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{esc(title)}</h1><p>{customers:,} customers on {model.run.clients} nodes · "
        f"federated k-means (fedseg, {esc(model.format)}) · privacy mode {esc(model.privacy.get('mode', '?'))}</p>"
        f"<nav>{nav}</nav></header><main>{body}"
        "<footer>Generated by fedseg. Self-contained: no scripts, nothing loaded from the network.</footer>"
        "</main></body></html>\n"
    )


def write_html_report(model: ModelArtifact, out_dir: Path, playbook: Playbook | None = None,
                      filename: str = "report.html") -> Path:
    """Write `report.html` atomically into `out_dir`; returns its path."""
    path = Path(out_dir) / filename
    atomic_write_text(path, render_html(model, playbook))
    return path
