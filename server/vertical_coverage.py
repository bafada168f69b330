"""The coverage step of a vertical run on the server: one exchange after the alignment,
each party's gaps, clipped and dropped values summed into the joined counts; the medians
the parties give become `impute_value` of their block schemas; the counts go into the
artifact under the same disclosure control as the horizontal coverage section
(`server.coverage_phase.coverage_section`: a non-zero count below min-segment-size is
withheld), each feature labelled with its party."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from fedseg.common.messages import Message
from fedseg.common.schema import FeatureSchema
from fedseg.common.table_policy import Coverage
from fedseg.common.vertical.coverage import VCoverageReply, VCoverageRequest, public_bound
from fedseg.server.coverage_phase import _shown, coverage_section


def joined_schema(blocks: list[FeatureSchema]) -> FeatureSchema:
    """Every party's numeric features in party order, then every categorical one."""
    return blocks[0].model_copy(update={"numeric": tuple(f for b in blocks for f in b.numeric),
                                        "categorical": tuple(c for b in blocks for c in b.categorical)})


def coverage_requests(blocks: Mapping[int, FeatureSchema], n_shared: int) -> dict[int, VCoverageRequest]:
    """Each party's request, its features placed among all parties'."""
    order = list(blocks)
    nums = np.cumsum([0] + [len(blocks[n].numeric) for n in order]).tolist()
    cats = np.cumsum([0] + [len(blocks[n].categorical) for n in order]).tolist()
    bound = max(public_bound(b) for b in blocks.values())
    return {nid: VCoverageRequest(schema=blocks[nid], n_shared=n_shared, num_start=nums[i], num_width=nums[-1],
                                  cat_start=cats[i], cat_width=cats[-1], slot=i, n_parties=len(order), bound=bound)
            for i, nid in enumerate(order)}


def with_medians(blocks: Mapping[int, FeatureSchema], reply: VCoverageReply) -> dict[int, FeatureSchema]:
    """Each block schema with `gaps` and `impute_value` set where its party gave a median."""
    out, start = {}, 0
    for nid, schema in blocks.items():
        numeric = []
        for i, f in enumerate(schema.numeric):  # loop over features, not records
            given = reply.imputes[start + i] > 0.5 and f.missing == "impute"
            numeric.append(f.model_copy(update={"gaps": True, "impute_value": float(reply.medians[start + i])})
                           if given else f)
        out[nid] = schema.model_copy(update={"numeric": tuple(numeric)})
        start += len(schema.numeric)
    return out


def vertical_coverage(exchange: Callable[[Mapping[int, Message]], Message], blocks: Mapping[int, FeatureSchema],
                      names: Mapping[int, str], n_shared: int, floor: int) -> tuple[dict[int, FeatureSchema], dict]:
    """One exchange: the block schemas the parties use from now on, and the artifact's
    coverage section."""
    reply = exchange(coverage_requests(blocks, n_shared))
    filled = with_medians(blocks, reply)
    left_out = np.asarray(reply.left_out)
    total = Coverage(rows=n_shared + int(left_out.sum()), kept=n_shared, missing=reply.missing,
                     imputed=reply.imputed, dropped=reply.dropped, clipped=reply.clipped)
    section = coverage_section(total, joined_schema(list(filled.values())), floor)
    del section["rows"], section["kept"]  # rows read are each party's own: only what it left out is summed
    party_of = {f: names[nid] for nid, b in blocks.items() for f in (*b.numeric_names, *b.categorical_names)}
    for name, entry in section["features"].items():
        entry["party"] = party_of[name]
    section.update(shared_customers=n_shared,
                   parties={names[nid]: {"rows_dropped": _shown(left_out[i], floor)} for i, nid in enumerate(blocks)})
    return filled, section
