"""Disclosure control: no published figure describes fewer than `min-segment-size`
customers, directly or by difference with other published figures (PRIVACY.md,
"Disclosure control").

Three rules, the same in plaintext, secure and DP modes:

- **Small segments are merged, never withheld.** A segment below the minimum size is
  removed from the model (no centroid) and its customers counted in the released
  segment nearest to it, so population figures are sums over released segments only
  and "population minus the others" leaves nobody.
- **Quantiles need a larger group than means.** A quantile at level p is an order
  statistic: it is released only if at least `min-segment-size` customers lie on each
  side of it, i.e. min(p, 1 - p) x n >= min size (quartiles: n >= 4 x min size).
- **Primary and complementary suppression of count tables** (warm-start transitions):
  cells below the minimum are withheld, and so many further cells that no row, column
  or other published total has exactly one withheld cell (a total minus the published
  cells would give it back).

Pure numpy; the server applies the rules (`server/disclosure.py`, `server/model.py`,
`server/warm_start.py`, `common/profiles.py`) before anything is written or logged.
"""

from __future__ import annotations

import numpy as np

from fedseg.common.schema import FeatureSchema

QUARTILE_LEVEL = 0.25


def quantile_floor(min_size: int, level: float = QUARTILE_LEVEL) -> int:
    """Fewest customers a quantile at `level` may describe: min_size on each side."""
    return int(np.ceil(min_size / min(level, 1.0 - level) - 1e-9))


def small(counts: np.ndarray, min_size: float) -> np.ndarray:
    """Mask of segments below the minimum size (counts possibly noisy), shape (k,)."""
    return np.asarray(counts, dtype=float) < min_size


def nearest_kept(centroids: np.ndarray, drop: np.ndarray) -> np.ndarray:
    """For each segment the released segment its customers join: itself if kept, else
    the kept centroid nearest to its own. Shape (k,), indices into the full list."""
    keep = np.flatnonzero(~drop)
    if len(keep) == 0:
        raise ValueError("no segment reaches the minimum size")
    dist = np.square(centroids[:, None, :] - centroids[None, keep, :]).sum(axis=2)
    return np.where(drop, keep[np.argmin(dist, axis=1)], np.arange(len(centroids)))


def merge_rows(values: np.ndarray, target: np.ndarray, drop: np.ndarray) -> np.ndarray:
    """Add each dropped row into its target row and remove the dropped rows (sums and
    counts of a merged segment are the sums over its members)."""
    values = np.asarray(values, dtype=float)
    merged = np.zeros_like(values)
    np.add.at(merged, target, values)
    return merged[~drop]


def suppress_cells(counts: np.ndarray, min_size: int, lines: list[list[tuple[int, int]]]) -> np.ndarray:
    """Withheld-cell mask of a count table: cells with 0 < count < min_size (primary),
    then complementary suppression until no line (a set of cells whose total is
    published or derivable: rows, columns, the matched cells) has exactly one withheld
    cell; each time the smallest other cell of such a line is withheld too."""
    counts = np.asarray(counts)
    withheld = (counts > 0) & (counts < min_size)
    changed = True
    while changed:
        changed = False
        for line in lines:
            hidden = [c for c in line if withheld[c]]
            if len(hidden) != 1 or len(line) < 2:
                continue
            others = [c for c in line if not withheld[c]]
            if not others:
                continue
            withheld[min(others, key=lambda c: (counts[c], c))] = True
            changed = True
    return withheld


def table_lines(shape: tuple[int, int], match: np.ndarray) -> list[list[tuple[int, int]]]:
    """Rows, columns and the matched (old -> new) cells of a transition table: every
    total a reader can compute from the published model (segment sizes, customers that
    changed segment)."""
    rows, cols = shape
    lines = [[(i, j) for j in range(cols)] for i in range(rows)]
    lines += [[(i, j) for i in range(rows)] for j in range(cols)]
    lines.append([(i, int(j)) for i, j in enumerate(match) if j >= 0])
    return lines


def released_levels(levels: dict[str, float], n: float, min_size: int) -> dict[str, float]:
    """The global quantiles (level -> value) that leave `min_size` customers on each side."""
    return {q: v for q, v in levels.items() if n >= quantile_floor(min_size, float(q))}


def check_quantile_levels(schema: FeatureSchema, n: float, min_size: int) -> None:
    """Winsor limits and quintile edges are published (artifact, schema the nodes use):
    refuse a run whose customers are too few for them to describe groups of `min_size`."""
    for f in schema.numeric:
        levels = [*(f.winsorize or ()), *((0.2,) if f.score != "none" else ())]
        for p in levels:
            if 0.0 < p < 1.0 and n < quantile_floor(min_size, p):
                raise ValueError(
                    f"feature {f.name!r}: the quantile at {p:g} would describe fewer than min-segment-size "
                    f"{min_size} customers ({int(n)} customers; it needs {quantile_floor(min_size, p)})")
