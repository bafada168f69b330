"""What a node does with gaps and out-of-range values, by the schema's policy (pure numpy).

Per numeric feature, `missing` is "impute" (filled with the federated median the run
sends as `impute_value`; until then the gap stays NaN and only the coverage and
histogram phases, which skip gaps, may read the table), "drop" (the row is left out) or
"error"; `out_of_range` is "clip" (to the public bound, counted), "drop" or "error". A
categorical gap is imputed to the public level `missing`, which the vocabulary must hold.
Values that are not finite after the transform, or larger than `MAX_ABS_VALUE`, are
errors whatever the policy: they would turn every sum into inf or nan.

The counts (`Coverage`) are sums over a node's rows, so the server can add them; what
leaves the node is listed in PRIVACY.md ("Coverage counts").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedseg.common.schema import MISSING_LEVEL, FeatureSchema
from fedseg.common.table_problems import Problem, problem_at

# float64 holds every integer up to 2**53 exactly; beyond it a sum loses whole units and
# squares of values near 1e154 overflow: no customer attribute is that large
MAX_ABS_VALUE = 2.0**53


@dataclass(frozen=True)
class Coverage:
    """Per-feature counts over a node's rows (summable across nodes).

    rows: rows read; kept: rows that take part (rows minus dropped).
    missing, imputed, dropped: ndarray of shape (n_numeric + n_categorical,), schema order.
    clipped: ndarray of shape (n_numeric,).
    """

    rows: int
    kept: int
    missing: np.ndarray
    imputed: np.ndarray
    dropped: np.ndarray
    clipped: np.ndarray

    @classmethod
    def complete(cls, rows: int, schema: FeatureSchema) -> Coverage:
        """The counts of a table with no gap and nothing out of range."""
        zeros = np.zeros(len(schema.numeric) + len(schema.categorical), dtype=np.int64)
        return cls(rows, rows, zeros, zeros, zeros, np.zeros(len(schema.numeric), dtype=np.int64))

    def __add__(self, other: Coverage) -> Coverage:
        return Coverage(self.rows + other.rows, self.kept + other.kept, self.missing + other.missing,
                        self.imputed + other.imputed, self.dropped + other.dropped, self.clipped + other.clipped)


@dataclass(frozen=True)
class RowDefects:
    """Which kept rows had a gap (per feature) or a clipped value, so a node can count
    the coverage of a subset of its rows (the rows it owns after deduplication)."""

    gaps: np.ndarray  # (kept, n_numeric + n_categorical) bool
    clipped: np.ndarray  # (kept, n_numeric) bool

    def __getitem__(self, rows) -> RowDefects:
        return RowDefects(self.gaps[rows], self.clipped[rows])


def subset_coverage(total: Coverage, defects: RowDefects, keep: np.ndarray, schema: FeatureSchema) -> Coverage:
    """The coverage when only the kept rows `keep` take part: the others count as not
    read at this node (another node holds and counts them); rows the schema dropped stay
    as counted (they never reached the PSI)."""
    gone = defects[~keep]
    imputes = np.array([f.missing == "impute" for f in (*schema.numeric, *schema.categorical)], dtype=bool)
    return Coverage(rows=total.rows - len(gone.gaps), kept=int(keep.sum()),
                    missing=total.missing - gone.gaps.sum(axis=0), imputed=total.imputed - (gone.gaps & imputes).sum(axis=0),
                    dropped=total.dropped, clipped=total.clipped - gone.clipped.sum(axis=0))


@dataclass(frozen=True)
class Cleaned:
    """A table after the policies: kept rows only, imputed where the run says how."""

    keep: np.ndarray  # (n,) bool over the rows read
    numeric: np.ndarray  # (kept, n_numeric); NaN where a gap awaits the federated median
    codes: np.ndarray  # (kept, n_categorical)
    coverage: Coverage
    problems: list[Problem]
    defects: RowDefects | None = None


def to_numbers(text: "pd.Series") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values, blank, bad) of a column of stripped text: NaN for a blank or "nan" cell;
    a decimal comma ("10,5", as `;`-separated European exports write it) is read as a
    point; `bad` marks cells that are still not numbers."""
    import pandas as pd

    blank = (text == "").to_numpy()
    comma = text.str.fullmatch(r"[+-]?\d*,\d+([eE][+-]?\d+)?").fillna(False).to_numpy(dtype=bool)
    cleaned = text.where(~comma, text.str.replace(",", ".", regex=False))
    values = pd.to_numeric(cleaned.where(~blank, None), errors="coerce").to_numpy(dtype=float, copy=True)
    bad = np.isnan(values) & ~blank & ~text.str.lower().isin(["nan", "-nan"]).to_numpy()
    return values, blank, bad


def _bounds(schema: FeatureSchema) -> tuple[np.ndarray, np.ndarray]:
    lower = np.array([-np.inf if f.lower is None else f.lower for f in schema.numeric])
    upper = np.array([np.inf if f.upper is None else f.upper for f in schema.numeric])
    return lower, upper


def transformed(values: np.ndarray, schema: FeatureSchema) -> np.ndarray:
    """Each feature's transform (log1p where asked) of values already in range."""
    out = np.array(values, dtype=float, copy=True)
    logs = np.array([f.transform == "log1p" for f in schema.numeric], dtype=bool)
    if logs.any():
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, logs] = np.log1p(out[:, logs])
    return out


def apply_policies(numeric: np.ndarray, codes: np.ndarray, schema: FeatureSchema) -> Cleaned:
    """Apply the schema's gap and range policies; `numeric` (n, p) holds NaN for a gap,
    `codes` (n, c) holds -1 for a gap. Problems are returned, never raised, so a caller
    can report them all."""
    p = len(schema.numeric)
    gaps = np.isnan(numeric)
    lower, upper = _bounds(schema)
    with np.errstate(invalid="ignore"):
        outside = ~gaps & ((numeric < lower) | (numeric > upper))
    policy = np.array([f.missing for f in schema.numeric] + [c.missing for c in schema.categorical], dtype=object)
    ranges = np.array([f.out_of_range for f in schema.numeric], dtype=object)
    cat_gaps = codes < 0
    all_gaps = np.hstack([gaps, cat_gaps])
    drop_cols = all_gaps & (policy == "drop")
    drop_cols[:, :p] |= outside & (ranges == "drop")
    keep = ~drop_cols.any(axis=1)
    clip_mask = outside & (ranges == "clip") & keep[:, None]
    values = np.clip(numeric, lower, upper)  # NaN stays NaN
    values = _impute_numeric(values, gaps, schema)
    new_codes = _impute_codes(codes, cat_gaps, schema)
    problems = _problems(numeric, values, gaps, outside, cat_gaps, keep, schema)
    imputed = all_gaps & (policy == "impute") & keep[:, None]
    coverage = Coverage(
        rows=len(numeric), kept=int(keep.sum()), missing=all_gaps.sum(axis=0).astype(np.int64),
        imputed=imputed.sum(axis=0).astype(np.int64), dropped=drop_cols.sum(axis=0).astype(np.int64),
        clipped=clip_mask.sum(axis=0).astype(np.int64),
    )
    return Cleaned(keep, np.where(outside & (ranges != "clip"), numeric, values)[keep], new_codes[keep],
                   coverage, problems, RowDefects(all_gaps[keep], clip_mask[keep]))


def _impute_numeric(values: np.ndarray, gaps: np.ndarray, schema: FeatureSchema) -> np.ndarray:
    fill = np.array([np.nan if f.impute_value is None or f.missing != "impute" else f.impute_value
                     for f in schema.numeric])
    return np.where(gaps, fill, values)


def _impute_codes(codes: np.ndarray, gaps: np.ndarray, schema: FeatureSchema) -> np.ndarray:
    level = np.array([c.values.index(MISSING_LEVEL) if MISSING_LEVEL in c.values and c.missing == "impute" else -1
                      for c in schema.categorical], dtype=np.int64)
    return np.where(gaps, level, codes)


def _problems(raw: np.ndarray, values: np.ndarray, gaps: np.ndarray, outside: np.ndarray, cat_gaps: np.ndarray,
              keep: np.ndarray, schema: FeatureSchema) -> list[Problem]:
    """Errors by policy, gaps that cannot be imputed, and values no sum survives."""
    found: list[Problem | None] = []
    with np.errstate(invalid="ignore", over="ignore"):
        after = transformed(values, schema)
        broken = ~gaps & keep[:, None] & (~np.isfinite(after) | (np.abs(after) > MAX_ABS_VALUE))
    for i, f in enumerate(schema.numeric):  # loop over features, not records
        if f.missing == "error":
            found.append(problem_at(f.name, "missing value (empty or NaN)", gaps[:, i],
                                    'the schema says missing = "error"'))
        elif f.missing == "impute" and not f.bounded:
            found.append(problem_at(f.name, "missing value (empty or NaN)", gaps[:, i],
                                    "imputing the federated median needs public lower and upper bounds; "
                                    'add them to the schema, or set missing = "drop"'))
        if f.out_of_range == "error":
            found.append(problem_at(f.name, f"value outside the public bounds [{f.lower}, {f.upper}]",
                                    outside[:, i], 'the schema says out_of_range = "error"'))
        found.append(_broken(f.name, raw[:, i], broken[:, i], f.transform))
    for j, c in enumerate(schema.categorical):
        if c.missing == "error":
            found.append(problem_at(c.name, "missing value (empty)", cat_gaps[:, j], 'the schema says missing = "error"'))
        elif c.missing == "impute" and MISSING_LEVEL not in c.values:
            found.append(problem_at(c.name, "missing value (empty)", cat_gaps[:, j],
                                    f'add "{MISSING_LEVEL}" to its values (gaps become that level), '
                                    'or set missing = "drop"'))
    return [p for p in found if p is not None]


def _broken(name: str, raw: np.ndarray, mask: np.ndarray, transform: str) -> Problem | None:
    if not mask.any():
        return None
    infinite = mask & np.isinf(raw)
    if infinite.all() or infinite[mask].all():
        return problem_at(name, "infinite value", mask, "give public bounds to clip it, or fix the cell")
    kind = (f"value not finite after {transform} or larger than {MAX_ABS_VALUE:.0e}" if transform != "none"
            else f"value larger than {MAX_ABS_VALUE:.0e} in magnitude (too large for sums and fixed point)")
    return problem_at(name, kind, mask, "give public bounds to clip it, or fix the cell")
