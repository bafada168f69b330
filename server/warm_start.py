"""Warm start from a previous model, and how many customers changed segment.

The old centroids live in the old run's scaled space; they are mapped back to the
transformed units with the old scaler and re-scaled with the new one. Segment changes
are counted on the nodes (old model applied with its own schema, scaler and centroids vs
the new model); the server receives only the (old segment × new segment) counts summed
over nodes, in secure mode through secure aggregation.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from fedseg.common import disclosure
from fedseg.common.artifact import ModelArtifact
from fedseg.common.schema import FeatureSchema
from fedseg.common.messages import Scaler
from fedseg.common.phases.transitions import TransitionRequest


class WarmStartError(ValueError):
    """An old model that does not fit this run (other features or schema version)."""


def check_compatible(old: ModelArtifact, schema: FeatureSchema, source: str = "warm-start model") -> None:
    """Same schema version and the same encoded features, in the same order."""
    old_schema = old.run.feature_schema
    if old_schema.schema_version != schema.schema_version:
        raise WarmStartError(
            f"{source}: schema_version {old_schema.schema_version}, this run uses {schema.schema_version}"
        )
    if old.features != schema.encoded_names:
        raise WarmStartError(f"{source}: features {old.features} differ from this run's {schema.encoded_names}")


def mapped_centroids(old: ModelArtifact, scaler: Scaler) -> np.ndarray:
    """Old centroids in the new scaled space: shape (k_old, d)."""
    mean, scale = old.scaler_arrays()
    return (old.centroid_array() * scale + mean - scaler.mean) / scaler.scale


def transition_request(old: ModelArtifact, schema: FeatureSchema, scaler: Scaler,
                       centroids: np.ndarray) -> TransitionRequest:
    """The old model as the nodes apply it: its own bounds, winsor limits and scaler, on
    this run's data source (a transactions node derives RFM at this run's as-of date)."""
    old_schema = old.run.feature_schema.model_copy(update={"transactions": schema.transactions})
    mean, scale = old.scaler_arrays()
    return TransitionRequest(
        schema=schema, scaler=scaler, centroids=centroids, old_schema=old_schema,
        old_scaler=Scaler(mean=mean, scale=scale), old_centroids=old.centroid_array(),
    )


def segment_matching(old_in_new: np.ndarray, new: np.ndarray, warm: bool) -> np.ndarray:
    """New segment matched to each old one (-1: none). A warm start keeps ids; with
    another k, the Hungarian assignment on centroid distances."""
    if warm:
        return np.arange(len(old_in_new))
    cost = np.sqrt(np.square(old_in_new[:, None, :] - new[None, :, :]).sum(axis=2))
    rows, cols = linear_sum_assignment(cost)
    match = np.full(len(old_in_new), -1, dtype=np.int64)
    match[rows] = cols
    return match


def changes_section(counts: np.ndarray, match: np.ndarray, old: ModelArtifact, source: str,
                    min_release: int, noisy: bool = False) -> dict:
    """The drift facts for the artifact: customers that changed segment (a sum over all
    customers), and the transition table with cells below the minimum release size
    withheld, plus the complementary cells that would give them back by difference
    (`disclosure.suppress_cells`: a column total is a published segment size).

    `noisy` (DP): the cells carry Gaussian noise (Δ = 1, phase "transitions" of the
    budget); negatives are clipped to 0 and the totals are derived from the noisy cells
    (post-processing)."""
    counts = np.maximum(np.rint(np.asarray(counts, dtype=float)), 0).astype(np.int64)
    total = int(counts.sum())
    kept = int(sum(counts[i, j] for i, j in enumerate(match) if j >= 0))
    hidden = disclosure.suppress_cells(counts, min_release, disclosure.table_lines(counts.shape, match))
    cells = [[None if h else int(c) for c, h in zip(row, hide)] for row, hide in zip(counts, hidden)]
    return {
        "warm_start_from": source,
        "old_k": int(counts.shape[0]),
        "old_segment_names": [s.name for s in old.segments],
        "matched_new_segment": [int(j) for j in match],
        "customers": total,
        "changed_segment": total - kept,
        "changed_share": (total - kept) / total if total else 0.0,
        "transitions": cells,
        "transitions_note": f"customers per (old segment, new segment); cells below {min_release} withheld, "
                            "and the cells that would give them back by difference"
                            + ("; differentially private (noisy counts)" if noisy else ""),
        "noisy": noisy,
    }
