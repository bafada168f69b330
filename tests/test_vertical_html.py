"""The HTML report of a vertical run, tested as tests/test_html_report.py tests the
horizontal one: structure parsed back, every feature labelled with its party, cell
colours against z-scores computed with numpy on the pooled table, the coverage counts
as built by hand, nothing loaded from outside; Chromium renders it without errors."""

from __future__ import annotations

import re

import numpy as np
import pytest

from fedseg.server.report.charts import z_colour
from fedseg.server.report.vertical_page import render_vertical_html
from fedseg.server.vertical_run import build_model
from tests.test_html_report import Page, console_lines, html_unescape, png_info
from tests.test_vertical_gaps import SCHEMA, SHARED, TWO, _frames, _imputed_pooled
from tests.vertical_helpers import run_vertical


@pytest.fixture(scope="module")
def model():
    result, run, _ = run_vertical(_frames(TWO), SCHEMA, TWO, k=4, min_segment_size=3)
    return build_model(run, result, "test")


@pytest.fixture(scope="module")
def html(model):
    return render_vertical_html(model)


@pytest.fixture(scope="module")
def page(html):
    p = Page()
    p.feed(html)
    return p


def test_one_row_per_segment_with_its_size_and_share(model, page):
    assert sorted(page.rows) == sorted(s.segment for s in model.segments)
    sizes = {s.segment: s.size for s in model.segments}
    for seg, cells in page.rows.items():
        assert int(cells[1].replace(",", "")) == sizes[seg]
        assert cells[2] == f"{sizes[seg] / len(SHARED):.1%}"
    assert sum(int(c[1].replace(",", "")) for c in page.rows.values()) == len(SHARED)


def test_every_feature_is_labelled_with_its_party(page, html):
    heads = page.find("th", "feature")
    assert {h["data-feature"]: h["data-party"] for h in heads} == {c: p for p, cols in TWO.items() for c in cols}
    for p, cols in TWO.items():
        for c in cols:
            assert f"{c} ({p})" in html


def test_cells_are_coloured_by_the_segment_mean_against_the_shared_customers(model, page):
    pooled, _ = _imputed_pooled()
    rows = pooled.set_index("id").loc[SHARED]
    bounds = {"a": 100, "b": 100, "c": 10, "d": 100, "e": 100}
    values = {c: np.clip(rows[c].to_numpy(float), 0, bounds[c]) for c in bounds}
    expected = []
    for s in sorted(model.segments, key=lambda s: -s.size):
        for cols, party in ((cols, p) for p, cols in TWO.items()):
            for c in cols:
                z = (s.profile[party][c] - values[c].mean()) / values[c].std()
                expected.append((c, z_colour(z)))
    cells = page.find("td", "cell")
    assert [(c["data-feature"], c["style"].removeprefix("background:")) for c in cells] == expected


def test_coverage_counts_by_hand_with_each_party(html):
    _, medians = _imputed_pooled()
    table = html_unescape(html.split('id="coverage-table"')[1].split("<tbody>")[1].split("</table>")[0])
    cells = [re.findall(r"<td>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", table)]
    assert cells == [["a (crm)", "8", f"7 ({medians['a']:,.4g})", "0", "0"], ["b (crm)", "5", "0", "0", "5"],
                     ["c (shop)", "5", f"4 ({medians['c']:,.4g})", "6", "0"], ["d (shop)", "0", "0", "0", "3"],
                     ["e (shop)", "0", "0", "0", "0"]]
    assert "crm 5; shop 3" in html_unescape(html)


def test_nothing_is_loaded_from_outside(page, html):
    assert not page.find("script") and not page.find("link") and not page.find("img") and not page.find("iframe")
    assert all(a["href"].startswith("#") for a in page.find("a"))
    assert "http://" not in html and "https://" not in html and "url(" not in page.style


@pytest.mark.integration
def test_chromium_renders_the_vertical_report_without_console_errors(html, tmp_path):
    path = tmp_path / "report.html"
    path.write_text(html)
    assert console_lines(path, tmp_path) == []
    width, height, distinct = png_info(tmp_path / "report.png")
    assert (width, height) == (1280, 2000) and distinct > 50
