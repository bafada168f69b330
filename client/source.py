"""Where a node's table comes from: its node config, or the simulation's data folder.

- Deployment: `--node-config 'data-path="/srv/customers.csv"'` (CSV or Parquet).
- Simulation: the run config's `data-dir` holds `node-<partition-id>.parquet|csv`.
- Neither: the built-in synthetic customers, this node's department of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from client.data import DataError, load_table, validate_frame
from client.handlers import NodeData
from common.preprocessing import LocalTable
from common.schema import FeatureSchema


def node_data(node_config: Mapping[str, Any], run_config: Mapping[str, Any]) -> NodeData:
    """The NodeData for this node, from Flower's node and run config."""
    if node_config.get("data-path"):
        return _file(Path(str(node_config["data-path"])).expanduser())
    partition = int(node_config.get("partition-id", 0))
    if run_config.get("data-dir"):
        return _file(simulation_file(Path(str(run_config["data-dir"])), partition))
    return _synthetic(partition, int(node_config.get("num-partitions", 1)), run_config)


def _file(path: Path) -> NodeData:
    """A file source, cached under its path, size and modification time (a changed
    file is read again)."""
    try:
        stat = path.stat()
        key = f"file:{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    except OSError:
        key = f"file:{path}:missing"
    return NodeData(key, lambda schema: load_table(path, schema))


def simulation_file(data_dir: Path, partition: int) -> Path:
    """`node-<partition>.parquet` if present, else `.csv` (the error names the CSV)."""
    parquet = data_dir / f"node-{partition}.parquet"
    return parquet if parquet.exists() else data_dir / f"node-{partition}.csv"


def _synthetic(partition: int, partitions: int, run_config: Mapping[str, Any]) -> NodeData:
    customers = int(run_config.get("synthetic-customers", 20000))
    seed = int(run_config.get("seed", 42))

    def load(schema: FeatureSchema) -> LocalTable:
        from simulations.synthetic import generate_customers  # built-in demo data only

        frame = generate_customers(customers, partitions, seed)
        departments = sorted(frame["department"].unique())
        if partition >= len(departments):
            raise DataError(f"synthetic data: no department for partition {partition}")
        mine = frame[frame["department"] == departments[partition]]
        source = f"synthetic:{departments[partition]}"
        return validate_frame(mine.drop(columns=["department", "true_segment"]), schema, source)

    return NodeData(f"synthetic:{customers}:{partitions}:{seed}:{partition}", load)
