"""The fedseg ClientApp: decode the request, answer from local aggregates, encode."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import logging

from flwr.app import ConfigRecord, Context, Message
from flwr.clientapp import ClientApp

from fedseg.client.handlers import handle
from fedseg.client.policy import node_policy
from fedseg.client.records import from_content, to_content
from fedseg.client.source import label_after_profile, node_data
from fedseg.client.vertical_labels import write_vertical_labels
from fedseg.common.messages import NodeFailure
from fedseg.common.phases.profile import ProfileRequest
from fedseg.common.wire import SecureRoundRequest, WireError, decode_request, encode


STATE_RECORD = "fedseg-state"  # secure-aggregation keys, kept on the node between messages
log = logging.getLogger("fedseg.client")


def write_labels_if_final(node_config: Mapping[str, Any], request: Any, reply: Any, data: Any,
                          run_id: int | None = None) -> None:
    """After the profile phase (the final model), write this node's labels where its node
    config says, the run id in the file name; a failed write is logged on the node and
    never changes the reply."""
    inner = request.inner if isinstance(request, SecureRoundRequest) else request
    if not isinstance(inner, ProfileRequest) or isinstance(reply, NodeFailure):
        return
    try:
        where = label_after_profile(node_config, inner, data, run_id)
    except Exception as exc:  # noqa: BLE001 - the node's log is the place for it
        log.error("fedseg: could not write segment labels: %s", exc)
        return
    if where:
        log.warning("fedseg: segment labels written to %s (they stay on this node)", where)


def _vertical_labels(node_config: Mapping[str, Any], request: Any, reply: Any, data: Any, state: dict) -> None:
    """A vertical party's label write-back (`client.vertical_node`); errors stay in the node's log."""
    try:
        where = write_vertical_labels(node_config, request, reply, data, state)
    except Exception as exc:  # noqa: BLE001 - the node's log is the place for it
        log.error("fedseg: could not write segment labels: %s", exc)
        return
    if where:
        log.warning("fedseg: segment labels written to %s (they stay on this node)", where)


def make_client_app(run_config_overrides: Mapping[str, Any] | None = None) -> ClientApp:
    """A ClientApp; the overrides stand in for run-config keys (the simulate driver's data-dir)."""
    overrides = dict(run_config_overrides or {})
    client_app = ClientApp()

    @client_app.query("fedseg")
    def _query(msg: Message, context: Context) -> Message:
        """One request in, one reply of aggregates out; bad input becomes a NodeFailure."""
        try:
            request = decode_request(from_content(msg.content))
        except WireError as exc:
            log.error("fedseg: undecodable request: %s", exc)
            return Message(to_content(encode(NodeFailure(code="bad-request"))), reply_to=msg)
        data = node_data(dict(context.node_config), {**dict(context.run_config), **overrides}, run=str(context.run_id))
        saved = context.state.config_records.get(STATE_RECORD)
        state = {k: v for k, v in (saved or {}).items() if isinstance(v, bytes)}
        policy = node_policy(dict(context.node_config), {**dict(context.run_config), **overrides})
        reply = handle(request, data, state, context.node_id, policy)
        context.state.config_records[STATE_RECORD] = ConfigRecord(state)
        write_labels_if_final(dict(context.node_config), request, reply, data, msg.metadata.run_id)
        _vertical_labels(dict(context.node_config), request, reply, data, state)
        return Message(to_content(encode(reply)), reply_to=msg)

    return client_app


app = make_client_app()
