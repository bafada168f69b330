"""The coverage phase of a vertical run: each party's gaps, clipped and dropped values
per feature, and the medians its gaps take (PRIVACY.md, "Vertical federation: gaps").

A party applies the schema's policies to its own columns when it reads its table, before
the alignment: a row its policy drops (`missing = "drop"`, `out_of_range = "drop"`) is
simply not in its id set, so that customer is not shared and leaves the run for every
party without anyone learning which id it was. After the alignment the party counts
over the shared customers (`PartyView`), and for each of its imputed numeric features
with gaps gives the median of the shared customers' present values, read off its own
histogram over the public bins as the horizontal run reads the summed one
(`quantiles.summarize`): only the owning party holds the column, so its median is an
aggregate of its own. The server sets it as `impute_value` of that party's block schema.

Fields are laid out over every party's features (all numeric features in party order,
then all categorical ones; this party's at its offsets, zeros elsewhere), so the sum over
parties is the joined reply and secure aggregation carries it like any phase.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from fedseg.common import quantiles
from fedseg.common.messages import Message, NDArray, SchemaRequest
from fedseg.common.phases.base import DPRelease, LocalData, Phase
from fedseg.common.phases.registry import register
from fedseg.common.preprocessing import LocalTable
from fedseg.common.schema import FeatureSchema
from fedseg.common.table_policy import Coverage
from fedseg.common.vertical import party

MEDIAN_FLOOR = party.PROFILE_FLOOR  # fewest present values a median is read from


class VCoverageRequest(SchemaRequest):
    """Where this party's features sit among all parties' (numeric, then categorical)."""

    phase: Literal["vertical_coverage"] = "vertical_coverage"
    n_shared: int = Field(ge=1)
    num_start: int = Field(ge=0)
    num_width: int = Field(ge=0)  # numeric features of all parties
    cat_start: int = Field(ge=0)
    cat_width: int = Field(ge=0)
    slot: int = Field(ge=0)  # this party's place among `n_parties`
    n_parties: int = Field(ge=2)
    bound: float = Field(default=1.0, ge=1.0)  # public bound of a median (largest |lower|, |upper|)


class VCoverageReply(Message):
    phase: Literal["vertical_coverage"] = "vertical_coverage"
    missing: NDArray  # (num_width + cat_width,) gaps of shared customers and of rows the party dropped
    imputed: NDArray  # (num_width + cat_width,) gaps of shared customers filled
    dropped: NDArray  # (num_width + cat_width,) rows the party left out for this feature
    clipped: NDArray  # (num_width,) shared customers' values clipped to the public bounds
    imputes: NDArray  # (num_width,) 1 where this party gives a median (gaps in its table)
    medians: NDArray  # (num_width,) that median, original units
    left_out: NDArray  # (n_parties,) rows this party's policies left out, at its slot


def medians(table: LocalTable, schema: FeatureSchema, gaps: np.ndarray) -> np.ndarray:
    """(n_numeric,) the public-bin median of the present values of each feature flagged
    in `gaps`, original units (NaN elsewhere); refused from fewer than MEDIAN_FLOOR values."""
    out = np.full(len(schema.numeric), np.nan)
    flagged = [i for i, f in enumerate(schema.numeric) if gaps[i] and f.missing == "impute" and f.bounded]
    if not flagged:
        return out
    bins = quantiles.local_bins(table, schema, flagged)
    found = []
    for j, i in enumerate(flagged):  # loop over features, not records
        f = schema.numeric[i]
        counts = np.bincount(bins[:, j][bins[:, j] >= 0], minlength=f.n_bins)
        if counts.sum() < MEDIAN_FLOOR:
            raise party.VerticalError("a median would be read from fewer values than this party's floor")
        found.append(quantiles.summarize(f, counts))
    filled = quantiles.with_impute_values(schema, found, only_gaps=False)
    out[flagged] = [filled.numeric[i].impute_value for i in flagged]
    return out


def public_bound(schema: FeatureSchema) -> float:
    """The largest |lower| or |upper| of the block's numeric features (at least 1): no
    median exceeds it, so the server's `bound` must reach it."""
    return max([1.0, *(abs(v) for f in schema.numeric for v in (f.lower, f.upper) if v is not None)])


def _place(values: np.ndarray, start: int, width: int) -> np.ndarray:
    out = np.zeros(width)
    party.check_placement(start, len(values), width)
    out[start:start + len(values)] = values
    return out


def answer(req: VCoverageRequest, data: LocalData) -> VCoverageReply:
    view = party.view_of(data)
    schema, p = req.schema_, len(req.schema_.numeric)
    table = view.table(schema)
    if table.n_rows != req.n_shared:
        raise party.VerticalError("the request's count of shared customers is not this party's")
    full = view.base.table(schema).coverage or Coverage.complete(table.n_rows, schema)
    cov = table.coverage or Coverage.complete(table.n_rows, schema)
    gaps = np.asarray(full.missing[:p]) > 0  # any gap in the table: every row's value must be filled
    med = medians(table, schema, gaps)
    if public_bound(schema) > req.bound:  # scales too small: a sum that overflows would be an oracle
        raise party.VerticalError("the request's bound is below this party's public bounds")

    def joined(counts: np.ndarray) -> np.ndarray:
        counts = np.asarray(counts, dtype=float)
        return np.concatenate([_place(counts[:p], req.num_start, req.num_width),
                               _place(counts[p:], req.cat_start, req.cat_width)])

    if req.slot >= req.n_parties:
        raise party.VerticalError("this party's slot is outside the request")
    slot = np.zeros(req.n_parties)
    slot[req.slot] = cov.rows - cov.kept
    return VCoverageReply(missing=joined(cov.missing), imputed=joined(cov.imputed), dropped=joined(cov.dropped),
                          clipped=_place(np.asarray(cov.clipped, dtype=float), req.num_start, req.num_width),
                          imputes=_place((~np.isnan(med)).astype(float), req.num_start, req.num_width),
                          medians=_place(np.nan_to_num(med), req.num_start, req.num_width), left_out=slot)


def _layout(r: VCoverageRequest) -> dict[str, tuple[int, ...]]:
    f = r.num_width + r.cat_width
    return {"missing": (f,), "imputed": (f,), "dropped": (f,), "clipped": (r.num_width,),
            "imputes": (r.num_width,), "medians": (r.num_width,), "left_out": (r.n_parties,)}


def _bounds(r: VCoverageRequest) -> dict[str, float]:
    return {**{tag: 1.0 for tag in _layout(r)}, "medians": r.bound}  # counts: one per customer and entry


def _no_dp(req: VCoverageRequest, schema: FeatureSchema) -> DPRelease:
    return DPRelease("vertical", 0.0, {})


PHASE = register(Phase("vertical_coverage", VCoverageRequest, VCoverageReply, answer, _layout, _bounds, _no_dp))
