"""The fedseg ClientApp: decode the request, answer from local aggregates, encode."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flwr.app import ConfigRecord, Context, Message
from flwr.clientapp import ClientApp

from client.handlers import handle
from client.records import from_content, to_content
from client.source import node_data
from common.wire import NodeFailure, WireError, decode_request, encode


STATE_RECORD = "fedseg-state"  # secure-aggregation keys, kept on the node between messages


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
            return Message(to_content(encode(NodeFailure(error=str(exc)))), reply_to=msg)
        data = node_data(dict(context.node_config), {**dict(context.run_config), **overrides})
        saved = context.state.config_records.get(STATE_RECORD)
        state = {k: v for k, v in (saved or {}).items() if isinstance(v, bytes)}
        reply = handle(request, data, state, context.node_id)
        context.state.config_records[STATE_RECORD] = ConfigRecord(state)
        return Message(to_content(encode(reply)), reply_to=msg)

    return client_app


app = make_client_app()
