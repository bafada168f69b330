"""The node's handlers of the PSI exchanges (`common.psi.protocol`), with its own
trust (identity key, pinned roster) and its pinned schema; dispatched by
`client.handlers.handle` before any phase."""

from __future__ import annotations

from collections.abc import Callable

from fedseg.client import guard
from fedseg.client.policy import NodePolicy
from fedseg.client.trust import node_trust
from fedseg.common.messages import ReadyReply
from fedseg.common.psi import protocol
from fedseg.common.psi.messages import PsiBlindRequest, PsiCrossRequest, PsiKeysRequest, PsiMatchRequest, PsiSealedReply


def _ids(req, data):
    return data.table(req.schema_).ids


def _keys(req: PsiKeysRequest, data, state: dict, node_id: int, policy: NodePolicy):
    guard.check_schema(req, policy)
    return protocol.keys(req, state, node_id=node_id, trust=node_trust(policy))


def _blind(req: PsiBlindRequest, data, state: dict, node_id: int, policy: NodePolicy) -> PsiSealedReply:
    guard.check_schema(req, policy)
    ids = _ids(req, data)
    guard.check_rows(len(ids), policy)
    return PsiSealedReply(sealed=protocol.blind(req, state, ids=ids, trust=node_trust(policy)))


def _cross(req: PsiCrossRequest, data, state: dict, node_id: int, policy: NodePolicy) -> PsiSealedReply:
    return PsiSealedReply(sealed=protocol.cross(req, state, max_rows=policy.max_records))


def _match(req: PsiMatchRequest, data, state: dict, node_id: int, policy: NodePolicy) -> ReadyReply:
    guard.check_schema(req, policy)
    protocol.match(req, state, ids=_ids(req, data))
    return ReadyReply()


PSI_HANDLERS: dict[type, Callable] = {
    PsiKeysRequest: _keys, PsiBlindRequest: _blind, PsiCrossRequest: _cross, PsiMatchRequest: _match,
}
