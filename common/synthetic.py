"""Synthetic customer tables with known segments, split over departments.

Real customer data cannot ship with the project, yet every feature of fedseg (skewed
money, categoricals, unequal silos with different customer mixes) needs something
realistic to run on and a ground truth to score against. Each customer belongs to one
latent segment; the segment sets the distribution of every feature. Departments differ
in size and in their segment mix (both drawn from Dirichlet distributions), so the
natural split by department is non-iid.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from fedseg.common.schema import CategoricalFeature, FeatureSchema, NumericFeature

SEGMENTS = (
    "high-value loyal",
    "young price-sensitive online",
    "families",
    "dormant / at risk",
    "new customers",
    "affluent seniors",
)
SIMULATION_COLUMNS = ("department", "true_segment")
_DEPARTMENT_SIZE_ALPHA = 2.0  # Dirichlet over department sizes: clearly unequal silos
_SEGMENT_MIX_ALPHA = 2.0  # Dirichlet over each department's segment mix: differing mixes

# Per segment (rows in SEGMENTS order). Numbers are location/scale of the distributions.
_AGE = np.array([[44, 6], [24, 3], [37, 4], [55, 9], [33, 5], [72, 5]], dtype=float)
_LOG_INCOME = np.array([[11.4, 0.2], [10.0, 0.25], [10.9, 0.2], [10.4, 0.3], [10.7, 0.3], [11.7, 0.25]])
_RECENCY_MEAN = np.array([6.0, 30.0, 18.0, 330.0, 10.0, 60.0])
_TENURE_EXTRA_MEAN = np.array([1800.0, 500.0, 1100.0, 800.0, 30.0, 2900.0])  # first to last purchase
_FREQUENCY_MEAN = np.array([40.0, 12.0, 20.0, 2.0, 0.2, 4.0])  # repeat purchases
_LOG_ORDER_VALUE = np.array([[4.6, 0.25], [3.1, 0.25], [4.1, 0.2], [3.7, 0.3], [3.9, 0.3], [5.3, 0.25]])
_TAGS = ("tag_outdoor", "tag_tech", "tag_family", "tag_deals")
_TAG_P = np.array(
    [
        [0.30, 0.60, 0.25, 0.05],
        [0.05, 0.90, 0.05, 0.90],
        [0.55, 0.15, 0.95, 0.60],
        [0.15, 0.10, 0.20, 0.30],
        [0.10, 0.20, 0.10, 0.05],
        [0.90, 0.05, 0.05, 0.10],
    ]
)
# Categorical features: vocabulary and per-segment probabilities (rows sum to 1).
_CATEGORICAL: dict[str, tuple[tuple[str, ...], np.ndarray]] = {
    "gender": (
        ("female", "male"),
        np.array([[0.50, 0.50], [0.45, 0.55], [0.58, 0.42], [0.48, 0.52], [0.52, 0.48], [0.56, 0.44]]),
    ),
    "education": (
        ("secondary", "vocational", "bachelor", "postgraduate"),
        np.array([[0.15, 0.20, 0.35, 0.30], [0.35, 0.25, 0.30, 0.10], [0.20, 0.35, 0.30, 0.15],
                  [0.35, 0.30, 0.20, 0.15], [0.25, 0.25, 0.30, 0.20], [0.15, 0.15, 0.35, 0.35]]),
    ),
    "region": (
        ("north", "south", "east", "west"),
        np.array([[0.25, 0.25, 0.25, 0.25], [0.20, 0.30, 0.30, 0.20], [0.25, 0.25, 0.25, 0.25],
                  [0.30, 0.25, 0.20, 0.25], [0.20, 0.25, 0.30, 0.25], [0.25, 0.35, 0.15, 0.25]]),
    ),
    "city_tier": (
        ("1", "2", "3"),
        np.array([[0.75, 0.20, 0.05], [0.80, 0.15, 0.05], [0.10, 0.30, 0.60],
                  [0.20, 0.60, 0.20], [0.30, 0.55, 0.15], [0.35, 0.50, 0.15]]),
    ),
    "channel": (
        ("online", "store", "mobile"),
        np.array([[0.15, 0.15, 0.70], [0.80, 0.05, 0.15], [0.10, 0.80, 0.10],
                  [0.25, 0.65, 0.10], [0.45, 0.10, 0.45], [0.05, 0.90, 0.05]]),
    ),
}
# Public bounds: plausible to anyone, not derived from the data.
_BOUNDS = {
    "age": (18.0, 100.0),
    "income": (0.0, 1_000_000.0),
    "recency_days": (0.0, 730.0),
    "tenure_days": (0.0, 7300.0),
    "frequency": (1.0, 500.0),
    "monetary": (0.0, 100_000.0),
}
_LOG1P = {"income", "monetary"}
_MONEY = {"income", "monetary"}  # skewed amounts: scaled by median/IQR by default


def synthetic_schema() -> FeatureSchema:
    """The public schema of `generate_customers` tables (without the simulation columns)."""
    numeric = [
        NumericFeature(name=n, transform="log1p" if n in _LOG1P else "none", lower=lo, upper=hi, money=n in _MONEY)
        for n, (lo, hi) in _BOUNDS.items()
    ]
    numeric += [NumericFeature(name=t, lower=0.0, upper=1.0) for t in _TAGS]
    categorical = [CategoricalFeature(name=n, values=vocab) for n, (vocab, _) in _CATEGORICAL.items()]
    return FeatureSchema(id="customer_id", numeric=tuple(numeric), categorical=tuple(categorical))


def _clip(values: np.ndarray, name: str) -> np.ndarray:
    """Keep generated values inside the public bounds the schema announces."""
    return np.clip(values, *_BOUNDS[name])


def _draw_categories(p_by_segment: np.ndarray, segment: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Category index per row, each row drawn from its segment's probability vector."""
    cumulative = np.cumsum(p_by_segment, axis=1)[segment]
    return (rng.random(len(segment))[:, None] > cumulative[:, :-1]).sum(axis=1)


def _departments(n: int, n_departments: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Department and segment per customer: unequal sizes, a Dirichlet segment mix each."""
    size_share = rng.dirichlet(np.full(n_departments, _DEPARTMENT_SIZE_ALPHA))
    sizes = 1 + rng.multinomial(n - n_departments, size_share)  # nobody left empty
    department = rng.permutation(np.repeat(np.arange(n_departments), sizes))
    mix = rng.dirichlet(np.full(len(SEGMENTS), _SEGMENT_MIX_ALPHA), size=n_departments)
    return department, _draw_categories(mix, department, rng)


def generate_customers(n_customers: int = 20000, n_departments: int = 5, seed: int = 0) -> pd.DataFrame:
    """Customer table: `customer_id`, the `synthetic_schema()` features, then `department`
    ("dept-1", ...) and `true_segment` (index into SEGMENTS). Same seed, same frame."""
    if n_departments < 1 or n_customers < n_departments:
        raise ValueError(f"need n_departments >= 1 and at least one customer per department, "
                         f"got {n_customers} customers for {n_departments} departments")
    rng = np.random.default_rng(seed)
    n = n_customers
    department, s = _departments(n, n_departments, rng)

    age = np.clip(np.rint(rng.normal(_AGE[s, 0], _AGE[s, 1])), 18, 95)
    income = np.round(_clip(np.exp(rng.normal(_LOG_INCOME[s, 0], _LOG_INCOME[s, 1])), "income"), -2)
    recency = _clip(np.rint(rng.gamma(8.0, _RECENCY_MEAN[s] / 8.0)), "recency_days")
    # the first purchase precedes the last one: tenure = recency + active span
    tenure = _clip(recency + np.rint(rng.gamma(4.0, _TENURE_EXTRA_MEAN[s] / 4.0)), "tenure_days")
    # gamma-Poisson (negative binomial) counts: overdispersed like real purchase counts
    frequency = _clip(1 + rng.poisson(rng.gamma(8.0, _FREQUENCY_MEAN[s] / 8.0)), "frequency")
    order_value = np.exp(rng.normal(_LOG_ORDER_VALUE[s, 0], _LOG_ORDER_VALUE[s, 1]))
    whale = rng.random(n) < 0.005  # a few outliers: bulk or corporate buyers
    order_value = np.where(whale, order_value * rng.uniform(5, 20, n), order_value)
    monetary = np.round(_clip(frequency * order_value, "monetary"), 2)

    columns: dict[str, object] = {
        "customer_id": np.char.add("C", np.char.zfill(np.arange(1, n + 1).astype(str), 7)),
        "age": age,
        "income": income,
        "recency_days": recency.astype(np.int64),
        "tenure_days": tenure.astype(np.int64),
        "frequency": frequency.astype(np.int64),
        "monetary": monetary,
    }
    tags = (rng.random((n, len(_TAGS))) < _TAG_P[s]).astype(np.int64)
    columns.update({t: tags[:, j] for j, t in enumerate(_TAGS)})
    for name, (vocab, p) in _CATEGORICAL.items():
        columns[name] = np.asarray(vocab, dtype=object)[_draw_categories(p, s, rng)]
    columns["department"] = np.char.add("dept-", (department + 1).astype(str))
    columns["true_segment"] = s.astype(np.int64)
    frame = pd.DataFrame(columns)
    for name in [*_CATEGORICAL, "customer_id", "department"]:
        frame[name] = frame[name].astype(str)
    return frame


def _atomic_write(path: Path, text: str) -> None:
    """Write through a temp file in the same folder, so readers never see half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_departments(df: pd.DataFrame, out_dir: str | Path, schema: FeatureSchema) -> list[Path]:
    """One `<department>.csv` per department (schema columns only, or every non-simulation
    column if the schema allows extras) plus `schema.toml`; returns the paths written."""
    missing = [c for c in [*schema.columns, "department"] if c not in df.columns]
    if missing:
        raise ValueError(f"table lacks column(s) {missing} needed by the schema or the split")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    keep = list(schema.columns)
    if schema.allow_extra_columns:
        keep += [c for c in df.columns if c not in keep and c not in SIMULATION_COLUMNS]
    paths = []
    for name, part in df.groupby("department", sort=True):
        path = out / f"{name}.csv"
        _atomic_write(path, part[keep].to_csv(index=False, lineterminator="\n"))
        paths.append(path)
    schema_path = out / "schema.toml"
    _atomic_write(schema_path, schema.to_toml())
    return [*paths, schema_path]
