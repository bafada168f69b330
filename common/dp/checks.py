"""Argument checks shared by the DP functions: fail at the edge, naming the argument."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def check_epsilon(epsilon: float) -> float:
    """Return ``epsilon`` as float; ValueError unless it is a finite number > 0."""
    return check_positive("epsilon", epsilon)


def check_delta(delta: float) -> float:
    """Return ``delta`` as float; ValueError unless 0 < delta < 1."""
    delta = as_float("delta", delta)
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta must be strictly between 0 and 1, got {delta!r}")
    return delta


def check_sigma(sigma: float) -> float:
    """Return ``sigma`` as float; ValueError unless it is a finite number > 0."""
    return check_positive("sigma (noise standard deviation)", sigma)


def as_float(name: str, value: Any) -> float:
    """``value`` as a float; ValueError for booleans, non-numbers and NaN."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if math.isnan(out):
        raise ValueError(f"{name} must be a number, got NaN")
    return out


def check_positive(name: str, value: Any) -> float:
    """``value`` as a float; ValueError unless it is finite and > 0."""
    out = as_float(name, value)
    if not (out > 0.0 and math.isfinite(out)):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return out


def check_nonnegative(name: str, value: Any) -> float:
    """``value`` as a float; ValueError unless it is finite and >= 0."""
    out = as_float(name, value)
    if not (out >= 0.0 and math.isfinite(out)):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return out


def check_count(name: str, value: Any) -> int:
    """``value`` as an int; ValueError unless it is an integer >= 1 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)
