"""The simulate user's own view of bad data: every partition checked as its node will.

A node tells the server only a code (`bad-table`), never which cell was wrong. In a
simulation the user owns every partition, so the driver validates each one locally
before the engine starts (as `fedseg check` does) and shows the readable reason, with
file, column and rows, on the user's own terminal; the run itself is unchanged: the
node with bad data still leaves it with its code.
"""

from __future__ import annotations

from pathlib import Path

from fedseg.client.data import DataError, load_table
from fedseg.client.source import simulation_file
from fedseg.common.schema import FeatureSchema


def check_partitions(folder: Path, schema: FeatureSchema, n_partitions: int) -> dict[int, str]:
    """Partition index -> the node's own error text, for the partitions that fail."""
    problems: dict[int, str] = {}
    for i in range(n_partitions):
        try:
            load_table(simulation_file(folder, i), schema)
        except DataError as exc:
            problems[i] = str(exc)
    return problems
