"""The fingerprint a node pins its schema by: sha256 of the schema's canonical JSON.

Canonical: `model_dump(mode="json")` with sorted keys and no spaces, after clearing the
fields a run fills in for the nodes (the winsor limits from the federated quantiles, the
gap flags and imputed medians, and the run's as-of date): they narrow or date what a node computes, never what it
releases per customer, so a pinned node still takes part in runs that set them.
"""

from __future__ import annotations

import hashlib
import json

from fedseg.common.schema import FeatureSchema


def canonical_schema(schema: FeatureSchema) -> FeatureSchema:
    """The schema without its run-derived fields (winsor limits, imputation, as-of date)."""
    numeric = tuple(f.model_copy(update={"winsor_limits": None, "gaps": False, "impute_value": None})
                    for f in schema.numeric)
    update: dict = {"numeric": numeric}
    if schema.transactions is not None:
        update["transactions"] = schema.transactions.model_copy(update={"as_of": None})
    return schema.model_copy(update=update)


def schema_fingerprint(schema: FeatureSchema) -> str:
    """Hex sha256 of the canonical JSON of `schema` (what `schema-sha256` pins)."""
    dump = canonical_schema(schema).model_dump(mode="json")
    return hashlib.sha256(json.dumps(dump, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
