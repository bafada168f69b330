"""`fedseg simulate --cdnow` and `--warm-start` through the CLI and Flower's Simulation
Engine: five stores derive RFM on their nodes; a warm start on the same data keeps the
segments; an incompatible warm-start model fails before the simulation starts."""

from __future__ import annotations

import shlex

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fedseg.common.artifact import load_artifact
from fedseg.cli.main import cli
from fedseg.simulations.cdnow import CDNOW_AS_OF, load_cdnow_transactions

pytestmark = pytest.mark.integration  # every test runs `fedseg simulate` (Ray)


def pooled_rfm() -> pd.DataFrame:
    """Per customer recency (days), frequency and monetary from the raw purchase log, by pandas."""
    tx = load_cdnow_transactions()
    g = tx.groupby("customer_id")
    return pd.DataFrame({"recency_days": (pd.Timestamp(CDNOW_AS_OF) - g["date"].max()).dt.days,
                         "frequency": g.size(), "monetary": g["amount"].sum()})


# The README's CDNOW demo, run here as written (tests/test_readme.py checks the README says exactly this)
README_CDNOW = [
    "fedseg simulate --cdnow --stores 5 --k 4 --seed 3 --out runs/cdnow",
    "fedseg simulate --cdnow --stores 5 --seed 3 --warm-start runs/cdnow/model.json --out runs/cdnow-2",
]


def readme_args(command: str, runs) -> list[str]:
    """A README `fedseg ...` line as CLI arguments, its `runs/` folder moved to a temp one."""
    return [arg.replace("runs/", f"{runs}/") for arg in shlex.split(command)[1:]]


@pytest.fixture(scope="module")
def cdnow_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("cdnow")
    runner = CliRunner()
    first = runner.invoke(cli, readme_args(README_CDNOW[0], out))
    assert first.exit_code == 0, first.output
    again = runner.invoke(cli, readme_args(README_CDNOW[1], out))
    assert again.exit_code == 0, again.output
    return out, first.output, load_artifact(out / "cdnow" / "model.json"), load_artifact(out / "cdnow-2" / "model.json")


def test_cdnow_stores_give_named_segments_and_pooled_recency_quintiles(cdnow_runs):
    out, output, model, _ = cdnow_runs
    pooled = pooled_rfm()
    assert model.run.clients == 5 and model.k == 4
    assert sum(s.size for s in model.segments) == len(pooled)  # every customer, counted on the nodes
    assert all(s.name for s in model.segments) and "Champions" in output
    recency = next(q for q in model.quantiles if q["name"] == "recency_days")
    expected = np.quantile(pooled["recency_days"].to_numpy(float), [0.2, 0.4, 0.6, 0.8], method="inverted_cdf")
    assert recency["quintile_edges"] == expected.tolist()  # one public bin per day: exact
    assert (out / "cdnow" / "report.html").read_text().count("<svg") >= 3


def test_warm_start_on_the_same_data_barely_changes_segments(cdnow_runs):
    _, _, model, again = cdnow_runs
    assert again.k == model.k and again.drift["matched_new_segment"] == list(range(model.k))
    assert again.drift["customers"] == len(pooled_rfm())
    # the first run stopped at tol 1e-4, so the warm run may polish the centroids a little:
    # only customers on a boundary may move
    assert again.drift["changed_share"] < 0.005
    np.testing.assert_allclose(again.centroids, model.centroids, atol=0.05)
    kept = sum(row[j] or 0 for j, row in enumerate(again.drift["transitions"]))
    assert again.drift["changed_segment"] >= again.drift["customers"] - kept - 10 * model.k  # withheld cells < 10


def test_incompatible_warm_start_fails_before_the_simulation(cdnow_runs, tmp_path):
    out, *_ = cdnow_runs
    done = CliRunner().invoke(cli, ["simulate", "--customers", "2000", "--warm-start",
                                    str(out / "cdnow" / "model.json"), "--out", str(tmp_path / "x")])
    assert done.exit_code == 2, done.output
    assert "model.json" in done.output and "feature" in done.output.lower()
    assert not (tmp_path / "x").exists()  # nothing half-written
