"""A vertical party's label write-back: its shared customers and their final segments,
written on the node after the vertical profile; the labels never leave it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fedseg.client.source import LABEL_KEYS, write_node_labels
from fedseg.common.messages import NodeFailure
from fedseg.common.vertical.party import labelled_ids, vertical_view
from fedseg.common.vertical.phases import VProfileRequest


def write_vertical_labels(node_config: Mapping[str, Any], request: Any, reply: Any, data, state: dict) -> str | None:
    """Label write-back of a party: after the vertical profile (the final labels), its
    shared customers and their segments, where `labels-path`/`labels-table` say. The
    labels stay on the node; None when nothing was asked or the request was another."""
    inner = getattr(request, "inner", request)
    if not isinstance(inner, VProfileRequest) or isinstance(reply, NodeFailure):
        return None
    if not any(node_config.get(k) for k in LABEL_KEYS):
        return None
    ids, labels = labelled_ids(vertical_view(data, state), inner.schema_)
    return write_node_labels(node_config, inner.schema_.id, ids, labels)
