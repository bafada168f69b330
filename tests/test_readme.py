"""Every ```bash block of README.md is tested: run here (the data example), run by the test
that owns it (CDNOW, `flwr run`), or run by CI itself (the two newcomer commands, which
must read as `.ci/run` runs them). A README command that nobody runs would rot unseen."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from fedseg.common.artifact import load_artifact
from tests.helpers import run_as_newcomer
from tests.test_cli_cdnow import README_CDNOW
from tests.test_flwr_run import README_FLWR_RUN, README_STOP_SUPERLINK
from tests.test_vertical_runs import README_VERTICAL

REPO = Path(__file__).resolve().parents[1]
NEWCOMER_SIMULATE = "python3 -m venv .venv && . .venv/bin/activate && pip install -e . && fedseg simulate"
NEWCOMER_TESTS = 'python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[test]" && python -m pytest -q'
DATA_EXAMPLE = """\
fedseg synth --out demo --customers 3000
cat demo/*.csv | awk 'NR==1 || !/^customer_id/' > pooled.csv   # any pooled table
fedseg simulate --data pooled.csv --schema demo/schema.toml --partition dirichlet:0.3:region --clients 8 --k 6 --out runs/demo
fedseg assign --model runs/demo/model.json --data demo/dept-1.csv --out labels.csv
fedseg report runs/demo/model.json --png report.png"""

DEDUP_EXAMPLE = """\
fedseg synth --out demo --customers 3000
fedseg simulate --data demo/dept-1.csv --schema demo/schema.toml --partition iid --clients 3 --overlap 0.3 --dedup --k 4 --out runs/dedup"""

TESTED_BY = {
    DEDUP_EXAMPLE: "test_readme_dedup_example_counts_shared_customers_once",
    README_VERTICAL: "tests/test_vertical_runs.py::test_readme_vertical_example_on_the_simulation_engine",
    NEWCOMER_SIMULATE: ".ci/run",
    NEWCOMER_TESTS: ".ci/run",
    DATA_EXAMPLE: "test_readme_data_example_runs_as_written",
    "\n".join(README_CDNOW): "tests/test_cli_cdnow.py",
    README_FLWR_RUN: "tests/test_flwr_run.py",
    README_STOP_SUPERLINK: "tests/test_flwr_run.py (finds the SuperLink with the same pgrep, stops it by PID)",
}


def bash_blocks(markdown: str) -> list[str]:
    return [block.strip() for block in re.findall(r"^```bash\n(.*?)^```", markdown, re.S | re.M)]


def test_every_readme_bash_block_is_tested():
    blocks = bash_blocks((REPO / "README.md").read_text())
    untested = [b for b in blocks if b not in TESTED_BY]
    assert not untested, f"README commands no test runs: {untested}"
    assert sorted(blocks) == sorted(TESTED_BY)  # and no test is left for a command the README dropped


@pytest.mark.parametrize("command", [NEWCOMER_SIMULATE, NEWCOMER_TESTS])
def test_newcomer_commands_are_the_ones_ci_runs(command):
    ci = (REPO / ".ci" / "run").read_text().replace(" --quiet", "")
    ci_lines = [line.strip() for line in ci.splitlines()]
    venv, activate, *rest = command.split(" && ")
    assert venv in ci_lines and activate in ci_lines
    assert " && ".join(rest) in ci_lines  # install + run, on one line as in the README


@pytest.mark.integration
def test_readme_data_example_runs_as_written(tmp_path):
    run_as_newcomer(DATA_EXAMPLE, tmp_path, FLWR_HOME=str(tmp_path / "flwr-home"))
    model = load_artifact(tmp_path / "runs" / "demo" / "model.json")
    assert model.k == 6 and model.run.clients == 8
    labels = pd.read_csv(tmp_path / "labels.csv")
    assert list(labels.columns) == ["customer_id", "segment", "segment_name"]
    assert len(labels) == len(pd.read_csv(tmp_path / "demo" / "dept-1.csv"))
    assert (tmp_path / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.integration
def test_readme_dedup_example_counts_shared_customers_once(tmp_path):
    """The README's --dedup command on the Simulation Engine: segment sizes add up to the
    distinct customers of the file (not the rows the three nodes hold), and the model
    gives the overlap as counted by hand from the file."""
    run_as_newcomer(DEDUP_EXAMPLE, tmp_path)
    model = load_artifact(tmp_path / "runs" / "dedup" / "model.json")
    distinct = len(pd.read_csv(tmp_path / "demo" / "dept-1.csv"))
    assert model.run.clients == 3 and sum(s.size for s in model.segments) == distinct
    shared = round(0.3 * distinct)  # --overlap 0.3: that many customers copied into a second node
    assert model.privacy["deduplication"]["shared_customers"] == shared
    assert model.privacy["deduplication"]["duplicate_rows_removed"] == shared
    assert f"{shared:,} customers were held by more than one" in (tmp_path / "runs" / "dedup" / "report.md").read_text()


@pytest.mark.integration
def test_readme_dp_example_runs_on_ray(tmp_path):
    """The README's DP command on the real Simulation Engine (default 20,000 customers):
    exit 0, report.html written (it used to stop with `min() arg is an empty sequence`)."""
    done = run_as_newcomer(["fedseg", "simulate", "--k", "6", "--epsilon", "1", "--delta", "1e-6", "--out", "runs/dp"],
                           tmp_path, timeout=900)
    assert (tmp_path / "runs" / "dp" / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert "inertia" not in done.stdout and "±" in done.stdout
