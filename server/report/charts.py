"""SVG charts of a segmentation, written in Python: no scripts, nothing loaded from anywhere.

Each chart returns one `<svg>` element (a string) that the page (`page.py`) inlines:
segment sizes, a profile heatmap, z-score bars per segment, the category mix, the
k-selection curves, a 2-D map of the centroids (PCA of the centroid matrix) and the time
per phase. Colours: a fixed palette per segment, a diverging blue-white-red scale for z.
"""

from __future__ import annotations

import html
import math

import numpy as np

from fedseg.common.artifact import ModelArtifact, Segment
from fedseg.common.naming import SegmentName
from fedseg.server.report.map_labels import place_labels
from fedseg.server.report.markdown import feature_labels, readable

PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
           "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")
_NEG, _MID, _POS = (33, 102, 172), (247, 247, 247), (178, 24, 43)  # diverging blue-white-red
Z_LIMIT = 2.5  # colour scale saturates at |z| = Z_LIMIT


def esc(value: object) -> str:
    """Escape text for HTML content and attributes: names come from user data."""
    return html.escape(str(value), quote=True)


def seg_colour(j: int) -> str:
    """Colour of segment `j`, the same in every chart so a reader can follow one segment."""
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


def _median_note(p) -> str:
    """' · median 71,049' where the segment median is known (quantile-phase features)."""
    return f" · median {readable(p.median)}" if p.median is not None else ""


def _svg(width: float, height: float, body: str, label: str) -> str:
    """Wrap chart elements in an `<svg>` with a viewBox (scales with the page) and an aria label."""
    return (f'<svg viewBox="0 0 {width:.0f} {height:.0f}" '
            f'width="{width:.0f}" height="{height:.0f}" role="img" aria-label="{esc(label)}">{body}</svg>')


def _text(x: float, y: float, s: str, size: int = 12, anchor: str = "start", fill: str = "#333",
          weight: str = "normal", extra: str = "") -> str:
    """One escaped SVG `<text>` element."""
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{fill}" '
            f'font-weight="{weight}" {extra}>{esc(s)}</text>')


def _short(s: str, n: int) -> str:
    """Cut `s` to `n` characters with an ellipsis, so long names do not overlap the plot."""
    return s if len(s) <= n else s[: n - 1] + "…"


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
    labels = feature_labels(model)
    described = [(s, n) for s, n in zip(model.segments, names) if s.profile is not None]
    if not feats or not described:
        return '<p class="muted">No numeric features or no described segments.</p>'
    cw, ch, label_w, head = 74, 34, 340, 110
    w = label_w + cw * len(feats) + 20
    h = head + ch * len(described) + 60
    parts = []
    for c, f in enumerate(feats):
        x = label_w + c * cw + cw / 2
        parts.append(_text(x, head - 8, _short(labels.get(f, f), 22), size=12, anchor="start",
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
                f'<title>{esc(nm.name)} · {esc(f)}: mean {readable(p.mean)}{_median_note(p)} vs {readable(p.population_mean)} '
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


def z_bars(seg: Segment, width: int = 470, labels: dict[str, str] | None = None) -> str:
    """One segment's z-score per numeric feature: bars left (below) or right (above) of 0."""
    assert seg.profile is not None
    items = list(seg.profile.numeric.items())
    row, label_w = 20, 150
    labels = labels or {}
    plot_w = width - label_w - 40
    zero = label_w + plot_w / 2
    scale = (plot_w / 2) / 3.0  # ±3 σ across the half width
    h = row * len(items) + 26
    parts = [f'<line x1="{zero:.1f}" y1="4" x2="{zero:.1f}" y2="{h - 20}" stroke="#999"/>']
    for i, (f, p) in enumerate(items):
        y = 6 + i * row
        z = max(-3.0, min(3.0, p.z))
        x0, w = (zero, z * scale) if z >= 0 else (zero + z * scale, -z * scale)
        parts.append(_text(label_w - 6, y + 13, _short(labels.get(f, f), 22), size=11, anchor="end"))
        parts.append(f'<rect x="{x0:.1f}" y="{y + 2}" width="{max(w, 0.5):.1f}" height="{row - 5}" '
                     f'fill="{z_colour(p.z if abs(p.z) > 0.3 else p.z * 2)}" stroke="#888" stroke-width="0.3">'
                     f'<title>{esc(f)}: mean {readable(p.mean)}{_median_note(p)} vs {readable(p.population_mean)} '
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
    """One selection criterion over k, with the chosen k marked in red on the curve and the axis."""
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
        parts.append(_text(l - 6, vy(v) + 4, readable(v), size=10, anchor="end", fill="#777"))
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
    """A line chart per criterion the run recorded for every k, side by side."""
    rows = sorted(model.selection, key=lambda r: r["k"])
    ks = [int(r["k"]) for r in rows]
    charts = [line_chart(ks, [float(r[key]) for r in rows], title, note, model.k)
              for key, title, note in _CRITERIA if all(key in r for r in rows)]
    return '<div class="grid charts">' + "".join(f"<figure>{c}</figure>" for c in charts) + "</div>"


def centroid_projection(centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Project the centroids on their two main axes (PCA by SVD of the centred rows).

    Returns coordinates (ndarray of shape (n_clusters, 2)), explained variance ratios
    (ndarray of shape (2,)) and loadings (ndarray of shape (2, n_features)); axes a
    centroid matrix of rank < 2 lacks stay zero.
    """
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
    """The centroids on their two main axes: circle area by share, top feature loadings as arrows."""
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
        parts.append(_text(lx, ly + 4, feature_labels(model).get(model.features[i], model.features[i]), size=11, anchor="start" if lx >= cx else "end",
                           fill="#8a8a99", extra='font-style="italic"'))
    rmax = 46.0
    smax = max(s.share for s in model.segments) or 1.0
    order = sorted(range(len(model.segments)), key=lambda j: -model.segments[j].share)  # big first
    circles = [(*xy(coords[j]), max(6.0, rmax * math.sqrt(s.share / smax))) for j, s in enumerate(model.segments)]
    texts = [_short(nm.name, 34) for nm in names]
    spots = place_labels(circles, texts, order, w, h)
    for j in order:
        seg, nm = model.segments[j], names[j]
        x, y, r = circles[j]
        parts.append(f'<circle class="centroid" cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" fill="{seg_colour(seg.id)}" '
                     f'fill-opacity="0.75" stroke="#fff" stroke-width="2"><title>{esc(nm.name)}: '
                     f'{seg.share:.1%}</title></circle>')
        parts.append(_text(x, y + 4, str(seg.id), size=13, anchor="middle", fill="#fff", weight="bold"))
    for j in order:
        lx, ly, anchor = spots[j]
        parts.append(_text(lx, ly, texts[j], size=11, anchor=anchor, fill="#333", extra='class="map-label"'))
    parts.append(_text(w - 8, h - 8, f"PC1 {ratio[0]:.0%} of centroid variance", size=10, anchor="end",
                       fill="#888"))
    parts.append(_text(8, 14, f"PC2 {ratio[1]:.0%}", size=10, fill="#888"))
    return _svg(w, h, "".join(parts), "centroid map")


def timings_chart(timings: dict[str, float]) -> str:
    """Horizontal bars: server wall time per phase (the total left out)."""
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
