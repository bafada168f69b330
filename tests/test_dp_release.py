"""A DP run end to end (issue 11, item 2): the README's DP settings run in process
through the orchestrator, the artifact, both reports and `fedseg report`; the profile
is consistent (counts, shares, bounds, ordered quartiles), every noisy figure carries
its 95 % interval, there is no selection table, progress lines make sense, and the
artifact states the budget as the guarantee."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from fedseg.cli.main import cli
from fedseg.common.artifact import save_artifact
from fedseg.common.config import RunConfig
from fedseg.common.playbook import load_playbook
from fedseg.common.synthetic import generate_customers, synthetic_schema
from fedseg.server.model import build_artifact
from fedseg.server.orchestrator import Orchestrator
from fedseg.server.report.markdown import markdown_report, write_report
from fedseg.server.report.page import write_html_report
from tests.helpers import frame_nodes, transport

SCHEMA = synthetic_schema()
README_DP = [(6, 1.0, 20000, 42), (3, 4.0, 5000, 42), (6, 1.0, 20000, 7)]  # --k --epsilon --customers --seed


@pytest.fixture(scope="module", params=README_DP, ids=lambda p: f"k{p[0]}-eps{p[1]:g}-n{p[2]}-seed{p[3]}")
def dp_run(request, tmp_path_factory):
    k, eps, n, seed = request.param
    df = generate_customers(n, 5, seed=seed)
    frames = [g[list(SCHEMA.columns)] for _, g in df.groupby("department")]
    nodes = frame_nodes(frames)
    config = RunConfig.parse({"k": k, "seed": seed, "epsilon": eps, "delta": 1e-6})
    events = []
    result = Orchestrator(config, SCHEMA, transport(nodes), list(nodes), events.append).run()
    model = build_artifact(result, config, SCHEMA)
    out = tmp_path_factory.mktemp("dp")
    save_artifact(model, out / "model.json")
    write_report(model, out)
    write_html_report(model, out, load_playbook())
    return model, out, events, eps


def test_reports_are_written_without_a_selection_table(dp_run):
    model, out, _, _ = dp_run
    html = (out / "report.html").read_text()
    assert model.selection == [] and 'id="selection"' not in html
    assert "## k selection" not in (out / "report.md").read_text()
    done = CliRunner().invoke(cli, ["report", str(out / "model.json"), "--out", str(out / "again.html")])
    assert done.exit_code == 0, done.output
    assert (out / "again.html").read_text() == html


def test_profile_is_consistent(dp_run):
    model, *_ = dp_run
    assert all(s.size >= 10 for s in model.segments)
    assert sum(s.share for s in model.segments) == pytest.approx(1.0, abs=1e-12)
    for seg in model.segments:
        for f in SCHEMA.numeric:
            p = seg.profile.numeric[f.name]
            assert f.lower <= p.mean <= f.upper and f.lower <= p.population_mean <= f.upper
            assert 0 <= p.std <= (f.upper - f.lower) / 2
            if p.median is not None:
                assert f.lower <= p.q25 <= p.median <= p.q75 <= f.upper
        for shares in seg.profile.categories.values():
            assert all(0 <= v <= 1 for v in shares.values())
            assert sum(shares.values()) == pytest.approx(1.0)


def test_every_noisy_figure_has_its_interval(dp_run):
    model, out, _, _ = dp_run
    for seg in model.segments:
        assert seg.share_ci95 > 0 and seg.profile.share_ci95 > 0
        assert all(p.mean_ci95 > 0 for p in seg.profile.numeric.values())
    sigma = {r["what"]: r["sigma"] for r in model.privacy["releases"]}
    n = sum(s.size for s in model.segments)
    # share interval: 1.96 σ_count / N, σ_count as booked in the ledger
    assert model.segments[0].share_ci95 == pytest.approx(1.959964 * sigma["profile.counts"] / n, rel=1e-3)
    assert "±" in (out / "report.html").read_text() and "±" in markdown_report(model)


def test_progress_lines_make_sense(dp_run):
    _, _, events, _ = dp_run
    lloyd = [e for e in events if e.phase == "lloyd"]
    assert lloyd and all(e.detail["noisy"] and "inertia" not in e.message for e in lloyd)
    assert all(np.isfinite(e.detail["moved"]) for e in lloyd)


def test_budget_is_the_guarantee(dp_run):
    model, _, _, eps = dp_run
    priv = model.privacy
    assert priv["guarantee"]["epsilon"] == eps and priv["epsilon"] == eps and priv["delta"] == 1e-6
    assert priv["spent"]["epsilon"] <= eps + 1e-9 and "informational" in priv["spent"]["note"]
