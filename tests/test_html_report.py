"""The HTML report: structure parsed back, charts checked against references, real Chromium render."""

from __future__ import annotations

import re
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from sklearn.decomposition import PCA
from typer.testing import CliRunner

from fedseg.common.artifact import save_artifact
from fedseg.common.naming import name_model
from fedseg.common.playbook import load_playbook, parse_playbook
from fedseg.cli.main import cli
from fedseg.server.report.charts import centroid_projection, z_colour
from fedseg.server.report.page import render_html, write_html_report
from fedseg.server.report.screenshot import ChromiumError, find_chromium
from fedseg.common.synthetic import generate_customers
from tests.test_drift import synthetic_model
from tests.test_segment_quantiles import money_data, run as money_run


class Page(HTMLParser):
    """Every start tag with its attributes, and the text inside each segment row's cells."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.rows: dict[int, list[str]] = {}
        self._row: int | None = None
        self._cell: list[str] | None = None
        self.style = ""
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "tr" and "segment-row" in a.get("class", ""):
            self._row = int(a["data-segment"])
            self.rows[self._row] = []
        elif tag == "td" and self._row is not None:
            self._cell = []
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.rows[self._row].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr":
            self._row = None
        self._in_style = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._in_style:
            self.style += data

    def find(self, tag: str, cls: str | None = None) -> list[dict]:
        return [a for t, a in self.tags if t == tag and (cls is None or cls in a.get("class", "").split())]


@pytest.fixture(scope="module")
def model():
    return synthetic_model(generate_customers(5000, 3, seed=4), k=6, seed=2, choose_from=2)


@pytest.fixture(scope="module")
def page(model):
    p = Page()
    p.feed(render_html(model, load_playbook()))
    return p


def test_one_row_per_segment_with_its_size_and_name(model, page):
    assert sorted(page.rows) == [s.id for s in model.segments]
    names = {n.id: n.name for n in name_model(model)}
    for seg in model.segments:
        cells = page.rows[seg.id]
        assert int(cells[2].replace(",", "")) == seg.size
        assert cells[3] == f"{seg.share:.1%}"
        assert cells[1] == names[seg.id]
    assert sum(int(c[2].replace(",", "")) for c in page.rows.values()) == int(model.metrics["customers"])


def test_charts_are_inline_svg_and_nothing_is_loaded_from_outside(model, page):
    svgs = page.find("svg")
    assert len(svgs) >= 4 + 1 + 1 + 1 + model.k  # 4 criteria, sizes, heatmap, map, a chart per segment
    assert not page.find("script") and not page.find("link") and not page.find("iframe") and not page.find("img")
    for _, attrs in page.tags:
        for key in ("src", "href", "xlink:href", "action", "data"):
            if key not in attrs:
                continue
            value = attrs[key] or ""
            assert not re.match(r"\s*(https?:)?//", value, re.I), (key, value)
            if key == "href":
                assert value.startswith("#"), value  # only links within the page
    assert "url(" not in page.style and "@import" not in page.style
    html = render_html(model)
    assert "http://" not in html and "https://" not in html


def test_heatmap_cells_use_the_diverging_scale(model, page):
    cells = page.find("rect", "cell")
    described = [s for s in model.segments if s.profile is not None]
    feats = model.run.feature_schema.numeric_names
    assert len(cells) == len(described) * len(feats)
    expected = [z_colour(s.profile.numeric[f].z) for s in described for f in feats]
    assert [c["fill"] for c in cells] == expected
    assert z_colour(0.0) == "#f7f7f7"
    assert z_colour(5.0) == "#b2182b" and z_colour(-5.0) == "#2166ac"
    assert z_colour(1.25) == "#{:02x}{:02x}{:02x}".format(*(round((a + b) / 2) for a, b in
                                                             zip((247, 247, 247), (178, 24, 43))))


def test_chosen_k_is_marked_on_every_criterion(model, page):
    assert len(page.find("line", "chosen-k")) == 4
    assert [int(r["k"]) for r in model.selection] == [2, 3, 4, 5, 6]
    marked = {c["cx"] for c in page.find("circle") if c.get("r") == "6"}
    assert len(marked) == 1  # the same k position on the four charts


def test_centroid_map_is_the_pca_of_the_centroids(model, page):
    c = model.centroid_array()
    coords, ratio, _ = centroid_projection(c)
    ref = PCA(n_components=2).fit(c)
    expected = ref.transform(c)
    for j in range(2):  # equal up to the sign of each axis
        sign = np.sign(coords[:, j] @ expected[:, j])
        np.testing.assert_allclose(coords[:, j] * sign, expected[:, j], atol=1e-9)
    np.testing.assert_allclose(ratio, ref.explained_variance_ratio_, atol=1e-12)
    circles = page.find("circle", "centroid")
    assert len(circles) == model.k
    radii = sorted(float(a["r"]) for a in circles)
    shares = sorted(s.share for s in model.segments)
    np.testing.assert_allclose(np.square(radii) / radii[-1] ** 2, np.asarray(shares) / shares[-1], rtol=1e-2)


def test_playbook_privacy_and_run_sections(model, page):
    ids = {a.get("id") for _, a in page.tags}
    assert {"overview", "sizes", "profiles", "cards", "selection", "map", "playbook", "privacy", "run"} <= ids
    assert len(page.find("tr", "playbook-row")) == model.k
    html = render_html(model, load_playbook())
    for line in model.privacy["released_per_node"]:
        assert line in html
    assert "plaintext" in html and f"{model.run.rounds}" in html
    assert "playbook" not in {a.get("id") for _, a in _parse(render_html(model)).tags}


def test_text_is_escaped(model):
    evil = parse_playbook("".join(
        f'[segments."{k}"]\ngoal = "<script>alert(1)</script>"\nchannels = ["<b>sms</b>"]\ncontent = "c"\n'
        f'offer = "o"\nservice_level = "s"\n' for k in ("Champions", "Loyal", "New", "Promising", "Hibernating",
                                                      "At risk", "Need attention", "About to sleep", "Big spenders")))
    html = render_html(model, evil)
    assert "<script>" not in html and "&lt;script&gt;" in html and "<b>sms" not in html


def test_write_is_atomic_and_cli_writes_the_report(model, tmp_path):
    path = write_html_report(model, tmp_path)
    assert path == tmp_path / "report.html" and path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temp file left behind
    mpath = save_artifact(model, tmp_path / "m" / "model.json")
    res = CliRunner().invoke(cli, ["report", str(mpath)])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "m" / "report.html").is_file()
    bad = tmp_path / "bad.toml"
    bad.write_text('[segments.Whales]\ngoal="g"\nchannels=["x"]\ncontent="c"\noffer="o"\nservice_level="s"\n')
    res = CliRunner().invoke(cli, ["report", str(mpath), "--playbook", str(bad), "--out", str(tmp_path / "x.html")])
    assert res.exit_code == 2 and "'Whales'" in res.output and not (tmp_path / "x.html").exists()


def _card(html: str, segment: int) -> str:
    match = re.search(rf'<article class="card segment-card" data-segment="{segment}">(.*?)</article>', html, re.S)
    assert match, segment
    return match.group(1)


def test_segment_cards_show_the_median_next_to_the_mean():
    # Prepare: a run whose money features take part in the quantile phase; segment 1 withheld
    data = money_data(3000, seed=2)
    _, money = money_run(data, np.array_split(np.arange(3000), 2))
    withheld = money.model_copy(update={"segments": [
        s.model_copy(update={"profile": None}) if s.id == 1 else s for s in money.segments]})
    # Execute
    html = render_html(withheld)
    # Assert: per described segment, one row per money feature with median, middle half and mean
    for seg in money.segments:
        card = _card(html, seg.id)
        if seg.id == 1:
            assert "median" not in card and "not described" in card
            continue
        for name in ("income", "monetary"):
            p = seg.profile.numeric[name]
            row = re.search(rf'<tr class="median-row" data-feature="{name}">(.*?)</tr>', card).group(1)
            cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
            label = {"monetary": "total spend"}.get(name, name)  # readable labels (schema.default_label)
            assert cells == [label, _fmt_ref(p.median), f"{_fmt_ref(p.q25)} – {_fmt_ref(p.q75)}", _fmt_ref(p.mean)]
            assert p.q25 <= p.median <= p.q75
        assert 'data-feature="age"' not in card  # no quartiles for a feature outside the quantile phase
    chips = _parse(html).rows[0][4]  # the overview: all three features stand out, medians next to means
    for name in ("income", "monetary"):
        p = money.segments[0].profile.numeric[name]
        label = {"monetary": "total spend"}.get(name, name)
        assert f"{label} {_fmt_ref(p.mean)} median {_fmt_ref(p.median)} · vs {_fmt_ref(p.population_mean)}" in chips


def _fmt_ref(x: float) -> str:
    """The report's number format, written out: thousands separators above 1000."""
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.0f}" if abs(x) >= 100 else f"{x:.1f}" if abs(x) >= 10 else f"{x:.2f}"


def _parse(html: str) -> Page:
    p = Page()
    p.feed(html)
    return p


# ---------------------------------------------------------------- real browser

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]


def chromium() -> str:
    try:
        return find_chromium()
    except ChromiumError as exc:
        pytest.fail(f"headless Chromium is required for the report tests: {exc}")


def console_lines(page: Path, tmp_path: Path) -> list[str]:
    """Console messages Chromium logs while rendering `page`."""
    profile = tmp_path / f"profile-{page.stem}"
    proc = subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={tmp_path / (page.stem + '.png')}",
         "--window-size=1280,2000", "--enable-logging=stderr", "--v=0", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    return [line for line in proc.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def png_info(path: Path) -> tuple[int, int, int]:
    """Width, height and the number of distinct decoded bytes of a PNG (read by hand)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return width, height, len(set(zlib.decompress(idat)))


@pytest.mark.integration
def test_chromium_renders_the_report_without_console_errors(model, tmp_path):
    report = write_html_report(model, tmp_path, load_playbook())
    broken = tmp_path / "broken.html"
    broken.write_text("<!DOCTYPE html><p>x</p><script>console.error('probe'); notDefined();</script>")
    assert any("Uncaught" in line for line in console_lines(broken, tmp_path))  # the detector works
    assert console_lines(report, tmp_path) == []
    width, height, distinct = png_info(tmp_path / "report.png")
    assert (width, height) == (1280, 2000) and distinct > 50  # a real picture, not a blank page


@pytest.mark.integration
def test_full_page_screenshot_from_the_cli(model, tmp_path):
    chromium()
    res = CliRunner().invoke(cli, ["report", str(save_artifact(model, tmp_path / "model.json")),
                                   "--png", str(tmp_path / "full.png")])
    assert res.exit_code == 0, res.output
    width, height, distinct = png_info(tmp_path / "full.png")
    assert width == 1280 and height > 3000 and distinct > 50  # the whole page, not one screen


def test_map_labels_never_overlap():
    """Eight segments whose centroids nearly coincide: every name on the map keeps its own
    box (measured here with a wider glyph than Helvetica's average) and covers no circle."""
    from fedseg.common.artifact import Segment
    from fedseg.common.naming import SegmentName
    from fedseg.server.report.charts import centroid_map

    base = synthetic_model(generate_customers(3000, 3, seed=2), k=3)
    rng = np.random.default_rng(0)
    d = len(base.features)
    cents = np.vstack([np.zeros((4, d)), np.ones((4, d))]) + rng.normal(0, 1e-3, (8, d))
    segs = [Segment(id=j, size=100, share=1 / 8, name=f"Need attention (affluent seniors) #{j}", profile=None)
            for j in range(8)]
    model = base.model_copy(update={"k": 8, "centroids": cents.tolist(), "segments": segs})
    names = [SegmentName(id=j, key=None, name=s.name) for j, s in enumerate(segs)]
    svg = centroid_map(model, names)
    glyph, height = 6.2, 12.0
    boxes = []
    for x, y, anchor, text in re.findall(r'<text x="([\d.]+)" y="([\d.]+)" font-size="11" text-anchor="(\w+)"'
                                         r'[^>]*class="map-label">([^<]*)</text>', svg):
        w = glyph * len(html_unescape(text))
        left = float(x) - {"start": 0, "middle": w / 2, "end": w}[anchor]
        boxes.append((left, float(y) - height + 3, left + w, float(y) + 3))
    assert len(boxes) == 8
    for i, a in enumerate(boxes):
        assert 0 <= a[0] and a[2] <= 1000 and 0 <= a[1] and a[3] <= 500
        for b in boxes[i + 1:]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)


def html_unescape(text: str) -> str:
    import html

    return html.unescape(text)
