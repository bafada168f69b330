"""One pooled table split by columns into parties (`fedseg simulate --vertical`).

A share `overlap` of the customers is held by every party; each other customer by one
party only (dealt at random), so id alignment has real work to do. Each party's rows
are shuffled on their own: row order says nothing about who is shared.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def vertical_split(frame: pd.DataFrame, id_column: str, parties: dict[str, list[str]], overlap: float,
                   seed: int) -> dict[str, pd.DataFrame]:
    """party -> its frame (the id and its columns)."""
    if id_column not in frame:
        raise ValueError(f"--id column {id_column!r} is not in the data")
    missing = sorted({c for cols in parties.values() for c in cols} - set(frame.columns))
    if missing:
        raise ValueError(f"--vertical names columns not in the data: {missing}")
    if not 0.0 < overlap <= 1.0:
        raise ValueError(f"--overlap must be in (0, 1], got {overlap}")
    rng = np.random.default_rng(seed)
    n, names = len(frame), list(parties)
    shared = rng.random(n) < overlap
    holder = rng.integers(0, len(names), size=n)  # the one holder of an unshared customer
    out = {}
    for j, name in enumerate(names):
        rows = np.flatnonzero(shared | (holder == j))
        out[name] = frame.iloc[rng.permutation(rows)][[id_column, *parties[name]]].reset_index(drop=True)
    return out


def shared_ids(frames: dict[str, pd.DataFrame], id_column: str) -> np.ndarray:
    """The ids every party holds (the reference the tests compare with)."""
    sets = [set(f[id_column].astype(str)) for f in frames.values()]
    return np.array(sorted(set.intersection(*sets)))
