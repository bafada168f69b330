"""Turn a finished run into the model artifact."""

from __future__ import annotations

import numpy as np

import fedseg
from fedseg.common import disclosure
from fedseg.common.artifact import ModelArtifact, RunInfo, ScalerOut, Segment
from fedseg.common.config import RunConfig
from fedseg.common.naming import name_profiles
from fedseg.common.profiles import Z95, build_profiles, describe
from fedseg.common.schema import FeatureSchema
from fedseg.server.run_types import RunResult


PHASE_RELEASES = [
    "prepare: row count, per-feature sums and sums of squares, per-category counts",
    "init: per-bucket counts; per-dense-bucket sums and counts",
    "lloyd: per candidate cluster sums, counts, inertia, distance and silhouette sums",
    "profile: per segment counts, sums and sums of squares, category counts"
    " (and sums of RFM 1-5 quintile scores when the schema scores features;"
    " customers per per-segment bin, at most 256, of each quantile-phase feature)",
    "histogram (schemas with winsorize, robust scaling - the default for money features - or scores): per feature, customers per public bin",
    "transitions (warm start): customers per (old segment, new segment)",
]


def privacy_section(config: RunConfig) -> dict:
    """What the server saw: per-node aggregates in plaintext mode, only sums over nodes
    in secure mode (the DP ledger replaces this section when DP is on)."""
    common = {"min_release_size": config.min_segment_size, "epsilon": None, "delta": None}
    if not config.secure:
        return {"mode": "plaintext", **common, "released_per_node": PHASE_RELEASES}
    return {
        "mode": "secure",
        **common,
        "protocol": "secure aggregation (Bonawitz et al. 2017; per-round derived pair keys, escrowed), see PRIVACY.md",
        "max_dropout": config.max_dropout,
        "released_per_node": ["a 'ready' flag (table valid)", "public keys and encrypted key shares",
                              "masked vectors that look uniformly random on their own"],
        "released_sums_over_nodes": PHASE_RELEASES,
    }


def disclosure_facts(config: RunConfig, merged: int) -> dict:
    """The disclosure rules this model was published under (PRIVACY.md, "Disclosure control")."""
    size = config.min_segment_size
    return {
        "min_release_size": size,
        "merged_segments": merged,
        "segments": f"a segment below {size} customers is merged into its nearest segment (no centroid or "
                    "figure of its own); population figures are sums over the released segments",
        "quartiles": f"segment quartiles only for segments of at least {disclosure.quantile_floor(size)} "
                     f"customers ({size} on each side of a quartile)",
        "transitions": f"cells below {size} withheld, with complementary cells so that no row, column or "
                       "matched total gives one back",
    }


def _released_quantiles(q: dict, n: int, min_size: int) -> dict:
    """A feature's global quantiles without the levels too far in a tail for N customers."""
    return {**q, "quantiles": disclosure.released_levels(q["quantiles"], n, min_size)}


def build_artifact(
    result: RunResult, config: RunConfig, schema: FeatureSchema, privacy: dict | None = None
) -> ModelArtifact:
    """The artifact: centroids in scaled space, profiles in original units, criteria, run facts."""
    chosen = result.chosen
    schema = result.schema or schema  # as the nodes used it: as-of date, winsor limits
    noise = result.profile_noise
    counts = np.maximum(np.rint(np.asarray(result.profile.counts, dtype=float)), 0).astype(np.int64)
    n = int(counts.sum())
    profiles = build_profiles(result.profile, schema, config.min_segment_size, noise)
    names = name_profiles(profiles, labels={n: schema.label_of(n) for n in schema.numeric_names})
    share_ci = None if noise is None else Z95 * float(noise.get("counts", 0.0)) / max(n, 1)
    segments = [
        Segment(id=j, size=int(counts[j]), share=float(counts[j] / n), name=names[j].name,
                key=names[j].key, summary=describe(p), profile=p, share_ci95=share_ci)
        for j, p in enumerate(profiles)
    ]
    run_k = chosen.k + result.merged  # the criteria were computed before small segments were merged
    best = next((c.model_dump(exclude={"k"}) for c in result.table if c.k == run_k), {})
    return ModelArtifact(
        features=schema.encoded_names,
        scaler=ScalerOut(mean=result.scaler.mean.tolist(), scale=result.scaler.scale.tolist()),
        centroids=chosen.centroids.tolist(),
        k=chosen.k,
        segments=segments,
        selection=[c.model_dump() for c in result.table],
        metrics={**best, "customers": float(n)},
        run=RunInfo(
            config=config.to_flower(),
            seed=config.seed,
            clients=len(result.active),
            clients_failed=dict(result.failures),
            phase_nodes=dict(result.phase_nodes),
            rounds=result.rounds,
            lloyd_rounds=result.lloyd_rounds,
            converged=chosen.converged,
            timings={k: round(v, 4) for k, v in result.timings.items()},
            feature_schema=schema,
            fedseg_version=fedseg.__version__,
        ),
        privacy={**(privacy or result.privacy or privacy_section(config)),
                 "disclosure_control": disclosure_facts(config, result.merged),
                 **({"deduplication": result.dedup} if result.dedup else {})},
        quantiles=[_released_quantiles(q.model_dump(), n, config.min_segment_size) for q in result.quantiles] or None,
        drift=result.changes,
        coverage=result.coverage,
    )
