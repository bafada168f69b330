"""A node's table as the phase handlers read it: read, validated and encoded once per run.

Three levels, fastest first: this process's memory (a Ray worker in simulation serves
many nodes and messages), the node's private on-disk store (`client/table_store.py`:
in deployment every message is a fresh process), and the source itself. When the source
gives a fingerprint (`client/fingerprint.py`), the first message of a run records it and
every later message of the run checks it before using any level: a changed table is
refused (`TableChanged`), never mixed in.

The memory level is bounded by bytes, not by a count of nodes: a count of 64 thrashed
once one worker served more than 64 simulated nodes (issue 14).
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from fedseg.client.fingerprint import Fingerprint, check_unchanged
from fedseg.client.table_store import TableStore
from fedseg.common.messages import Scaler
from fedseg.common.preprocessing import LocalTable, encode_table
from fedseg.common.schema import FeatureSchema

TableLoader = Callable[[FeatureSchema], LocalTable]
FingerprintOf = Callable[[FeatureSchema, bool], Fingerprint]  # (schema, with content digest)
MEMORY_BYTES = int(float(os.environ.get("FEDSEG_NODE_MEMORY_GB", "8")) * 2**30)


class MemoryCache:
    """Least recently used entries beyond `max_bytes` go; the newest two always stay
    (a table and its matrix, whatever their size)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.entries: OrderedDict[tuple, Any] = OrderedDict()
        self.sizes: dict[tuple, int] = {}

    def get(self, key: tuple) -> Any:
        if key in self.entries:
            self.entries.move_to_end(key)
            return self.entries[key]
        return None

    def put(self, key: tuple, value: Any, nbytes: int) -> None:
        self.entries[key], self.sizes[key] = value, nbytes
        self.entries.move_to_end(key)
        while sum(self.sizes.values()) > self.max_bytes and len(self.entries) > 2:
            old, _ = self.entries.popitem(last=False)
            del self.sizes[old]

    def drop(self, prefix: tuple) -> None:
        for key in [k for k in self.entries if k[:len(prefix)] == prefix]:
            del self.entries[key], self.sizes[key]


def _table_bytes(table: LocalTable) -> int:
    return table.ids.nbytes + table.numeric.nbytes + table.codes.nbytes


class NodeData:
    """A node's table under a key naming its source; `run` (Flower's run id) scopes the
    fingerprint and the on-disk `store` ("" and None: memory only, no fingerprint)."""

    _MEMORY = MemoryCache(MEMORY_BYTES)
    _FIRST: dict[tuple[str, str], Fingerprint] = {}  # (run, key) -> fingerprint at the first exchange

    def __init__(self, key: str, loader: TableLoader, *, fingerprint: FingerprintOf | None = None,
                 run: str = "", store: TableStore | None = None, source: str = "") -> None:
        self.key, self._loader = key, loader
        self._fingerprint, self._run, self._store = fingerprint, run, store
        self._source = source or key
        self._checked = False

    def table(self, schema: FeatureSchema) -> LocalTable:
        self._check_unchanged(schema)
        sd = _digest(schema.model_dump_json().encode())
        ck = (self._run, self.key, sd)
        table = self._MEMORY.get(ck)
        if table is None and self._store is not None:
            table = self._store.load_table(self._run, self.key, sd)
        if table is None:
            table = self._loader(schema)
            if self._store is not None:
                self._store.save_table(self._run, self.key, sd, table)
        self._MEMORY.put(ck, table, _table_bytes(table))
        return table

    def matrix(self, schema: FeatureSchema, scaler: Scaler) -> np.ndarray:
        self._check_unchanged(schema)
        digest = _digest(schema.model_dump_json().encode() + scaler.mean.tobytes() + scaler.scale.tobytes())
        ck = (self._run, self.key, "matrix", digest)
        X = self._MEMORY.get(ck)
        if X is None and self._store is not None:
            X = self._store.load_matrix(self._run, self.key, digest)
        if X is None:
            X = encode_table(self.table(schema), schema, scaler.mean, scaler.scale)
            if self._store is not None:
                self._store.save_matrix(self._run, self.key, digest, X)
        self._MEMORY.put(ck, X, X.nbytes)
        return X

    def forget(self) -> None:
        """This run's arrays leave memory and disk (its fingerprint stays: see the store)."""
        self._MEMORY.drop((self._run, self.key))
        if self._store is not None:
            self._store.drop_arrays(self._run, self.key)

    def _check_unchanged(self, schema: FeatureSchema) -> None:
        """Once per message: the first fingerprint of the run, or a check against it."""
        if self._checked or self._fingerprint is None or not self._run:
            return
        now = self._fingerprint(schema, False)
        first = self._FIRST.get((self._run, self.key))
        if first is None and self._store is not None:
            first = self._store.fingerprint(self._run, self.key)
        if first is None:
            first = now if now.digest else self._fingerprint(schema, True)
            if self._store is not None:
                self._store.save_fingerprint(self._run, self.key, first)
        else:
            check_unchanged(first, now, lambda: self._fingerprint(schema, True).digest, self._source)
        self._FIRST[(self._run, self.key)] = first
        self._checked = True


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]
