"""A node's table after deduplication: only the rows this node owns (`common.psi`).

Every phase after the PSI reads the node's data through this view, so a customer that
two units hold enters every sum once, from its owner. The keep mask stays in the node's
state between messages; it applies only to the table it was computed on (same ids in
the same order), else the node refuses rather than drop the wrong rows.
"""

from __future__ import annotations

import numpy as np

from fedseg.common.messages import Scaler
from fedseg.common.preprocessing import LocalTable
from fedseg.common.psi.protocol import RESULT, DedupResult, PsiError, ids_digest
from fedseg.common.schema import FeatureSchema
from fedseg.common.table_policy import subset_coverage


class DedupedData:
    """The rows of `data` this node owns; `dedup` holds the PSI outcome."""

    def __init__(self, data, result: DedupResult) -> None:
        self.base, self.dedup = data, result
        self.key = getattr(data, "key", "")
        self._keep = result.mask()

    def _check(self, table: LocalTable) -> None:
        if table.n_rows != self.dedup.n_rows or ids_digest(table.ids) != self.dedup.ids_sha256:
            raise PsiError("the table is not the one the PSI deduplicated")

    def table(self, schema: FeatureSchema) -> LocalTable:
        full = self.base.table(schema)
        self._check(full)
        k = self._keep
        coverage = full.coverage
        if coverage is not None and full.defects is not None:  # gaps of the rows this node owns
            coverage = subset_coverage(coverage, full.defects, k, schema)
        return LocalTable(ids=full.ids[k], numeric=full.numeric[k], codes=full.codes[k], coverage=coverage,
                          defects=full.defects[k] if full.defects is not None else None)

    def forget(self) -> None:
        """The node left the run: its cached table goes (`NodeData.forget`)."""
        if hasattr(self.base, "forget"):
            self.base.forget()

    def matrix(self, schema: FeatureSchema, scaler: Scaler) -> np.ndarray:
        self._check(self.base.table(schema))
        return self.base.matrix(schema, scaler)[self._keep]


def deduped(data, state: dict[str, bytes]):
    """`data` seen through the node's deduplication, when a PSI decided it in this run."""
    if RESULT not in state:
        return data
    return DedupedData(data, DedupResult.model_validate_json(state[RESULT]))
