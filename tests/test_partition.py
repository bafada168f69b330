"""Partitioners: disjoint and complete splits, expected sizes, skew, clear spec errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fedseg.simulations.partition import PARTITION_ALIASES, PartitionSpec, parse_partition, partition


def table(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "label": rng.choice(["a", "b", "c", "d", "e"], size=n, p=[0.3, 0.25, 0.2, 0.15, 0.1]),
            "x": rng.normal(size=n),
        },
        index=np.arange(100, 100 + n),  # a non-default index must survive
    )


def assert_disjoint_cover(df: pd.DataFrame, parts: list[pd.DataFrame]) -> None:
    ids = np.concatenate([p["id"].to_numpy() for p in parts])
    assert len(ids) == len(df) and set(ids) == set(df["id"])
    for p in parts:  # rows unchanged and still aligned with their original index
        pd.testing.assert_frame_equal(p, df.loc[p.index])


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("iid", PartitionSpec(kind="iid")),
        (" iid ", PartitionSpec(kind="iid")),
        ("dirichlet:0.5:label", PartitionSpec(kind="dirichlet", alpha=0.5, column="label")),
        ("dirichlet:1e-2:a:b", PartitionSpec(kind="dirichlet", alpha=0.01, column="a:b")),
        ("column:store", PartitionSpec(kind="column", column="store")),
        ("natural", PartitionSpec(kind="column", column="department")),
    ],
)
def test_parse(spec, expected):
    assert parse_partition(spec) == expected


def test_alias_table():
    assert PARTITION_ALIASES["natural"] == "column:department"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("dirichlet:0:label", "alpha must be a finite number > 0"),
        ("dirichlet:-1:label", "alpha must be a finite number > 0"),
        ("dirichlet:nan:label", "alpha must be a finite number > 0"),
        ("dirichlet:inf:label", "alpha must be a finite number > 0"),
        ("dirichlet:abc:label", "alpha 'abc' is not a number"),
        ("dirichlet:0.5", "dirichlet needs a column"),
        ("dirichlet:0.5:", "dirichlet needs a column"),
        ("column:", "is not understood"),
        ("iid:3", "is not understood"),
        ("shards:2", "is not understood"),
        ("", "is not understood"),
    ],
)
def test_bad_specs(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_partition(spec)


def test_spec_model_rejects_inconsistent_fields():
    with pytest.raises(ValueError):
        PartitionSpec(kind="dirichlet", alpha=-1.0, column="x")
    with pytest.raises(ValueError):
        PartitionSpec(kind="iid", column="x")


def test_iid_sizes_and_cover():
    # Prepare: 3000 rows into 7 clients → 428 or 429 rows each (3000 = 7 * 428 + 4)
    df = table()
    # Execute
    parts = partition(df, "iid", 7, seed=1)
    # Assert
    assert sorted(len(p) for p in parts) == [428] * 3 + [429] * 4
    assert_disjoint_cover(df, parts)
    assert all(p.index.is_monotonic_increasing for p in parts)


def test_deterministic_per_seed():
    df = table()
    for spec in ("iid", "dirichlet:0.3:label"):
        a = partition(df, spec, 4, seed=5)
        b = partition(df, spec, 4, seed=5)
        c = partition(df, spec, 4, seed=6)
        assert all(x.index.equals(y.index) for x, y in zip(a, b))
        assert not all(x.index.equals(y.index) for x, y in zip(a, c))


def test_column_one_client_per_value_in_order():
    # Prepare
    df = table()
    counts = df["label"].value_counts()
    # Execute: n_clients is ignored
    parts = partition(df, "column:label", 99, seed=0)
    # Assert
    assert [p["label"].unique().tolist() for p in parts] == [["a"], ["b"], ["c"], ["d"], ["e"]]
    assert [len(p) for p in parts] == [counts[v] for v in "abcde"]
    assert_disjoint_cover(df, parts)


def test_natural_alias_splits_by_department():
    df = table().assign(department=lambda d: np.where(d["x"] > 0, "dept-2", "dept-1"))
    parts = partition(df, "natural", 3, seed=0)
    assert [p["department"].iloc[0] for p in parts] == ["dept-1", "dept-2"]
    assert len(parts[1]) == int((df["x"] > 0).sum())


def test_dirichlet_cover_and_nobody_empty():
    # Prepare: tiny alpha with many clients leaves some clients without rows before repair
    df = table(400)
    # Execute
    parts = partition(df, "dirichlet:0.01:label", 20, seed=0, min_rows=3)
    # Assert
    assert len(parts) == 20
    assert min(len(p) for p in parts) >= 3
    assert_disjoint_cover(df, parts)


def test_dirichlet_huge_alpha_splits_each_label_evenly():
    # With alpha → ∞ the proportions are 1/n_clients: each label's rows split evenly.
    df = table()
    parts = partition(df, "dirichlet:1e9:label", 4, seed=2)
    per_client = pd.DataFrame({i: p["label"].value_counts() for i, p in enumerate(parts)}).fillna(0)
    expected = df["label"].value_counts() / 4
    assert (per_client.sub(expected, axis=0).abs() <= 1).all().all()


def mean_tv_to_global(df: pd.DataFrame, parts: list[pd.DataFrame]) -> float:
    """Mean total-variation distance between each client's label mix and the global mix."""
    glob = df["label"].value_counts(normalize=True)
    tvs = [0.5 * (p["label"].value_counts(normalize=True).reindex(glob.index, fill_value=0) - glob).abs().sum() for p in parts]
    return float(np.mean(tvs))


def test_small_alpha_is_skewed_large_alpha_is_not():
    df = table(5000)
    skewed = mean_tv_to_global(df, partition(df, "dirichlet:0.1:label", 5, seed=0))
    mild = mean_tv_to_global(df, partition(df, "dirichlet:100:label", 5, seed=0))
    iid = mean_tv_to_global(df, partition(df, "iid", 5, seed=0))
    assert skewed > 0.4
    assert mild < 0.08 and iid < 0.05


def test_errors_on_data():
    df = table(10)
    with pytest.raises(ValueError, match="'nope' is not in the table"):
        partition(df, "column:nope", 2, seed=0)
    with pytest.raises(ValueError, match="cannot give 11 clients"):
        partition(df, "iid", 11, seed=0)
    with pytest.raises(ValueError, match="at least 1"):
        partition(df, "iid", 0, seed=0)
    with pytest.raises(ValueError, match=r"missing values at row\(s\) 3$"):
        partition(df.assign(g=[1, 2, None, 1, 2, 1, 2, 1, 2, 1]), "column:g", 2, seed=0)
