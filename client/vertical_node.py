"""A party's handlers of the two alignment exchanges of a vertical run
(`common.vertical.align`), with its pinned schema and its record limit; dispatched by
`client.handlers.handle` like the PSI's, before any phase."""

from __future__ import annotations

from collections.abc import Callable

from fedseg.client import guard
from fedseg.client.policy import NodePolicy
from fedseg.common.vertical import align
from fedseg.common.vertical.messages import VerticalAlignReply, VerticalAlignRequest, VerticalMatchReply
from fedseg.common.vertical.messages import VerticalMatchRequest, VerticalPartyReply, VerticalWhoRequest
from fedseg.client.trust import node_trust


def _who(req: VerticalWhoRequest, data, state: dict, node_id: int, policy: NodePolicy) -> VerticalPartyReply:
    """The party a node is, is its roster identity: the server cannot rename it."""
    return VerticalPartyReply(party=node_trust(policy).name)


def _match(req: VerticalMatchRequest, data, state: dict, node_id: int, policy: NodePolicy) -> VerticalMatchReply:
    guard.check_schema(req, policy)
    sealed, id_format = align.match(req, state, ids=data.table(req.schema_).ids)
    return VerticalMatchReply(sealed=sealed, id_format=id_format)


def _align(req: VerticalAlignRequest, data, state: dict, node_id: int, policy: NodePolicy) -> VerticalAlignReply:
    guard.check_schema(req, policy)
    return VerticalAlignReply(shared=align.align(req, state, ids=data.table(req.schema_).ids).n_rows_shared)


VERTICAL_HANDLERS: dict[type, Callable] = {VerticalWhoRequest: _who, VerticalMatchRequest: _match, VerticalAlignRequest: _align}

