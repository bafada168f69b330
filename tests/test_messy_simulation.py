"""`fedseg simulate --data` on a messy CRM export, on Flower's Simulation Engine (issue 12):
every node takes part and every value is accounted for; a node whose data leave it out
makes the command exit non-zero."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from fedseg.cli.main import cli
from fedseg.common.artifact import load_artifact
from tests.messy import cleaned, cost_ratio, write_messy

pytestmark = pytest.mark.integration


def test_messy_export_runs_with_every_node_and_counts_every_value(tmp_path):
    data, schema, frame, facts = write_messy(tmp_path)
    out = tmp_path / "run"
    done = CliRunner().invoke(cli, ["simulate", "--data", str(data), "--schema", str(schema), "--partition",
                                    "column:unit", "--k", "4", "--seed", "3", "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert "read as cp1252" in done.output and "separated by ';'" in done.output  # said, not silent
    model = load_artifact(out / "model.json")
    assert model.run.clients == 4 and not model.run.clients_failed
    X, hand = cleaned(frame, facts)
    cov = model.coverage["features"]
    assert model.coverage["rows"] == len(frame) and model.coverage["rows_dropped"] == hand["dropped"]
    assert (cov["age"]["imputed"], cov["income"]["imputed"], cov["city"]["imputed"]) == (
        hand["imputed_age"], hand["imputed_income"], hand["imputed_city"])
    assert cov["age"]["clipped"] == hand["clipped_age"] and cov["visits"]["dropped"] == hand["dropped"]
    assert sum(s.size for s in model.segments) == len(X)
    assert cost_ratio(model, X) <= 1.01


def test_a_node_left_out_for_its_data_makes_simulate_exit_non_zero(tmp_path):
    data, schema, frame, facts = write_messy(tmp_path, n=1600)
    frame.loc[frame["unit"] == "u3", "visits"] = ""  # missing = "drop": that unit keeps no row
    data.write_bytes(frame.to_csv(index=False, sep=";").encode("latin-1"))
    out = tmp_path / "run"
    done = CliRunner().invoke(cli, ["simulate", "--data", str(data), "--schema", str(schema), "--partition",
                                    "column:unit", "--k", "3", "--out", str(out)])
    assert done.exit_code == 3, done.output
    assert "left the run because of their data" in " ".join(done.output.split())
    model = load_artifact(out / "model.json")
    assert list(model.run.clients_failed.values()) == ["bad-table"] and model.run.clients == 3
