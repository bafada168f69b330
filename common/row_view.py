"""A node's table seen through a subset of its rows, kept in the node's state between
messages: the rows it owns after deduplication (`client.dedup_view`), or the shared
customers in the parties' common order (`common.vertical.party`).

The subset applies only to the table it was computed on (same ids in the same order, as
its digest says); any other table is refused rather than read at the wrong rows.
Pure numpy: no Flower.
"""

from __future__ import annotations

import numpy as np

from fedseg.common.messages import Scaler
from fedseg.common.preprocessing import LocalTable
from fedseg.common.psi.protocol import PsiError, ids_digest
from fedseg.common.schema import FeatureSchema
from fedseg.common.table_policy import Coverage, RowDefects


class RowSubsetView:
    """`base` read at `rows` (a bool mask or row indices) of the table whose ids hash to
    `ids_sha256`; subclasses say what a mismatch means (`mismatch`) and which coverage
    counts the subset carries (`_coverage`)."""

    mismatch = "the table is not the one this node's rows were chosen from"

    def __init__(self, base, rows: np.ndarray, *, n_rows: int, ids_sha256: str) -> None:
        self.base, self._rows = base, rows
        self.key = getattr(base, "key", "")
        self._n_rows, self._ids_sha256 = n_rows, ids_sha256

    def _check(self, table: LocalTable) -> None:
        if table.n_rows != self._n_rows or ids_digest(table.ids) != self._ids_sha256:
            raise PsiError(self.mismatch)

    def _coverage(self, full: LocalTable, schema: FeatureSchema) -> tuple[Coverage | None, RowDefects | None]:
        """The subset's coverage counts and row defects (default: none carried)."""
        return None, None

    def table(self, schema: FeatureSchema) -> LocalTable:
        full = self.base.table(schema)
        self._check(full)
        r = self._rows
        coverage, defects = self._coverage(full, schema)
        return LocalTable(ids=full.ids[r], numeric=full.numeric[r], codes=full.codes[r],
                          coverage=coverage, defects=defects)

    def matrix(self, schema: FeatureSchema, scaler: Scaler) -> np.ndarray:
        self._check(self.base.table(schema))
        return self.base.matrix(schema, scaler)[self._rows]

    def forget(self) -> None:
        """The node left the run: its cached table goes (`NodeData.forget`)."""
        if hasattr(self.base, "forget"):
            self.base.forget()
