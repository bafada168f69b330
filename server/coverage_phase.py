"""The coverage phase on the server: which features have gaps, and the counts it releases.

Runs first in a run without DP (plaintext or secure; in secure mode only the sums reach
the server). Features with gaps whose policy is "impute" are flagged, so the histogram
phase that follows gives their federated median. The counts go into the artifact under
disclosure control: a non-zero count below `min-segment-size` is not published (it would
single out a handful of customers' missing or extreme values); the section says so.
Under DP the phase is not run and the section says the counts were not released.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fedseg.common.phases.coverage import CoverageReply, CoverageRequest, totals
from fedseg.common.schema import FeatureSchema
from fedseg.common.table_policy import Coverage


def run_coverage(exchange: Callable[[CoverageRequest], CoverageReply],
                 schema: FeatureSchema) -> tuple[Coverage, FeatureSchema]:
    """Summed counts, and the schema with `gaps` set on numeric features that have some."""
    total = totals(exchange(CoverageRequest(schema=schema)))
    return total, with_gaps(schema, total)


def with_gaps(schema: FeatureSchema, total: Coverage) -> FeatureSchema:
    """Flag the numeric features whose gaps take the federated median."""
    missing = np.asarray(total.missing)
    numeric = tuple(f.model_copy(update={"gaps": True}) if missing[i] > 0 and f.missing == "impute" else f
                    for i, f in enumerate(schema.numeric))
    return schema.model_copy(update={"numeric": numeric})


def _shown(count: float, floor: int) -> int | None:
    """A count as published: None when it is non-zero but below the disclosure floor."""
    value = int(round(float(count)))
    return None if 0 < value < floor else value


def coverage_section(total: Coverage, schema: FeatureSchema, floor: int) -> dict:
    """Per feature: policy, missing, imputed (with the value gaps took), clipped, dropped."""
    features = {}
    names = [*schema.numeric_names, *schema.categorical_names]
    for i, name in enumerate(names):  # loop over features, not records
        entry = {"missing": _shown(total.missing[i], floor), "imputed": _shown(total.imputed[i], floor),
                 "dropped": _shown(total.dropped[i], floor)}
        if i < len(schema.numeric):
            f = schema.numeric[i]
            entry.update(policy={"missing": f.missing, "out_of_range": f.out_of_range},
                         clipped=_shown(total.clipped[i], floor), impute_value=f.impute_value)
        else:
            entry.update(policy={"missing": schema.categorical[i - len(schema.numeric)].missing})
        features[name] = entry
    return {"released": True, "rows": _shown(total.rows, floor), "kept": _shown(total.kept, floor),
            "rows_dropped": _shown(total.rows - total.kept, floor), "suppressed_below": floor,
            "features": features}


def not_released() -> dict:
    """The section of a DP run: the counts would need their own budget, so none leave."""
    return {"released": False, "reason": "differential privacy: coverage counts are not released"}
