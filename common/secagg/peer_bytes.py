"""Fixed-width byte values keyed by node id, packed as one blob in id order.

A secure-aggregation node keeps several 32- or 36-byte values per peer (share-encryption
keys, mask roots, Shamir shares) and reloads them on every message. As a JSON dict of
base64 strings that costs one key parse and one base64 decode per peer; packed, it is
one id list and one base64 blob, and a batch of values is a few slices of that blob.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterator, Mapping, Sequence
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

NodeId = Annotated[int, Field(ge=0, lt=2**64)]


class PeerBytes(BaseModel):
    """Read-only mapping node id -> `width` bytes; `data` is the values in `ids` order.

    Validation rejects unsorted or repeated ids and a blob whose length is not
    `width * len(ids)`, so a truncated or spliced state fails on load.
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, ser_json_bytes="base64", val_json_bytes="base64"
    )

    width: int = Field(ge=1, le=1024)
    ids: tuple[NodeId, ...] = ()
    data: bytes = b""

    @model_validator(mode="after")
    def _check(self) -> PeerBytes:
        if not all(map(operator.lt, self.ids, self.ids[1:])):
            raise ValueError("ids must be strictly increasing")
        if len(self.data) != self.width * len(self.ids):
            raise ValueError(
                f"{len(self.ids)} values of {self.width} bytes need "
                f"{self.width * len(self.ids)} bytes, got {len(self.data)}"
            )
        return self

    @classmethod
    def pack(cls, values: Mapping[int, bytes], *, width: int) -> PeerBytes:
        """Pack a dict id -> value (every value `width` bytes long)."""
        ids = tuple(sorted(values))
        return cls(width=width, ids=ids, data=b"".join([values[v] for v in ids]))

    @functools.cached_property
    def _index(self) -> dict[int, int]:
        return {v: i for i, v in enumerate(self.ids)}

    def positions(self, nodes: Sequence[int]) -> list[int]:
        """The indices of the values of `nodes` in `data`, in units of `width`."""
        index = self._index
        return [index[v] for v in nodes]

    def __getitem__(self, node: int) -> bytes:
        start = self._index[node] * self.width
        return self.data[start : start + self.width]

    def __contains__(self, node: object) -> bool:
        return node in self._index

    def __iter__(self) -> Iterator[int]:  # type: ignore[override]  # a mapping, not fields
        return iter(self.ids)

    def __len__(self) -> int:
        return len(self.ids)

    def get(self, node: int, default: bytes | None = None) -> bytes | None:
        """The value of `node`, or `default` if it has none."""
        return self[node] if node in self._index else default

    def keys(self) -> tuple[int, ...]:
        return self.ids

    def items(self) -> list[tuple[int, bytes]]:
        return [(v, self[v]) for v in self.ids]

    def values_for(self, nodes: Sequence[int]) -> list[bytes]:
        """The values of `nodes`, in that order (KeyError for an unknown node)."""
        w, data = self.width, self.data
        return [data[i * w : i * w + w] for i in self.positions(nodes)]
