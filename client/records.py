"""How fedseg bytes ride in a Flower message: one ConfigRecord with a bytes payload.

Shared by the ClientApp and the server's grid transport, so both sides agree on the
envelope; the payload itself is `common.wire`.
"""

from __future__ import annotations

from flwr.app import ConfigRecord, RecordDict

from fedseg.common.wire import WireError

MESSAGE_TYPE = "query.fedseg"
RECORD = "fedseg"


def to_content(payload: bytes) -> RecordDict:
    return RecordDict({RECORD: ConfigRecord({"payload": payload})})


def from_content(content: RecordDict | None) -> bytes:
    """The payload bytes of a fedseg message, or WireError if it has none."""
    record = content.config_records.get(RECORD) if content is not None else None
    payload = record.get("payload") if record is not None else None
    if not isinstance(payload, bytes):
        raise WireError(f"message has no '{RECORD}' config record with a bytes payload")
    return payload
