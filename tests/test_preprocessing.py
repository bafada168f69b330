"""The federated scaler equals the pooled one; encoding by hand."""

from __future__ import annotations

import numpy as np
from numpy.testing import assert_allclose
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from fedseg.common.preprocessing import LocalTable, encode_table, local_prepare_stats, scaler_from_stats
from fedseg.common.schema import CategoricalFeature, FeatureSchema, NumericFeature

SCHEMA = FeatureSchema(
    id="id",
    numeric=(
        NumericFeature(name="age", lower=18, upper=90),
        NumericFeature(name="spend", transform="log1p", lower=0, upper=1e6),
        NumericFeature(name="constant"),
    ),
    categorical=(CategoricalFeature(name="region", values=("n", "s", "e", "w")),),
)


def make_table(n: int, rng: np.random.Generator) -> LocalTable:
    numeric = np.column_stack(
        [rng.integers(10, 99, n).astype(float), rng.lognormal(5, 2, n), np.full(n, 3.0)]
    )
    return LocalTable(ids=np.arange(n).astype(str), numeric=numeric, codes=rng.integers(0, 4, (n, 1)))


def pooled_reference(tables: list[LocalTable]) -> np.ndarray:
    """Encode the pooled rows with numpy + scikit-learn, independently of our code."""
    num = np.vstack([t.numeric for t in tables])
    age = np.clip(num[:, 0], 18, 90)
    spend = np.log1p(np.clip(num[:, 1], 0, 1e6))
    codes = np.vstack([t.codes for t in tables])
    onehot = OneHotEncoder(categories=[np.arange(4)], sparse_output=False).fit_transform(codes)
    return np.column_stack([age, spend, num[:, 2], onehot])


def test_federated_scaler_equals_pooled_mean_and_std():
    rng = np.random.default_rng(0)
    tables = [make_table(n, rng) for n in (500, 1700, 33)]
    parts = [local_prepare_stats(t, SCHEMA) for t in tables]
    mean, scale = scaler_from_stats(sum(parts[1:], parts[0]))
    raw = pooled_reference(tables)
    ref = StandardScaler().fit(raw)
    assert_allclose(mean, ref.mean_, rtol=1e-12)
    assert_allclose(scale, ref.scale_, rtol=1e-9)  # sklearn also uses scale 1 for constants
    assert scale[2] == 1.0


def test_encoding_equals_pooled_standardisation():
    rng = np.random.default_rng(1)
    tables = [make_table(n, rng) for n in (400, 600)]
    parts = [local_prepare_stats(t, SCHEMA) for t in tables]
    mean, scale = scaler_from_stats(parts[0] + parts[1])
    ours = np.vstack([encode_table(t, SCHEMA, mean, scale) for t in tables])
    ref = StandardScaler().fit_transform(pooled_reference(tables))
    assert_allclose(ours, ref, atol=1e-9)
    assert SCHEMA.encoded_names == ["age", "spend", "constant", "region=n", "region=s", "region=e", "region=w"]


def test_counts_and_sums_by_hand():
    table = LocalTable(
        ids=np.array(["a", "b"]), numeric=np.array([[10.0, 0.0, 3.0], [30.0, np.e - 1, 3.0]]),
        codes=np.array([[1], [1]]),
    )
    stats = local_prepare_stats(table, SCHEMA)
    assert stats.count == 2
    assert_allclose(stats.sums, [18 + 30, 0 + 1, 6])  # age 10 clipped to 18; log1p(e-1) = 1
    assert_allclose(stats.sumsq, [18**2 + 30**2, 1, 18])
    assert_allclose(stats.category_counts, [0, 2, 0, 0])
