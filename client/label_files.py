"""Where and how a node writes its label file: one file per run, never half a file.

Two runs at once must not overwrite each other's labels, so a label file written during
a run carries the run id in its name (`segments.csv` -> `segments.run-<id>.csv`); a
Parquet file goes through a uniquely named temp in the same folder that is removed when
the write fails, so no file of customer ids is ever left beside the target (issue 13).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd


def table_for_run(table: str, run_id: int | None) -> str:
    """The label table of run `run_id` (`segments` -> `segments_run_<id>`, a name every
    SQL dialect takes unquoted), so two runs at once never replace each other's table."""
    return table if run_id is None else f"{table}_run_{run_id}"


def for_run(path: Path, run_id: int | None) -> Path:
    """The label file of run `run_id` (the configured path itself outside a run)."""
    return path if run_id is None else path.with_name(f"{path.stem}.run-{run_id}{path.suffix}")


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """`frame` to `path` through a temp beside it and a rename; the temp never stays."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
