"""A party's side of vertical Lloyd: its block of the shared customers and of every
centroid, kept in the node's state between messages and never sent.

`PartyView` is the node's data seen through the alignment (`align.Aligned`): position i
of every exchange is the same customer on every party. The checks here are the party's
own: a request whose shapes do not fit the alignment is refused (code only).
"""

from __future__ import annotations

import hashlib
import io

import numpy as np

from fedseg.common.messages import Scaler
from fedseg.common.preprocessing import LocalTable, local_prepare_stats, scaler_from_stats
from fedseg.common.psi.protocol import PsiError
from fedseg.common.row_view import RowSubsetView
from fedseg.common.schema import FeatureSchema
from fedseg.common.table_policy import Coverage, RowDefects, subset_coverage
from fedseg.common.vertical import blocks
from fedseg.common.vertical.align import ALIGNED, Aligned

SCALER, LABELS, CENTROIDS = "vertical-scaler", "vertical-labels", "vertical-centroids-"
PROFILE_FLOOR = 3  # fewest customers in a profiled segment this party answers for, whatever the server asks


class VerticalError(PsiError):
    """A vertical request that does not fit this party's alignment or state."""

    code = "bad-request"


class PartyView(RowSubsetView):
    """The party's shared rows in the common order, and its state."""

    mismatch = "the table is not the one the parties aligned"

    def __init__(self, base, state: dict[str, bytes], aligned: Aligned) -> None:
        super().__init__(base, aligned.positions(), n_rows=aligned.n_rows, ids_sha256=aligned.ids_sha256)
        self.state, self.aligned = state, aligned

    def _coverage(self, full: LocalTable, schema: FeatureSchema) -> tuple[Coverage | None, RowDefects | None]:
        """The counts over the shared customers; rows the party's policies dropped stay
        counted (they never reached the alignment), its other rows are not counted."""
        if full.coverage is None or full.defects is None:
            return None, None
        shared = np.zeros(full.n_rows, dtype=bool)
        shared[self._rows] = True
        return subset_coverage(full.coverage, full.defects, shared, schema), full.defects[self._rows]


def vertical_view(data, state: dict[str, bytes]):
    """`data` through the alignment, once the parties aligned in this run."""
    if ALIGNED not in state:
        return data
    return PartyView(data, state, Aligned.model_validate_json(state[ALIGNED]))


def view_of(data) -> PartyView:
    """`data` as a party view, or a refusal when the parties have not aligned yet."""
    if not isinstance(data, PartyView):
        raise VerticalError("a vertical request before the parties aligned their customers")
    return data


def _save(state: dict[str, bytes], key: str, array: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    state[key] = buf.getvalue()


def _load(state: dict[str, bytes], key: str) -> np.ndarray:
    if key not in state:
        raise VerticalError(f"no {key} on this party")
    return np.load(io.BytesIO(state[key]), allow_pickle=False)


def check_placement(start: int, d: int, width: int) -> None:
    if start + d > width:
        raise VerticalError("this party's block does not fit where the request places it")


def fit_scaler(data, schema: FeatureSchema, n_shared: int) -> Scaler:
    """Standardisation of this party's block over the shared customers, kept."""
    view = view_of(data)
    table = view.table(schema)
    if table.n_rows != n_shared:
        raise VerticalError("the request's count of shared customers is not this party's")
    mean, scale = scaler_from_stats(local_prepare_stats(table, schema))
    scaler = Scaler(mean=mean, scale=scale)
    view.state[SCALER] = scaler.model_dump_json().encode()
    return scaler


def block(data, schema: FeatureSchema, n_shared: int) -> np.ndarray:
    """(n_shared, d_p) this party's encoded, scaled block."""
    view = view_of(data)
    if SCALER not in view.state:
        raise VerticalError("no scaler on this party")
    X = view.matrix(schema, Scaler.model_validate_json(view.state[SCALER]))
    if len(X) != n_shared:
        raise VerticalError("the request's count of shared customers is not this party's")
    return X


def _labels(labels: np.ndarray, n: int, n_cand: int, k: int) -> np.ndarray:
    if labels.shape != (n, n_cand) or (labels.size and (labels.min() < 0 or labels.max() >= k)):
        raise VerticalError("labels of the wrong shape or range")
    return labels.astype(np.int64)


def _centroids(view: PartyView, X: np.ndarray, req) -> np.ndarray:
    """This round's centroid blocks (n_cand * k, d_p), per the request's stage step."""
    n, total = len(X), req.n_cand * req.k
    if req.from_groups:
        if req.n_cand != 1 or n < 2 * req.k:
            raise VerticalError("group starts need one candidate and two customers per group")
        return blocks.group_means(X, blocks.groups(n, req.k, req.from_groups), req.k)
    if req.init is not None:
        fine = _load(view.state, CENTROIDS + req.init_stage)
        init = req.init.astype(np.int64)
        if init.shape != (total,) or init.min() < 0 or init.max() >= len(fine):
            raise VerticalError("initial centroids out of range")
        return fine[init]
    old = _load(view.state, CENTROIDS + req.stage)
    if req.keep is not None:  # the server drops the costlier candidates
        keep = req.keep.astype(np.int64)
        if keep.shape != (req.n_cand,) or keep.min() < 0 or keep.max() >= len(old) // req.k:
            raise VerticalError("kept candidates out of range")
        old = old.reshape(-1, req.k, X.shape[1])[keep].reshape(-1, X.shape[1])
    if old.shape != (total, X.shape[1]):
        raise VerticalError("the request's candidates do not match this party's centroids")
    if req.labels is None:
        return old
    return blocks.update(X, _labels(req.labels, n, req.n_cand, req.k), old, req.k)


def offset_key(key: bytes) -> bytes:
    """The offsets' own key, derived from the ordering key (one key, one use)."""
    return hashlib.sha256(b"fedseg-vertical/offsets\x00" + key).digest()


def lloyd_round(data, req) -> tuple[np.ndarray, np.ndarray]:
    """Update the centroid blocks, then the partial distances (+ offsets) and gaps."""
    view = view_of(data)
    rows = blocks.sample(req.n_shared, req.sample, req.sample_seed)
    X = block(view, req.schema_, req.n_shared)[rows]
    C = _centroids(view, X, req)
    _save(view.state, CENTROIDS + req.stage, C)
    total = req.n_cand * req.k
    dist = np.zeros((0, total))
    if req.distances:
        r = blocks.offsets(offset_key(view.aligned.key), req.n_shared, req.offset_scale)[rows]
        dist = blocks.sq_distances(X, C) + r[:, None]
    gaps = np.zeros((0, req.k))
    if req.gaps:
        gaps = np.vstack([blocks.sq_distances(C[c * req.k:(c + 1) * req.k], C[c * req.k:(c + 1) * req.k])
                          for c in range(req.n_cand)])
    return dist, gaps


def final_block(data, req) -> tuple[np.ndarray, LocalTable]:
    """The block and the rows for the profile; the final labels kept for write-back."""
    view = view_of(data)
    X = block(view, req.schema_, req.n_shared)
    labels = _labels(np.asarray(req.labels).reshape(-1, 1), len(X), 1, req.k)[:, 0]
    sizes = np.bincount(labels, minlength=req.k)
    if ((sizes > 0) & (sizes < PROFILE_FLOOR)).any():  # a deviating server isolating a customer
        raise VerticalError("a profiled segment would describe fewer customers than this party's floor")
    _save(view.state, LABELS, labels)
    return X, view.table(req.schema_)


def labelled_ids(data, schema: FeatureSchema) -> tuple[np.ndarray, np.ndarray]:
    """(ids, segment) of the shared customers after a vertical run: the party's write-back."""
    view = view_of(data)
    return view.table(schema).ids, _load(view.state, LABELS)
