"""Output safety (issue 13, item 5): an unwritable folder is found before the first
exchange, the model and reports are written all or none, a failed run marks what is
stale, and node label files carry the run id and never leave a temp behind."""

from __future__ import annotations

import os
from pathlib import Path
from unittest.mock import Mock

import numpy as np
import pandas as pd
import pytest
from flwr.serverapp import Grid

from fedseg.client.source import write_node_labels
from fedseg.common.config import RunConfig
from fedseg.common.synthetic import synthetic_schema
from fedseg.server import output
from fedseg.server.app import run_segmentation
from fedseg.server.orchestrator import Event, RunError
from fedseg.server.output import FAILED_MARKER, OutputError

FILES = {"model.json": '{"new": 1}', "report.md": "# new", "report.html": "<p>new</p>"}


def unwritable(tmp_path: Path) -> Path:
    """A folder that cannot exist, even for root: its parent is a file."""
    (tmp_path / "a-file").write_text("x")
    return tmp_path / "a-file" / "out"


def test_probe_names_an_unwritable_folder(tmp_path):
    with pytest.raises(OutputError, match=r"output folder .*a-file/out is not writable"):
        output.probe(unwritable(tmp_path))
    output.probe(tmp_path / "fresh")
    assert list((tmp_path / "fresh").iterdir()) == []  # the probe is gone


def test_a_run_with_an_unwritable_folder_stops_before_asking_for_nodes(tmp_path):
    grid = Mock(spec=Grid)
    events: list[Event] = []
    with pytest.raises(OutputError):
        run_segmentation(grid, RunConfig(k=2), synthetic_schema(), unwritable(tmp_path), events.append)
    grid.get_node_ids.assert_not_called()
    grid.push_messages.assert_not_called()
    assert [e.phase for e in events] == ["failed"] and "not writable" in events[0].message


def test_publish_writes_all_files_or_none(tmp_path, monkeypatch):
    for name in FILES:
        (tmp_path / name).write_text("old")
    real_fsync, calls = os.fsync, []

    def full_disk_on_third(fd):
        calls.append(fd)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full_disk_on_third)
    with pytest.raises(OutputError, match="No space left"):
        output.publish(tmp_path, FILES)
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == dict.fromkeys(FILES, "old")  # no temps
    monkeypatch.setattr(os, "fsync", real_fsync)
    output.publish(tmp_path, FILES)
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == FILES


def test_a_failed_run_marks_the_older_model_stale_and_a_good_run_clears_the_mark(tmp_path):
    (tmp_path / "model.json").write_text("old")
    grid = Mock(spec=Grid)
    grid.get_node_ids.return_value = []
    grid.push_messages.return_value = []
    events: list[Event] = []
    with pytest.raises(RunError, match="only 0 node"):
        run_segmentation(grid, RunConfig(k=2), synthetic_schema(), tmp_path, events.append, node_timeout=0)
    marker = (tmp_path / FAILED_MARKER).read_text()
    assert "only 0 node" in marker and "stale (from an earlier run): model.json" in marker
    assert events[-1].phase == "failed" and "only 0 node" in events[-1].message
    output.publish(tmp_path, FILES)
    assert not (tmp_path / FAILED_MARKER).exists()


def test_the_stale_model_goes_when_even_the_marker_cannot_be_written(tmp_path, monkeypatch):
    (tmp_path / "model.json").write_text("old")
    monkeypatch.setattr(output, "_written_temp", Mock(side_effect=OSError(28, "No space left on device")))
    output.mark_failed(tmp_path, "disk full", ("model.json", "report.md"))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_labels_of_two_runs_do_not_overwrite_each_other(tmp_path, suffix):
    config = {"labels-path": str(tmp_path / f"segments{suffix}")}
    first = write_node_labels(config, "id", ["a", "b"], np.array([0, 1]), run_id=11)
    second = write_node_labels(config, "id", ["a", "b"], np.array([1, 1]), run_id=12)
    assert (first, second) == (str(tmp_path / f"segments.run-11{suffix}"), str(tmp_path / f"segments.run-12{suffix}"))
    read = pd.read_csv if suffix == ".csv" else pd.read_parquet
    assert read(first)["segment"].tolist() == [0, 1] and read(second)["segment"].tolist() == [1, 1]


def test_a_failed_parquet_label_write_leaves_no_file_of_ids(tmp_path, monkeypatch):
    def half_written(self, path, **kwargs):
        Path(path).write_bytes(b"PAR1 customer ids")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", half_written)
    with pytest.raises(OSError):
        write_node_labels({"labels-path": str(tmp_path / "segments.parquet")}, "id", ["a"], np.array([0]), run_id=3)
    assert list(tmp_path.iterdir()) == []


def test_label_tables_of_two_runs_do_not_overwrite_each_other(tmp_path):
    """Before: `labels-table` was replaced by every run, so the second of two concurrent
    runs overwrote the first's labels (issue 13 item 5). A run's table carries its id."""
    import sqlite3

    sqlite3.connect(tmp_path / "crm.db").close()  # the node's database exists
    config = {"db-url": f"sqlite:///{tmp_path / 'crm.db'}", "labels-table": "segments"}
    first = write_node_labels(config, "id", ["a", "b"], np.array([0, 1]), run_id=11)
    second = write_node_labels(config, "id", ["a", "b"], np.array([1, 1]), run_id=12)
    assert (first, second) == ("table segments_run_11", "table segments_run_12")
    with sqlite3.connect(tmp_path / "crm.db") as db:
        assert [r[0] for r in db.execute("SELECT segment FROM segments_run_11 ORDER BY id")] == [0, 1]
        assert [r[0] for r in db.execute("SELECT segment FROM segments_run_12 ORDER BY id")] == [1, 1]
