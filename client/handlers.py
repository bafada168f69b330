"""What a node does with each request: Flower-free, so it is tested without Flower.

A phase request is answered by its phase's handler (`fedseg.common.phases`, found
through the registry) on the node's data; the secure-mode wrappers mask that reply.
Replies hold aggregates only. Before it reads its data the node checks the request
against its own policy (`client/guard.py`, `client/node_dp.py`); any failure becomes a
`NodeFailure` carrying one fixed code, while the detail (file, column, rows, values)
goes only to the node's own log (logger "fedseg.client"). After a failure in a secure
run the node answers nothing more in that run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any


from fedseg.client import guard, node_dp, node_ledger
from fedseg.client.data import DataError
from fedseg.client.dedup_view import deduped
from fedseg.client.guard import Refused
from fedseg.client.node_data import NodeData
from fedseg.client.policy import NodePolicy
from fedseg.client.psi_node import PSI_HANDLERS
from fedseg.client.trust import node_trust
from fedseg.client.vertical_node import VERTICAL_HANDLERS
from fedseg.common.messages import FAILURE_CODES, NodeFailure, ReadyReply
from fedseg.common.phases.registry import phase_for
from fedseg.common.vertical.party import vertical_view
from fedseg.common.dp.noise import add_noise_shares
from fedseg.common.secagg.fixed_point import FixedPointOverflowError
from fedseg.common.secagg.messages import SecAggError
from fedseg.common.secagg.node import SecAggClient
from fedseg.common.secure_layout import flatten, reply_layout, vector_lengths
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
    RunEndRequest,
    ValidateRequest,
)

log = logging.getLogger("fedseg.client")


def handle(request: Request, data: NodeData, state: dict[str, bytes] | None = None, node_id: int = 0,
           policy: NodePolicy | None = None) -> Reply:
    """Answer one request; any refusal or data problem becomes a coded `NodeFailure`.

    `state` keeps the node's secure-aggregation keys between messages (Flower's
    `context.state`); `node_id` is this node's id as the server knows it; `policy` is
    the node's own privacy policy (`client/policy.py`), never the server's word.
    """
    policy = policy or NodePolicy()
    state = state if state is not None else {}
    try:
        if type(request) in PSI_HANDLERS:
            return PSI_HANDLERS[type(request)](request, data, state, node_id, policy)
        if type(request) in VERTICAL_HANDLERS:
            return VERTICAL_HANDLERS[type(request)](request, data, state, node_id, policy)
        data = vertical_view(deduped(data, state), state)  # after a PSI: owned rows, or aligned ones
        if type(request) in _SECURE:
            return _SECURE[type(request)](request, data, state, node_id, policy)
        guard.check_plaintext(request, policy)
        return phase_for(request).answer(request, data)
    except (Refused, DataError, SecAggError, FixedPointOverflowError) as exc:
        code = failure_code(exc)
        log.error("fedseg: %s request not answered, the server gets %r: %s", request.phase, code, exc)
        guard.mark_failed(state, _run_id(state))
        data.forget()  # this node is out of the run: its cached table goes now
        return NodeFailure(code=code)


def failure_code(exc: Exception) -> str:
    """The code the server sees: the exception's own when it has one of the fixed set."""
    code = getattr(exc, "code", None)
    if code in FAILURE_CODES:
        return code
    if isinstance(exc, DataError):
        return "bad-table"
    if isinstance(exc, FixedPointOverflowError):
        return "overflow"
    return "protocol-error"


# ---- secure mode ----------------------------------------------------------------------

_STATE_KEY = "secagg"


def _client(state: dict[str, bytes], policy: NodePolicy) -> SecAggClient:
    if _STATE_KEY not in state:
        raise SecAggError("no secure-aggregation state on this node: set-up did not happen here")
    client = SecAggClient.from_bytes(state[_STATE_KEY], trust=node_trust(policy))
    guard.check_not_failed(state, client.run_facts[0])
    return client


def _run_id(state: dict[str, bytes]) -> str:
    """The secure run this node is in ("" before any set-up)."""
    return SecAggClient.from_bytes(state[_STATE_KEY]).run_facts[0] if _STATE_KEY in state else ""


def _validate(req: ValidateRequest, data: NodeData, state: dict, node_id: int, policy: NodePolicy) -> ReadyReply:
    guard.check_schema(req, policy)
    guard.check_rows(data.table(req.schema_).n_rows, policy)
    return ReadyReply()


def _run_end(req: RunEndRequest, data: NodeData, state: dict, node_id: int, policy: NodePolicy) -> ReadyReply:
    """The run is over: its cached table goes (at worst a lying server costs a re-read)."""
    data.forget()
    return ReadyReply()


def _step(state: dict, client: SecAggClient, step: Callable[[SecAggClient], Any]) -> Any:
    """Run one protocol step and keep the client's new state on the node."""
    out = step(client)
    state[_STATE_KEY] = client.to_bytes()
    return out


def _setup(req: SecureSetupRequest, data: NodeData, state: dict, node_id: int, policy: NodePolicy) -> SecureKeysReply:
    guard.check_not_failed(state, req.setup.run_id)
    client = SecAggClient(node_id, trust=node_trust(policy))
    return SecureKeysReply(keys=_step(state, client, lambda c: c.advertise_keys(req.setup)))


def _broadcast(req: SecureBroadcastRequest, data: NodeData, state: dict, node_id: int,
               policy: NodePolicy) -> SecureSharesReply:
    return SecureSharesReply(shares=_step(state, _client(state, policy), lambda c: c.share_keys(req.broadcast)))


def _secure_round(req: SecureRoundRequest, data: NodeData, state: dict, node_id: int, policy: NodePolicy) -> Reply:
    client = _client(state, policy)
    _check_round(req, data, client, policy)
    reply = phase_for(req.inner).answer(req.inner, data)
    layout = {t: s for t, s in reply_layout(req.inner).items() if t in req.round.vectors}
    vectors = flatten(reply, layout, req.scales)
    stds = node_dp.share_stds(req.noise, threshold=client.run_facts[1], policy=policy)
    _, _, frac_bits, n_nodes = client.run_facts
    # this node's share of the DP noise, a discrete Gaussian on the grid the masked sum adds
    encoded = add_noise_shares(client.encode(vectors), stds, req.scales, frac_bits=frac_bits, max_nodes=n_nodes)
    masked = _step(state, client, lambda c: c.mask_encoded(req.round, encoded, noised=bool(req.noise)))
    return SecureMaskedReply(masked=masked)


def _check_round(req: SecureRoundRequest, data: NodeData, client: SecAggClient, policy: NodePolicy) -> None:
    """The node's policy on one secure round; under a DP limit the release is booked last."""
    guard.check_schema(req.inner, policy)
    if set(req.round.vectors) - set(vector_lengths(reply_layout(req.inner))):
        raise Refused("bad-request", f"round asks for fields {sorted(req.round.vectors)} the phase has not")
    rho = node_dp.release_rho(req) if policy.requires_dp else 0.0
    run_id, _, frac_bits, n_nodes = client.run_facts
    guard.check_scales(req, policy, frac_bits=frac_bits, n_nodes=n_nodes)
    guard.check_rows(data.table(req.inner.schema_).n_rows, policy)
    if policy.requires_dp:
        node_ledger.charge(policy, run_id, rho, req.inner.phase)


def _secure_check(req: SecureCheckRequest, data: NodeData, state: dict, node_id: int,
                  policy: NodePolicy) -> SecureCheckReply:
    return SecureCheckReply(signature=_step(state, _client(state, policy), lambda c: c.sign_survivors(req.unmask)))


def _secure_unmask(req: SecureUnmaskRequest, data: NodeData, state: dict, node_id: int,
                   policy: NodePolicy) -> SecureUnmaskReply:
    return SecureUnmaskReply(shares=_step(state, _client(state, policy), lambda c: c.unmask(req.unmask)))


_SECURE = {
    ValidateRequest: _validate,
    RunEndRequest: _run_end,
    SecureSetupRequest: _setup,
    SecureBroadcastRequest: _broadcast,
    SecureRoundRequest: _secure_round,
    SecureCheckRequest: _secure_check,
    SecureUnmaskRequest: _secure_unmask,
}
