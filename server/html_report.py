"""A self-contained HTML report of a segmentation: inline SVG charts, no scripts, no CDNs.

`render_html(model, playbook)` returns one HTML page a marketer can open offline or mail:
segment names and sizes, a profile heatmap, a z-score chart per segment with its
playbook actions, the category mix, the k-selection curves, a 2-D map of the centroids
(PCA of the centroid matrix), what the run released (privacy) and the run's facts.
Every chart is SVG written here in Python; the page loads nothing from anywhere.
`screenshot(html, png)` renders it to a PNG with headless Chromium.
"""

from __future__ import annotations

import html
import math
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from fedseg.common.artifact import ModelArtifact, Segment, atomic_write_text
from fedseg.common.naming import SegmentName, name_model
from fedseg.common.playbook import Playbook
from fedseg.server.report import changes_text, median_rows, quantile_rows, readable, score_text

PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
           "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")
_NEG, _MID, _POS = (33, 102, 172), (247, 247, 247), (178, 24, 43)  # diverging blue-white-red
Z_LIMIT = 2.5  # colour scale saturates at |z| = Z_LIMIT


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def seg_colour(j: int) -> str:
    if j < len(PALETTE):
        return PALETTE[j]
    hue = (j * 137.508) % 360  # golden angle: distinct hues beyond the palette
    return f"hsl({hue:.0f},55%,55%)"


def z_colour(z: float) -> str:
    """Diverging colour for a z-score: blue below the population, red above."""
    t = max(-1.0, min(1.0, z / Z_LIMIT))
    end = _POS if t > 0 else _NEG
    rgb = [round(m + abs(t) * (e - m)) for m, e in zip(_MID, end)]
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def _fmt(x: float) -> str:
    """Numbers for people: thousands separators, about 3 significant digits."""
    return readable(x)


def _median_note(p) -> str:
    """' · median 71,049' where the segment median is known (quantile-phase features)."""
    return f" · median {_fmt(p.median)}" if p.median is not None else ""


def _svg(width: float, height: float, body: str, label: str) -> str:
    return (f'<svg viewBox="0 0 {width:.0f} {height:.0f}" '
            f'width="{width:.0f}" height="{height:.0f}" role="img" aria-label="{esc(label)}">{body}</svg>')


def _text(x: float, y: float, s: str, size: int = 12, anchor: str = "start", fill: str = "#333",
          weight: str = "normal", extra: str = "") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{fill}" '
            f'font-weight="{weight}" {extra}>{esc(s)}</text>')


def _short(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


# ---------------------------------------------------------------- charts


def sizes_chart(model: ModelArtifact, names: list[SegmentName]) -> str:
    """Horizontal bars: customers per segment."""
    row, label_w, bar_w = 30, 330, 560
    h = row * len(model.segments) + 20
    top = max(s.size for s in model.segments) or 1
    parts = []
    for i, (seg, nm) in enumerate(zip(model.segments, names)):
        y = 10 + i * row
        w = bar_w * seg.size / top
        parts.append(_text(label_w - 10, y + 19, _short(f"{seg.id} · {nm.name}", 48), anchor="end"))
        parts.append(f'<rect x="{label_w}" y="{y + 4}" width="{max(w, 1):.1f}" height="{row - 8}" rx="3" '
                     f'fill="{seg_colour(seg.id)}"><title>{esc(nm.name)}: {seg.size:,}</title></rect>')
        parts.append(_text(label_w + w + 8, y + 19, f"{seg.size:,} ({seg.share:.1%})", fill="#555"))
    return _svg(label_w + bar_w + 140, h, "".join(parts), "segment sizes")


def heatmap(model: ModelArtifact, names: list[SegmentName]) -> str:
    """Segments × numeric features, cells coloured by z-score against the population."""
    feats = list(model.run.feature_schema.numeric_names)
    described = [(s, n) for s, n in zip(model.segments, names) if s.profile is not None]
    if not feats or not described:
        return '<p class="muted">No numeric features or no described segments.</p>'
    cw, ch, label_w, head = 74, 34, 340, 110
    w = label_w + cw * len(feats) + 20
    h = head + ch * len(described) + 60
    parts = []
    for c, f in enumerate(feats):
        x = label_w + c * cw + cw / 2
        parts.append(_text(x, head - 8, _short(f, 18), size=12, anchor="start",
                           extra=f'transform="rotate(-40 {x:.1f} {head - 8})"'))
    for r, (seg, nm) in enumerate(described):
        y = head + r * ch
        parts.append(f'<rect x="{label_w - 16}" y="{y + 10}" width="10" height="14" fill="{seg_colour(seg.id)}"/>')
        parts.append(_text(label_w - 22, y + ch / 2 + 4, _short(f"{seg.id} · {nm.name}", 46), anchor="end"))
        for c, f in enumerate(feats):
            p = seg.profile.numeric[f]
            x = label_w + c * cw
            parts.append(
                f'<rect class="cell" x="{x}" y="{y}" width="{cw - 2}" height="{ch - 2}" fill="{z_colour(p.z)}">'
                f'<title>{esc(nm.name)} · {esc(f)}: mean {_fmt(p.mean)}{_median_note(p)} vs {_fmt(p.population_mean)} '
                f'(z {p.z:+.2f})</title></rect>')
            parts.append(_text(x + (cw - 2) / 2, y + ch / 2 + 3, f"{p.z:+.1f}", size=11, anchor="middle",
                               fill="#fff" if abs(p.z) > 0.6 * Z_LIMIT else "#222"))
    # legend
    ly = head + ch * len(described) + 22
    steps = 40
    for i in range(steps):
        z = -Z_LIMIT + 2 * Z_LIMIT * i / (steps - 1)
        parts.append(f'<rect x="{label_w + i * 6}" y="{ly}" width="6" height="12" fill="{z_colour(z)}"/>')
    parts.append(_text(label_w - 6, ly + 10, f"−{Z_LIMIT:g} σ", size=11, anchor="end", fill="#555"))
    parts.append(_text(label_w + steps * 6 + 6, ly + 10, f"+{Z_LIMIT:g} σ  (segment mean vs population, in "
                       "population standard deviations)", size=11, fill="#555"))
    return _svg(w, h, "".join(parts), "profile heatmap")


def z_bars(seg: Segment, width: int = 470) -> str:
    """One segment's z-score per numeric feature: bars left (below) or right (above) of 0."""
    assert seg.profile is not None
    items = list(seg.profile.numeric.items())
    row, label_w = 20, 120
    plot_w = width - label_w - 40
    zero = label_w + plot_w / 2
    scale = (plot_w / 2) / 3.0  # ±3 σ across the half width
    h = row * len(items) + 26
    parts = [f'<line x1="{zero:.1f}" y1="4" x2="{zero:.1f}" y2="{h - 20}" stroke="#999"/>']
    for i, (f, p) in enumerate(items):
        y = 6 + i * row
        z = max(-3.0, min(3.0, p.z))
        x0, w = (zero, z * scale) if z >= 0 else (zero + z * scale, -z * scale)
        parts.append(_text(label_w - 6, y + 13, _short(f, 16), size=11, anchor="end"))
        parts.append(f'<rect x="{x0:.1f}" y="{y + 2}" width="{max(w, 0.5):.1f}" height="{row - 5}" '
                     f'fill="{z_colour(p.z if abs(p.z) > 0.3 else p.z * 2)}" stroke="#888" stroke-width="0.3">'
                     f'<title>{esc(f)}: mean {_fmt(p.mean)}{_median_note(p)} vs {_fmt(p.population_mean)} '
                     f'(z {p.z:+.2f})</title></rect>')
        tx = zero + z * scale + (4 if z >= 0 else -4)
        parts.append(_text(tx, y + 13, f"{p.z:+.1f}", size=10, anchor="start" if z >= 0 else "end", fill="#555"))
    for v in (-2, 2):
        x = zero + v * scale
        parts.append(f'<line x1="{x:.1f}" y1="4" x2="{x:.1f}" y2="{h - 20}" stroke="#ddd" stroke-dasharray="3 3"/>')
        parts.append(_text(x, h - 6, f"{v:+d} σ", size=10, anchor="middle", fill="#888"))
    return _svg(width, h, "".join(parts), f"z-scores of segment {seg.id}")


def category_mix(model: ModelArtifact, names: list[SegmentName]) -> str:
    """Per categorical column: a 100 % stacked bar per segment."""
    cols = model.run.feature_schema.categorical
    described = [(s, n) for s, n in zip(model.segments, names) if s.profile is not None]
    if not cols or not described:
        return ""
    blocks = []
    for col in cols:
        row, label_w, bar_w = 22, 60, 420
        h = row * len(described) + 34
        parts = []
        for i, (seg, _) in enumerate(described):
            y = 4 + i * row
            parts.append(_text(label_w - 8, y + 14, f"seg {seg.id}", size=11, anchor="end"))
            x = float(label_w)
            shares = seg.profile.categories.get(col.name, {})
            for v_i, value in enumerate(col.values):
                w = bar_w * shares.get(value, 0.0)
                parts.append(f'<rect x="{x:.1f}" y="{y + 2}" width="{w:.1f}" height="{row - 5}" '
                             f'fill="{PALETTE[(v_i * 3 + 1) % len(PALETTE)]}"><title>{esc(col.name)}={esc(value)}: '
                             f'{shares.get(value, 0.0):.0%}</title></rect>')
                if w > 28:
                    parts.append(_text(x + w / 2, y + 14, f"{shares.get(value, 0.0):.0%}", size=10,
                                       anchor="middle", fill="#fff"))
                x += w
        legend, x, ly = [], float(label_w), h - 12
        for v_i, value in enumerate(col.values):
            label = _short(value, 16)
            step = 22 + 6.5 * len(label)
            if x + step > label_w + bar_w + 40 and x > label_w:  # wrap the legend
                x, ly = float(label_w), ly + 18
            legend.append(f'<rect x="{x:.1f}" y="{ly - 9}" width="10" height="10" '
                          f'fill="{PALETTE[(v_i * 3 + 1) % len(PALETTE)]}"/>')
            legend.append(_text(x + 13, ly, label, size=11))
            x += step
        parts += legend
        h = ly + 8
        blocks.append(f'<figure class="mix"><figcaption>{esc(col.name)}</figcaption>'
                      f'{_svg(label_w + bar_w + 50, h, "".join(parts), f"category mix of {col.name}")}</figure>')
    return '<div class="grid mixes">' + "".join(blocks) + "</div>"


_CRITERIA = (
    ("inertia", "Inertia (elbow)", "lower is tighter; look for the bend"),
    ("calinski_harabasz", "Calinski–Harabasz", "higher is better"),
    ("davies_bouldin", "Davies–Bouldin", "lower is better"),
    ("silhouette", "Silhouette (simplified)", "higher is better"),
)


def line_chart(ks: list[int], ys: list[float], title: str, note: str, chosen: int) -> str:
    w, h, l, r, t, b = 280, 210, 50, 10, 36, 34
    pw, ph = w - l - r, h - t - b
    lo, hi = min(ys), max(ys)
    if hi - lo < 1e-12:
        lo, hi = lo - 1, hi + 1
    pad = (hi - lo) * 0.08
    lo, hi = lo - pad, hi + pad
    kx = (lambda k: l + pw / 2) if len(ks) == 1 else (lambda k: l + pw * (k - ks[0]) / (ks[-1] - ks[0]))

    def vy(v: float) -> float:
        return t + ph * (1 - (v - lo) / (hi - lo))

    parts = [_text(l, 16, title, size=13, weight="bold"), _text(l, 30, note, size=10, fill="#777")]
    for i in range(4):
        v = lo + (hi - lo) * i / 3
        parts.append(f'<line x1="{l}" y1="{vy(v):.1f}" x2="{w - r}" y2="{vy(v):.1f}" stroke="#eee"/>')
        parts.append(_text(l - 6, vy(v) + 4, _fmt(v), size=10, anchor="end", fill="#777"))
    if chosen in ks:
        x = kx(chosen)
        parts.append(f'<line class="chosen-k" x1="{x:.1f}" y1="{t}" x2="{x:.1f}" y2="{t + ph}" '
                     f'stroke="#e15759" stroke-dasharray="4 3"/>')
    pts = " ".join(f"{kx(k):.1f},{vy(v):.1f}" for k, v in zip(ks, ys))
    parts.append(f'<polyline points="{pts}" fill="none" stroke="#4e79a7" stroke-width="2"/>')
    for k, v in zip(ks, ys):
        mark = k == chosen
        parts.append(f'<circle cx="{kx(k):.1f}" cy="{vy(v):.1f}" r="{6 if mark else 3.5}" '
                     f'fill="{"#e15759" if mark else "#4e79a7"}"><title>k={k}: {v:.4g}</title></circle>')
        parts.append(_text(kx(k), h - b + 16, str(k), size=11, anchor="middle",
                           weight="bold" if mark else "normal", fill="#e15759" if mark else "#555"))
    parts.append(_text(l + pw / 2, h - 2, "k (number of segments)", size=10, anchor="middle", fill="#777"))
    return _svg(w, h, "".join(parts), title)


def selection_charts(model: ModelArtifact) -> str:
    rows = sorted(model.selection, key=lambda r: r["k"])
    ks = [int(r["k"]) for r in rows]
    charts = [line_chart(ks, [float(r[key]) for r in rows], title, note, model.k)
              for key, title, note in _CRITERIA if all(key in r for r in rows)]
    return '<div class="grid charts">' + "".join(f"<figure>{c}</figure>" for c in charts) + "</div>"


def centroid_projection(centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """2-D PCA of the centroid matrix (SVD of the centred rows): coordinates (k, 2),
    explained variance ratios (2,), loadings (2, d)."""
    c = centroids - centroids.mean(axis=0)
    u, s, vt = np.linalg.svd(c, full_matrices=False)
    coords = np.zeros((len(c), 2))
    load = np.zeros((2, c.shape[1]))
    m = min(2, len(s))
    coords[:, :m] = u[:, :m] * s[:m]
    load[:m] = vt[:m]
    total = float(np.square(s).sum())
    ratio = np.zeros(2)
    if total > 0:
        ratio[:m] = np.square(s[:m]) / total
    return coords, ratio, load


def centroid_map(model: ModelArtifact, names: list[SegmentName]) -> str:
    coords, ratio, load = centroid_projection(model.centroid_array())
    w, h, pad = 1000, 500, 80
    span = np.ptp(coords, axis=0)
    span[span < 1e-9] = 1.0
    lo = coords.min(axis=0)
    scale = min((w - 2 * pad) / span[0], (h - 2 * pad) / span[1])
    mid = lo + span / 2

    def xy(p: np.ndarray) -> tuple[float, float]:
        return w / 2 + (p[0] - mid[0]) * scale, h / 2 - (p[1] - mid[1]) * scale

    parts = [f'<rect x="0" y="0" width="{w}" height="{h}" fill="#fbfbfd" stroke="#eee"/>']
    cx, cy = xy(mid)
    parts.append(f'<line x1="{pad / 2}" y1="{cy:.1f}" x2="{w - pad / 2}" y2="{cy:.1f}" stroke="#e5e5e5"/>')
    parts.append(f'<line x1="{cx:.1f}" y1="{pad / 2}" x2="{cx:.1f}" y2="{h - pad / 2}" stroke="#e5e5e5"/>')
    # feature directions (top loadings) as faint arrows from the centre
    strength = np.hypot(load[0], load[1])
    arrow = 0.42 * min(w, h) / max(float(strength.max()), 1e-9)
    for i in np.argsort(-strength)[:5]:
        if strength[i] < 1e-9:
            continue
        ex, ey = cx + load[0, i] * arrow, cy - load[1, i] * arrow
        parts.append(f'<line x1="{cx:.1f}" y1="{cy:.1f}" x2="{ex:.1f}" y2="{ey:.1f}" stroke="#d4d4dc" '
                     f'stroke-width="1.2" stroke-dasharray="5 3"/>')
        lx, ly = cx + load[0, i] * arrow * 1.08, cy - load[1, i] * arrow * 1.08
        parts.append(_text(lx, ly + 4, model.features[i], size=11, anchor="start" if lx >= cx else "end",
                           fill="#8a8a99", extra='font-style="italic"'))
    rmax = 46.0
    smax = max(s.share for s in model.segments) or 1.0
    order = sorted(range(len(model.segments)), key=lambda j: -model.segments[j].share)  # big first
    for j in order:
        seg, nm = model.segments[j], names[j]
        x, y = xy(coords[j])
        r = max(6.0, rmax * math.sqrt(seg.share / smax))
        parts.append(f'<circle class="centroid" cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" fill="{seg_colour(seg.id)}" '
                     f'fill-opacity="0.75" stroke="#fff" stroke-width="2"><title>{esc(nm.name)}: '
                     f'{seg.share:.1%}</title></circle>')
        parts.append(_text(x, y + 4, str(seg.id), size=13, anchor="middle", fill="#fff", weight="bold"))
        parts.append(_text(x, y + r + 14, _short(nm.name, 34), size=11, anchor="middle", fill="#333"))
    parts.append(_text(w - 8, h - 8, f"PC1 {ratio[0]:.0%} of centroid variance", size=10, anchor="end",
                       fill="#888"))
    parts.append(_text(8, 14, f"PC2 {ratio[1]:.0%}", size=10, fill="#888"))
    return _svg(w, h, "".join(parts), "centroid map")


def timings_chart(timings: dict[str, float]) -> str:
    items = [(k, v) for k, v in timings.items() if k != "total"]
    if not items:
        return ""
    row, label_w, bar_w = 24, 130, 360
    top = max(v for _, v in items) or 1.0
    parts = []
    for i, (k, v) in enumerate(items):
        y = 4 + i * row
        w = bar_w * v / top
        parts.append(_text(label_w - 8, y + 15, k, anchor="end"))
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{max(w, 1):.1f}" height="{row - 8}" fill="#76b7b2"/>')
        parts.append(_text(label_w + w + 6, y + 15, f"{v:.2f} s", fill="#555"))
    return _svg(label_w + bar_w + 80, row * len(items) + 8, "".join(parts), "timings")


# ---------------------------------------------------------------- sections


def _standouts(seg: Segment, top: int = 3) -> str:
    if seg.profile is None:
        return '<span class="muted">withheld (below the minimum segment size)</span>'
    ranked = sorted(seg.profile.numeric.items(), key=lambda kv: -abs(kv[1].z))[:top]
    items = [f'<span class="chip{" dark" if abs(p.z) > 0.6 * Z_LIMIT else ""}" style="background:{z_colour(p.z)}">'
             f'{esc(f)} {_fmt(p.mean)} <small>{f"median {_fmt(p.median)} · " if p.median is not None else ""}'
             f'vs {_fmt(p.population_mean)}</small></span>' for f, p in ranked]
    if seg.profile.scores:
        items.insert(0, f'<span class="chip cat">{esc(score_text(seg.profile.scores))}</span>')
    for col, shares in seg.profile.categories.items():
        value, share = max(shares.items(), key=lambda kv: kv[1])
        if share >= 0.5:
            items.append(f'<span class="chip cat">{esc(col)}: {esc(value)} {share:.0%}</span>')
    return " ".join(items)


def segment_table(model: ModelArtifact, names: list[SegmentName]) -> str:
    rows = []
    for seg, nm in zip(model.segments, names):
        rows.append(
            f'<tr class="segment-row" data-segment="{seg.id}" data-size="{seg.size}">'
            f'<td class="id"><span class="swatch" style="background:{seg_colour(seg.id)}"></span>{seg.id}</td>'
            f'<td class="name"><strong>{esc(nm.name)}</strong></td>'
            f'<td class="size num">{seg.size:,}</td>'
            f'<td class="share num"><div class="sharebar"><span style="width:{seg.share * 100:.1f}%;'
            f'background:{seg_colour(seg.id)}"></span></div>{seg.share:.1%}</td>'
            f'<td>{_standouts(seg)}</td></tr>')
    return ('<table id="segments" class="data"><thead><tr><th>#</th><th>segment</th><th class="num">customers</th>'
            '<th class="num">share</th><th>stands out by (segment mean vs population)</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def _action_html(action) -> str:
    if action is None:
        return '<p class="muted">No playbook entry for this segment.</p>'
    return ('<dl class="action">'
            f'<dt>goal</dt><dd>{esc(action.goal)}</dd>'
            f'<dt>channels</dt><dd>{", ".join(esc(c) for c in action.channels)}</dd>'
            f'<dt>content</dt><dd>{esc(action.content)}</dd>'
            f'<dt>offer</dt><dd>{esc(action.offer)}</dd>'
            f'<dt>service</dt><dd>{esc(action.service_level)}</dd></dl>')


def median_table(seg: Segment) -> str:
    """Typical values of one segment: median and middle half next to the mean, in
    original units, for the features with federated quartiles (empty without)."""
    rows = "".join(
        f'<tr class="median-row" data-feature="{esc(name)}"><td>{esc(name)}</td><td class="num median">{_fmt(med)}</td>'
        f'<td class="num">{_fmt(q25)} – {_fmt(q75)}</td><td class="num mean">{_fmt(mean)}</td></tr>'
        for name, med, q25, q75, mean in median_rows(seg))
    if not rows:
        return ""
    return ('<table class="data medians"><thead><tr><th>typical values</th><th class="num">median</th>'
            '<th class="num">middle half (25th–75th pct.)</th><th class="num">mean</th></tr></thead>'
            f'<tbody>{rows}</tbody></table>')


def segment_cards(model: ModelArtifact, names: list[SegmentName], playbook: Playbook | None) -> str:
    cards = []
    for seg, nm in zip(model.segments, names):
        head = (f'<h3><span class="swatch" style="background:{seg_colour(seg.id)}"></span>{seg.id} · {esc(nm.name)}</h3>'
                f'<p class="muted">{seg.size:,} customers · {seg.share:.1%}'
                + (f' · playbook key <code>{esc(nm.key)}</code>' if nm.key else "") + "</p>")
        body = z_bars(seg) + median_table(seg) if seg.profile is not None else \
            '<p class="muted">Below the minimum release size: not described.</p>'
        action = ""
        if playbook is not None:
            action = "<h4>Playbook</h4>" + _action_html(playbook.action_for(nm))
        cards.append(f'<article class="card segment-card" data-segment="{seg.id}">{head}{body}{action}</article>')
    return '<div class="grid cards">' + "".join(cards) + "</div>"


def playbook_table(model: ModelArtifact, names: list[SegmentName], playbook: Playbook) -> str:
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
        + "".join(f'<td class="num">{"&lt;" + str(model.run.config.get("min-segment-size", "")) if c is None else f"{c:,}"}</td>' for c in row)
        + "</tr>" for i, row in enumerate(d["transitions"]))
    return (f'<p id="changed">{esc(changes_text(d))}.</p>'
            f'<table id="transitions" class="data"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>')


def privacy_section(model: ModelArtifact) -> str:
    p = dict(model.privacy)
    mode = p.pop("mode", "unknown")
    eps, delta = p.pop("epsilon", None), p.pop("delta", None)
    released = p.pop("released_per_node", None)
    cards = [f'<div class="stat"><b>{esc(mode)}</b><span>privacy mode</span></div>']
    if eps is not None:
        cards.append(f'<div class="stat"><b>ε = {esc(_fmt(float(eps)))}</b><span>total privacy budget</span></div>')
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
                   + "".join(f"<li>{esc(f)}</li>" for f in run.clients_failed) + "</ul>")
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
    sections += [
        ("selection", "Choosing k", f"Criteria per number of segments, from aggregated statistics; "
         f"the chosen k = {model.k} is marked in red.", selection_charts(model)),
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


# ---------------------------------------------------------------- screenshots

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


class ChromiumError(RuntimeError):
    """Headless Chromium is missing or failed."""


def find_chromium() -> str:
    """Path of a Chromium/Chrome binary: $FEDSEG_CHROMIUM, else the first on PATH."""
    env = os.environ.get("FEDSEG_CHROMIUM")
    if env:
        return env
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise ChromiumError("no Chromium found (looked for " + ", ".join(CHROMIUM_NAMES)
                        + "); install it, e.g. `apt-get install -y chromium`, or set FEDSEG_CHROMIUM")


def chromium_args(profile_dir: str, width: int, height: int) -> list[str]:
    return [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
        "--disable-dev-shm-usage", f"--user-data-dir={profile_dir}", f"--window-size={width},{height}",
    ]


def run_chromium(url_or_path: str | Path, extra: list[str], width: int = 1280, height: int = 2000,
                 timeout: float = 120.0) -> subprocess.CompletedProcess:
    """Run headless Chromium on a local file with a throw-away profile; returns the process."""
    binary = find_chromium()
    target = Path(url_or_path).resolve().as_uri() if not str(url_or_path).startswith("file:") else str(url_or_path)
    with tempfile.TemporaryDirectory(prefix="fedseg-chromium-") as profile:
        cmd = [binary, *chromium_args(profile, width, height), *extra, target]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise ChromiumError(f"chromium did not finish within {timeout:.0f}s") from exc
    return proc


def page_height(html_path: str | Path, width: int = 1280) -> int:
    """Full height of the rendered page in CSS pixels (a probe copy reports it in its title)."""
    src = Path(html_path).read_text(encoding="utf-8")
    probe = src.replace("</body>", "<script>document.title='H='+Math.ceil(document.documentElement"
                                   ".scrollHeight)</script></body>", 1)
    with tempfile.TemporaryDirectory(prefix="fedseg-probe-") as tmp:
        p = Path(tmp) / "probe.html"
        p.write_text(probe, encoding="utf-8")
        proc = run_chromium(p, ["--dump-dom"], width=width, height=1000)
    found = re.search(r"<title>H=(\d+)</title>", proc.stdout)
    if not found:
        raise ChromiumError(f"could not measure the page height: {proc.stderr.strip()[-300:]}")
    return int(found.group(1))


def screenshot(html_path: str | Path, png_path: str | Path, width: int = 1280, height: int | None = None) -> Path:
    """PNG of the report rendered by headless Chromium; height defaults to the whole page."""
    png_path = Path(png_path).resolve()
    png_path.parent.mkdir(parents=True, exist_ok=True)
    height = height or min(page_height(html_path, width) + 10, 16000)
    png_path.unlink(missing_ok=True)
    proc = run_chromium(html_path, [f"--screenshot={png_path}"], width=width, height=height)
    if not png_path.is_file():
        raise ChromiumError(f"chromium wrote no screenshot (exit {proc.returncode}): {proc.stderr.strip()[-300:]}")
    return png_path
