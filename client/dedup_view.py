"""A node's table after deduplication: only the rows this node owns (`common.psi`).

Every phase after the PSI reads the node's data through this view, so a customer that
two units hold enters every sum once, from its owner. The keep mask stays in the node's
state between messages; it applies only to the table it was computed on (same ids in
the same order), else the node refuses rather than drop the wrong rows
(`common.row_view`).
"""

from __future__ import annotations

from fedseg.common.preprocessing import LocalTable
from fedseg.common.psi.protocol import RESULT, DedupResult
from fedseg.common.row_view import RowSubsetView
from fedseg.common.schema import FeatureSchema
from fedseg.common.table_policy import Coverage, RowDefects, subset_coverage


class DedupedData(RowSubsetView):
    """The rows of `data` this node owns; `dedup` holds the PSI outcome."""

    mismatch = "the table is not the one the PSI deduplicated"

    def __init__(self, data, result: DedupResult) -> None:
        super().__init__(data, result.mask(), n_rows=result.n_rows, ids_sha256=result.ids_sha256)
        self.dedup = result

    def _coverage(self, full: LocalTable, schema: FeatureSchema) -> tuple[Coverage | None, RowDefects | None]:
        """The gaps of the rows this node owns."""
        coverage, k = full.coverage, self._rows
        if coverage is not None and full.defects is not None:
            coverage = subset_coverage(coverage, full.defects, k, schema)
        return coverage, full.defects[k] if full.defects is not None else None


def deduped(data, state: dict[str, bytes]):
    """`data` seen through the node's deduplication, when a PSI decided it in this run."""
    if RESULT not in state:
        return data
    return DedupedData(data, DedupResult.model_validate_json(state[RESULT]))
