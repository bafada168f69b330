"""A first schema written from a table (`fedseg schema`): types, categories, proposed bounds.

Bounds read from data are not public by themselves: the largest spend in the table is one
customer's spend. So the proposal rounds them outward (two significant digits) and marks
every one with a comment for the data owner to confirm, or replace by a bound known
without the data (a legal age limit, a price list), before the schema is shared.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from fedseg.common.schema import MISSING_LEVEL, _q, parse_schema
from fedseg.common.table_policy import MAX_ABS_VALUE, to_numbers

MAX_LEVELS = 50  # more distinct texts than this: free text, not a category
CONFIRM = "# PROPOSED from the data, rounded outward: confirm as public before use"


def round_outward(value: float, up: bool) -> float:
    """`value` rounded away from the data to two significant digits (0 stays 0)."""
    if value == 0 or not math.isfinite(value):
        return float(value)
    step = 10.0 ** (math.floor(math.log10(abs(value))) - 1)
    rounded = (math.ceil if up else math.floor)(value / step) * step
    return float(f"{rounded:.12g}")


def _numbers(text: pd.Series) -> np.ndarray | None:
    """The column as floats (NaN for gaps), or None when some cell is not a number."""
    values, blank, bad = to_numbers(text)
    return None if bad.any() or blank.all() else values


def _numeric_lines(name: str, values: np.ndarray) -> list[str]:
    gaps = int(np.isnan(values).sum())
    usable = values[np.isfinite(values) & (np.abs(values) <= MAX_ABS_VALUE)]
    lines = ["", "[[numeric]]", f"name = {_q(name)}"]
    if len(usable):
        low, high = round_outward(float(usable.min()), False), round_outward(float(usable.max()), True)
        high = high if high > low else low + 1.0
        lines += [CONFIRM, f"lower = {low!r}", f"upper = {high!r}"]
    skipped = int((~np.isnan(values)).sum() - len(usable))
    if skipped:
        lines.append(f"# {skipped} value(s) infinite or beyond {MAX_ABS_VALUE:.0e} left out of the proposal "
                     "(they are clipped to the bounds)")
    if gaps:
        lines += [f"# {gaps} gap(s): filled with the federated median", 'missing = "impute"']
    return lines


def _categorical_lines(name: str, text: pd.Series) -> list[str]:
    levels = sorted(set(text[text != ""]))
    gaps = int((text == "").sum())
    if gaps and MISSING_LEVEL not in levels:
        levels.append(MISSING_LEVEL)
    if len(levels) < 2:
        levels.append(MISSING_LEVEL if MISSING_LEVEL not in levels else "other")
    lines = ["", "[[categorical]]", f"name = {_q(name)}", f"values = [{', '.join(_q(v) for v in levels)}]"]
    if gaps:
        lines.append(f'# {gaps} gap(s): they take the level "{MISSING_LEVEL}"')
    return lines


def draft_schema(frame: pd.DataFrame, source: str, id_column: str | None = None) -> str:
    """Schema TOML for `frame` (every cell text): numbers become numeric features with
    proposed bounds, texts with at most MAX_LEVELS values categorical features."""
    columns = [str(c) for c in frame.columns]
    id_column = id_column or columns[0]
    if id_column not in columns:
        raise ValueError(f"{source}: no column {id_column!r} for the id (columns: {columns})")
    head = [f"# schema proposed by `fedseg schema` from {source}", "schema_version = 1", f"id = {_q(id_column)}"]
    body: list[str] = []
    left_out: list[str] = []
    for name in columns:  # loop over columns, not records
        if name == id_column:
            continue
        text = frame[name].astype(str).str.strip()
        values = _numbers(text)
        if values is not None:
            body += _numeric_lines(name, values)
        elif text[text != ""].nunique() <= MAX_LEVELS:
            body += _categorical_lines(name, text)
        else:
            left_out.append(name)
    if left_out:
        head += [f"# left out (free text, more than {MAX_LEVELS} values): {left_out}", "allow_extra_columns = true"]
    text = "\n".join(head + body) + "\n"
    parse_schema(text, source="the proposed schema")  # what we write must load
    return text
