"""Secure aggregation on the server side: every phase's reply reaches the server only as
a sum over the surviving nodes.

Set-up costs two exchanges once per run (key advertisement, encrypted key shares); each
phase exchange then costs two: masked upload, then unmasking (Bonawitz et al. 2017 with
per-round keys derived from one key agreement per run, see PRIVACY.md). A round in
which nodes dropped costs one more: the survivors sign the survivor list first. After
the first released round the cohort may shrink only under DP; the nodes enforce it, and
the server stops the run with a clear message rather than asking them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping

from fedseg.common.config import RunConfig
from fedseg.common.secagg.identity import too_small
from fedseg.common.secagg.messages import SecAggError, UnmaskRequest
from fedseg.common.secagg.server import SecAggServer
from fedseg.common.phases.registry import phase_for
from fedseg.common.secure_layout import layout_and_bounds, tag_scales, unflatten, vector_lengths
from fedseg.common.wire import (
    Reply,
    Request,
    SecureBroadcastRequest,
    SecureCheckReply,
    SecureCheckRequest,
    SecureKeysReply,
    SecureMaskedReply,
    SecureRoundRequest,
    SecureSetupRequest,
    SecureSharesReply,
    SecureUnmaskReply,
    SecureUnmaskRequest,
)

SendEach = Callable[[Mapping[int, Request], type], dict[int, Reply]]


class SecureAggregationFailed(RuntimeError):
    """Too few nodes survived a round to unmask the sum, or the cohort shrank without DP."""


def cohort_shrank(cohort: int, now: int) -> SecureAggregationFailed:
    return SecureAggregationFailed(
        f"the cohort shrank from {cohort} to {now} nodes after the first release; a secure run "
        "without differential privacy cannot continue over a smaller cohort (the difference of "
        "two sums would be the missing nodes' data, and every node refuses it): rerun, or use --epsilon"
    )


def threshold_for(n_nodes: int, max_dropout: float) -> int:
    """Shamir threshold: tolerate `max_dropout` of the nodes, never fewer than a majority."""
    return max(2, n_nodes // 2 + 1, n_nodes - math.floor(max_dropout * n_nodes))


class SecureChannel:
    """Runs secure sums over the orchestrator's per-node send (which drops failing nodes)."""

    def __init__(self, config: RunConfig, send_each: SendEach, nodes: list[int], frac_bits: int = 24) -> None:
        self.config = config
        self.send_each = send_each
        self.frac_bits = frac_bits
        self.server = SecAggServer(
            run_id=f"fedseg-{os.urandom(8).hex()}", threshold=threshold_for(len(nodes), config.max_dropout),
            frac_bits=frac_bits,
        )
        self.roster = list(nodes)
        self.cohort: tuple[int, ...] = ()  # survivors of the first released round

    def setup(self) -> list[int]:
        """Key agreement, once per run; returns the nodes that completed it."""
        if too_small(len(self.roster)):
            raise SecureAggregationFailed(too_small(len(self.roster)))
        request = SecureSetupRequest(setup=self.server.setup_request(self.roster))
        for reply in self.send_each({n: request for n in self.roster}, SecureKeysReply).values():
            self.server.receive_keys(reply.keys)
        broadcast = SecureBroadcastRequest(broadcast=self.server.key_broadcast())
        nodes = sorted(self.server._keys)  # the nodes that advertised keys
        for reply in self.send_each({n: broadcast for n in nodes}, SecureSharesReply).values():
            self.server.receive_setup_shares(reply.shares)
        self.server.finish_setup()
        return list(self.server.active)

    def aggregate(
        self, request: Request, expect: type, noise: dict[str, float | list[float]] | None = None,
        per_node: Mapping[int, Request] | None = None,
    ) -> tuple[Reply, list[int]]:
        """The phase reply summed over survivors, and the nodes still active afterwards.

        With `noise` (DP), only those fields are released, each node adding its share.
        `per_node` gives a node its own request of the same layout (a vertical party's
        block schema); `request` then only sets the layout and scales."""
        layout, bounds = layout_and_bounds(request)
        scales = tag_scales(
            bounds, max_records=self.config.max_records_per_node, frac_bits=self.frac_bits,
            max_nodes=len(self.server.roster),
        )
        lengths = vector_lengths(layout)
        if self.cohort and not noise and set(self.server.active) != set(self.cohort):
            raise cohort_shrank(len(self.cohort), len(self.server.active))
        if noise:
            lengths = {t: n for t, n in lengths.items() if t in noise}
        rounds = self.server.round_requests(lengths)
        wrapped = {
            n: SecureRoundRequest(inner=(per_node or {}).get(n, request), round=r, scales=scales, noise=noise or {})
            for n, r in rounds.items()
        }
        for nid, reply in self.send_each(wrapped, SecureMaskedReply).items():
            try:
                self.server.receive_masked(reply.masked)
            except SecAggError:
                continue  # treated as a dropout of this round
        try:
            unmask = self.server.unmask_request()
        except SecAggError as exc:
            raise SecureAggregationFailed(str(exc)) from exc
        if unmask.dropped:
            if self.cohort and not noise:
                raise cohort_shrank(len(self.cohort), len(unmask.survivors))
            unmask = self._signed(unmask)
        survivors = list(unmask.signatures or unmask.survivors)
        request_unmask = SecureUnmaskRequest(unmask=unmask)
        for reply in self.send_each({n: request_unmask for n in survivors}, SecureUnmaskReply).values():
            try:
                self.server.receive_unmask_shares(reply.shares)
            except SecAggError:
                continue  # its shares are not used; it leaves the run after this round
        try:
            result = self.server.finish_round()
        except SecAggError as exc:
            raise SecureAggregationFailed(str(exc)) from exc
        self.cohort = self.cohort or result.survivors
        sums, reply_type = result.sums, phase_for(request).reply
        if noise:  # noisy counts may dip below zero; a count is never negative
            sums = {t: (v.clip(min=0) if t in reply_type.nonnegative_counts else v) for t, v in sums.items()}
        summed = unflatten(reply_type, sums, layout, scales)
        if not isinstance(summed, expect):
            raise SecureAggregationFailed(f"expected {expect.__name__}, built {type(summed).__name__}")
        return summed, list(self.server.active)

    def _signed(self, unmask: UnmaskRequest) -> UnmaskRequest:
        """The extra exchange of a round with dropouts: the survivors sign the list."""
        check = SecureCheckRequest(unmask=unmask)
        for reply in self.send_each({n: check for n in unmask.survivors}, SecureCheckReply).values():
            try:
                self.server.receive_survivors_signature(reply.signature)
            except SecAggError:
                continue  # its signature is not counted
        try:
            return self.server.signed_unmask_request()
        except SecAggError as exc:
            raise SecureAggregationFailed(str(exc)) from exc
