"""The federated-quantile phase and the run checks for the issue-5 extensions.

One exchange: every node returns counts per public bin of each feature that needs
quantiles (winsorize, robust scaling, RFM scores); the server sums them (in secure mode
only the sum reaches it) and derives global quantiles. The nodes then use a schema with
the winsor limits filled in.

Under differential privacy (`server/dp_planner.py`) the summed counts carry Gaussian
noise (phase "quantiles" of the budget, Δ = √features): per feature, the cumulative
counts are made monotone and non-negative, i.e. negative counts clipped to 0
(`quantiles.denoised_counts`), before the quantiles are read off (post-processing, no
privacy cost).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fedseg.common import quantiles
from fedseg.common.schema import FeatureSchema
from fedseg.common.phases.histogram import HistogramReply, HistogramRequest


def with_as_of(schema: FeatureSchema, as_of: str) -> FeatureSchema:
    """A transactions schema with the run config's as-of date filled in (it wins over
    the schema's own `as_of`)."""
    if schema.transactions is None or not as_of:
        return schema
    tx = schema.transactions.model_copy(update={"as_of": np.datetime64(as_of, "D").item()})
    return schema.model_copy(update={"transactions": tx})


def run_quantiles(
    exchange: Callable[[HistogramRequest], HistogramReply], schema: FeatureSchema, gaps_counted: bool = True
) -> tuple[list[quantiles.FeatureQuantiles], FeatureSchema]:
    """Summed histograms → per-feature quantiles, and the schema with winsor limits and
    the federated medians gaps take (`impute_value`).

    `exchange` sends the request to every node and returns the reply summed over them."""
    counts = exchange(HistogramRequest(schema=schema)).counts
    per_feature = [quantiles.denoised_counts(c) for c in quantiles.split_histograms(counts, schema)]
    found = [quantiles.summarize(schema.numeric[i], c) for i, c in zip(schema.quantile_indices, per_feature)]
    return found, quantiles.with_impute_values(quantiles.with_winsor_limits(schema, found), found, gaps_counted)
