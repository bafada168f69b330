"""Segment names travel with segment numbers: `fedseg assign` and node label files
carry the name beside the number, names are unique within a model and match the model."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from fedseg.cli.main import cli
from fedseg.client.source import write_node_labels
from fedseg.common.artifact import save_artifact
from fedseg.common.config import RunConfig
from fedseg.common.synthetic import generate_customers, synthetic_schema
from fedseg.server.model import build_artifact
from fedseg.server.orchestrator import Orchestrator
from tests.helpers import frame_nodes, transport

SCHEMA = synthetic_schema()


def model_and_data(tmp_path):
    df = generate_customers(3000, 3, seed=11)
    frames = [g[list(SCHEMA.columns)] for _, g in df.groupby("department")]
    nodes = frame_nodes(frames)
    config = RunConfig.parse({"k": 5, "seed": 2, "restarts": 1})
    model = build_artifact(Orchestrator(config, SCHEMA, transport(nodes), list(nodes)).run(), config, SCHEMA)
    save_artifact(model, tmp_path / "model.json")
    frames[0].to_csv(tmp_path / "dept.csv", index=False)
    return model, frames[0]


def test_assign_writes_the_name_beside_the_number(tmp_path):
    model, frame = model_and_data(tmp_path)
    done = CliRunner().invoke(cli, ["assign", "--model", str(tmp_path / "model.json"), "--data",
                                    str(tmp_path / "dept.csv"), "--out", str(tmp_path / "labels.csv")])
    assert done.exit_code == 0, done.output
    labels = pd.read_csv(tmp_path / "labels.csv")
    assert list(labels.columns) == ["customer_id", "segment", "segment_name"] and len(labels) == len(frame)
    names = {s.id: s.name for s in model.segments}
    assert len(set(names.values())) == len(names)  # unique within the model
    assert all(names[s] == n for s, n in zip(labels["segment"], labels["segment_name"]))


def test_node_label_file_carries_names(tmp_path):
    where = write_node_labels({"labels-path": str(tmp_path / "out.csv")}, "customer_id", ["a", "b", "c"],
                              [2, 0, 2], ["zero", "one", "two"])
    back = pd.read_csv(where)
    assert back.to_dict("list") == {"customer_id": ["a", "b", "c"], "segment": [2, 0, 2],
                                    "segment_name": ["two", "zero", "two"]}
