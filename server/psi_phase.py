"""The server's part in deduplication: relay the four PSI exchanges (`common.psi`) and
release the overlap counts.

The server only forwards: each node's signed channel key to every node, then each
sealed point list to its one recipient. Every node of the session must answer every
exchange: a node lost half-way would leave its peers with owners that are not in the
run, so the PSI starts again over the nodes left (a new session, fresh keys) — nothing
has been released yet. Afterwards the nodes' overlap counts come back summed (under
secure aggregation when the run is secure) and are released only at or above
min-segment-size.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from fedseg.common.config import RunConfig
from fedseg.common.messages import ReadyReply
from fedseg.common.phases.dedup import DedupRequest
from fedseg.common.psi.messages import PsiBlindRequest, PsiCrossRequest, PsiKeyReply, PsiKeysRequest
from fedseg.common.psi.messages import PsiMatchRequest, PsiSealedReply
from fedseg.common.schema import FeatureSchema

SendEach = Callable[[Mapping[int, object], type], dict[int, object]]
ATTEMPTS = 3


class PsiFailed(RuntimeError):
    """The nodes could not complete a PSI session."""


def _relay(replies: Mapping[int, PsiSealedReply], nodes: list[int], to: int) -> dict[int, bytes] | None:
    """The lists sealed for `to`, one from each other node; None if one is missing."""
    got = {s: replies[s].sealed.get(to) for s in nodes if s != to}
    return None if any(v is None for v in got.values()) else got


def psi_session(send_each: SendEach, schema: FeatureSchema | Mapping[int, FeatureSchema], nodes: list[int],
                match: tuple[type, type] = (PsiMatchRequest, ReadyReply)) -> tuple[str, dict[int, object]] | None:
    """One PSI session over `nodes` (one schema, or each node's own); its name and the
    replies to the last exchange (`match`: request and reply types) when every node
    finished, else None."""
    per = schema if isinstance(schema, Mapping) else {n: schema for n in nodes}
    session = f"psi-{os.urandom(12).hex()}"
    keys = send_each({n: PsiKeysRequest(schema=per[n], session=session, node_ids=tuple(nodes)) for n in nodes},
                     PsiKeyReply)
    if set(keys) != set(nodes):
        return None
    adverts = dict(public_keys={n: r.public_key for n, r in keys.items()},
                   identities={n: r.identity for n, r in keys.items()},
                   signatures={n: r.signature for n, r in keys.items()})
    blinded = send_each({n: PsiBlindRequest(schema=per[n], session=session, **adverts) for n in nodes},
                        PsiSealedReply)
    step = {n: _relay(blinded, nodes, n) for n in nodes} if set(blinded) == set(nodes) else {}
    if not step or any(v is None for v in step.values()):
        return None
    crossed = send_each({n: PsiCrossRequest(schema=per[n], session=session, sealed=step[n]) for n in nodes},
                        PsiSealedReply)
    step = {n: _relay(crossed, nodes, n) for n in nodes} if set(crossed) == set(nodes) else {}
    if not step or any(v is None for v in step.values()):
        return None
    matched = send_each({n: match[0](schema=per[n], session=session, sealed=step[n]) for n in nodes}, match[1])
    return (session, matched) if set(matched) == set(nodes) else None


def run_psi(send_each: SendEach, schema: FeatureSchema, active: Callable[[], list[int]]) -> tuple[str, int]:
    """A completed PSI session over the nodes still active, and how many took part."""
    for _ in range(ATTEMPTS):
        nodes = sorted(active())
        if len(nodes) < 2:
            raise PsiFailed(f"deduplication needs at least two nodes, {len(nodes)} left")
        done = psi_session(send_each, schema, nodes)
        if done is not None:
            return done[0], len(nodes)
    raise PsiFailed(f"the private set intersection did not complete in {ATTEMPTS} attempts")


def deduplicate(send_each: SendEach, exchange: Callable, schema: FeatureSchema, config: RunConfig,
                active: Callable[[], list[int]]) -> dict:
    """The PSI, then the overlap counts summed over nodes (none under DP: they would
    need budget); returns the model's `deduplication` section."""
    session, units = run_psi(send_each, schema, active)
    counts = None if config.dp else exchange(DedupRequest(schema=schema, session=session))
    return overlap_section(None if counts is None else counts.shared, None if counts is None else counts.removed,
                           units=units, floor=config.min_segment_size)


def overlap_section(shared: int | None, removed: int | None, *, units: int, floor: int) -> dict:
    """What the model says about customers shared between units: the two sums, each only
    at or above the disclosure floor (None otherwise, or under DP where none is sent)."""
    def released(v: int | None) -> int | None:
        return int(v) if v is not None and v >= floor else None
    return {
        "units": units,
        "shared_customers": released(shared),
        "duplicate_rows_removed": released(removed),
        "rule": f"each customer held by several units enters every sum once, from one owner; counts below "
                f"{floor} are not released",
    }
