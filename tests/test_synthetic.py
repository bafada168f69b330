"""Synthetic customers: schema agreement, bounds, determinism, non-iid departments,
recoverable segments, and the department files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from fedseg.common.schema import FeatureSchema, load_schema
from fedseg.common.synthetic import SEGMENTS, generate_customers, synthetic_schema, write_departments


@pytest.fixture(scope="module")
def customers() -> pd.DataFrame:
    return generate_customers(20000, 5, seed=0)


def encode(df: pd.DataFrame, schema: FeatureSchema) -> np.ndarray:
    """Reference encoding, written independently of common.preprocessing: numerics
    (log1p where the schema says), one-hot by the schema vocabulary, z-scored."""
    blocks = []
    for f in schema.numeric:
        x = df[f.name].to_numpy(dtype=float)
        blocks.append(np.log1p(x) if f.transform == "log1p" else x)
    for c in schema.categorical:
        blocks.extend((df[c.name] == v).to_numpy(dtype=float) for v in c.values)
    X = np.column_stack(blocks)
    return (X - X.mean(axis=0)) / X.std(axis=0)


def test_columns_match_schema(customers):
    schema = synthetic_schema()
    assert list(customers.columns) == [*schema.columns, "department", "true_segment"]
    assert 16 <= schema.n_encoded <= 30
    assert customers["customer_id"].is_unique
    assert customers["customer_id"].iloc[0] == "C0000001" and customers["customer_id"].iloc[-1] == "C0020000"
    assert {f.name for f in schema.numeric if f.transform == "log1p"} >= {"income", "monetary"}
    for c in schema.categorical:  # every vocabulary value is used, and nothing else
        assert set(customers[c.name]) == set(c.values)
    assert set(customers["city_tier"]) == {"1", "2", "3"}
    assert set(customers["true_segment"]) == set(range(len(SEGMENTS)))


def test_values_within_public_bounds(customers):
    for f in synthetic_schema().numeric:
        assert f.lower is not None and f.upper is not None, f.name
        values = customers[f.name]
        assert values.notna().all(), f.name
        assert values.min() >= f.lower and values.max() <= f.upper, f.name
    assert (customers["tenure_days"] >= customers["recency_days"]).all()
    tags = customers.filter(like="tag_")
    assert tags.shape[1] >= 4 and set(np.unique(tags)) == {0, 1}


def test_money_is_skewed_with_outliers(customers):
    for name in ("income", "monetary"):
        x = customers[name]
        assert x.mean() > 1.1 * x.median(), name  # right skew
    m = customers["monetary"]
    assert m.max() > 20 * m.median()


def test_same_seed_same_frame():
    pd.testing.assert_frame_equal(generate_customers(500, 3, seed=7), generate_customers(500, 3, seed=7))
    assert not generate_customers(500, 3, seed=7).equals(generate_customers(500, 3, seed=8))


def test_departments_differ_in_size_and_mix(customers):
    sizes = customers["department"].value_counts()
    assert sorted(sizes.index) == [f"dept-{i}" for i in range(1, 6)]
    assert sizes.max() > 1.5 * sizes.min()
    mix = pd.crosstab(customers["department"], customers["true_segment"], normalize="index")
    overall = customers["true_segment"].value_counts(normalize=True).sort_index()
    tv = 0.5 * mix.sub(overall, axis=1).abs().sum(axis=1)
    assert tv.max() > 0.15  # at least one department is far from the overall mix


def test_every_department_gets_a_customer():
    df = generate_customers(50, 10, seed=3)
    assert df["department"].nunique() == 10
    with pytest.raises(ValueError, match="at least one customer per department"):
        generate_customers(4, 5, seed=0)


def test_kmeans_recovers_true_segments(customers):
    # Prepare
    X = encode(customers, synthetic_schema())
    # Execute
    labels = KMeans(n_clusters=len(SEGMENTS), n_init=10, random_state=0).fit_predict(X)
    # Assert
    assert adjusted_rand_score(customers["true_segment"], labels) > 0.8


@pytest.mark.parametrize("seed", [1, 2])
def test_recovery_holds_for_other_seeds(seed):
    df = generate_customers(6000, 4, seed=seed)
    labels = KMeans(n_clusters=len(SEGMENTS), n_init=10, random_state=0).fit_predict(encode(df, synthetic_schema()))
    assert adjusted_rand_score(df["true_segment"], labels) > 0.6


def test_write_departments(tmp_path):
    # Prepare
    df = generate_customers(300, 3, seed=1)
    schema = synthetic_schema()
    # Execute
    paths = write_departments(df, tmp_path / "out", schema)
    # Assert
    names = sorted(df["department"].unique())
    assert [p.name for p in paths] == [f"{n}.csv" for n in names] + ["schema.toml"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in paths)  # no temp files
    assert load_schema(paths[-1]) == schema
    for name, path in zip(names, paths):
        back = pd.read_csv(path, dtype={"city_tier": str})
        assert list(back.columns) == schema.columns
        mine = df[df["department"] == name]
        assert back["customer_id"].tolist() == mine["customer_id"].tolist()
        np.testing.assert_allclose(back["monetary"], mine["monetary"])
        assert back["city_tier"].tolist() == mine["city_tier"].tolist()


def test_write_departments_needs_schema_columns(tmp_path):
    df = generate_customers(60, 2, seed=0).drop(columns=["income"])
    with pytest.raises(ValueError, match="income"):
        write_departments(df, tmp_path, synthetic_schema())


def test_department_files_pass_node_validation(tmp_path):
    from fedseg.client.data import load_table

    df = generate_customers(400, 2, seed=4)
    *csvs, schema_path = write_departments(df, tmp_path, synthetic_schema())
    tables = [load_table(p, load_schema(schema_path)) for p in csvs]
    assert sum(t.n_rows for t in tables) == 400
