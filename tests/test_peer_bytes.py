"""PeerBytes: the packed per-peer byte values of a secure-aggregation node's state."""

import pytest
from pydantic import ValidationError

from fedseg.common.secagg.peer_bytes import PeerBytes


def test_round_trip_through_json_keeps_every_value():
    values = {42: b"B" * 4, 7: b"A" * 4, 3000: b"CDEF"}

    packed = PeerBytes.pack(values, width=4)
    restored = PeerBytes.model_validate_json(packed.model_dump_json())

    assert restored.ids == (7, 42, 3000)  # sorted
    assert restored.data == b"AAAA" + b"BBBB" + b"CDEF"  # values back to back in id order
    assert dict(restored.items()) == values
    assert restored[42] == b"BBBB" and 3000 in restored and 8 not in restored
    assert restored.values_for([3000, 7]) == [b"CDEF", b"AAAA"]
    assert restored.positions([3000, 7]) == [2, 0]
    assert list(restored) == [7, 42, 3000] and len(restored) == 3
    assert restored.get(8) is None


def test_json_is_one_base64_blob():
    packed = PeerBytes.pack({1: b"\x00\x01\x02", 2: b"\xff\xfe\xfd"}, width=3)
    # 00 01 02 ff fe fd in 6-bit groups, by hand: 0 0 4 2 | 63 63 59 61, i.e. "AAEC" and
    # "//79" in the standard alphabet; pydantic writes the URL-safe one ("_" for "/")
    assert packed.model_dump_json() == '{"width":3,"ids":[1,2],"data":"AAEC__79"}'


@pytest.mark.parametrize(
    "fields",
    [
        {"width": 4, "ids": [1, 2], "data": "QUFBQUJC"},  # 6 bytes, not 8
        {"width": 4, "ids": [1], "data": "QUFBQUJCQkI="},  # 8 bytes, not 4
        {"width": 4, "ids": [2, 1], "data": "QUFBQUJCQkI="},  # unsorted ids
        {"width": 4, "ids": [1, 1], "data": "QUFBQUJCQkI="},  # repeated id
        {"width": 4, "ids": [-1], "data": "QUFBQQ=="},  # not a node id
    ],
)
def test_rejects_wrong_length_and_bad_ids(fields):
    import json

    with pytest.raises(ValidationError):
        PeerBytes.model_validate_json(json.dumps(fields))


def test_unknown_node_is_a_key_error():
    packed = PeerBytes.pack({1: b"ab"}, width=2)
    with pytest.raises(KeyError):
        packed[2]
    with pytest.raises(KeyError):
        packed.values_for([1, 2])
