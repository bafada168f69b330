"""Bad input: each problem gets an error naming the file, the column and the rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fedseg.client.data import DataError, load_table
from fedseg.common.schema import CategoricalFeature, FeatureSchema, NumericFeature, SchemaError, load_schema

SCHEMA = FeatureSchema(
    id="customer_id",
    numeric=(NumericFeature(name="age"), NumericFeature(name="spend", transform="log1p", lower=0)),
    categorical=(CategoricalFeature(name="channel", values=("web", "store")),),
)
GOOD = "customer_id,age,spend,channel\nc1,30,10.5,web\nc2,41,0,store\nc3,25,99,web\n"


def write(tmp_path: Path, text: str, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_good_table_loads(tmp_path):
    table = load_table(write(tmp_path, GOOD), SCHEMA)
    assert table.ids.tolist() == ["c1", "c2", "c3"]
    np.testing.assert_array_equal(table.numeric, [[30, 10.5], [41, 0], [25, 99]])
    assert table.codes[:, 0].tolist() == [0, 1, 0]


def test_parquet_with_native_types_loads(tmp_path):
    path = tmp_path / "t.parquet"
    pd.DataFrame({"customer_id": ["a", "b"], "age": [30, 40], "spend": [1.0, 2.0],
                  "channel": ["web", "web"]}).to_parquet(path)
    assert load_table(path, SCHEMA).numeric.tolist() == [[30, 1.0], [40, 2.0]]


@pytest.mark.parametrize(
    "text, pieces",
    [
        ("customer_id,age,channel\nc1,30,web\n", ["t.csv", "missing column", "spend"]),
        (GOOD.replace("channel\n", "channel,zip\n").replace("web\n", "web,1\n").replace("store\n", "store,2\n"),
         ["t.csv", "unexpected column", "zip"]),
        (GOOD.replace("c2,41", "c2,forty"), ["t.csv", "'age'", "'forty' is not a number", "row 2"]),
        (GOOD.replace("c3,25,99", "c3,25,"), ["t.csv", "'spend'", "missing value", "row 3"]),
        (GOOD.replace("c3,25,99", "c3,25,NaN"), ["'spend'", "NaN", "row 3"]),
        (GOOD.replace("c1,30", "c1,inf"), ["'age'", "infinite", "row 1"]),
        (GOOD.replace("c3,", "c1,"), ["'customer_id'", "duplicate id", "row 3"]),
        (GOOD.replace("c2,", ","), ["'customer_id'", "missing id", "row 2"]),
        (GOOD.replace("c2,41,0,store", "c2,41,0,phone"), ["'channel'", "'phone' is not in the vocabulary", "row 2"]),
        ("customer_id,age,spend,channel\n", ["no rows"]),
        ("", ["t.csv", "empty"]),
    ],
)
def test_bad_tables_name_file_column_and_row(tmp_path, text, pieces):
    with pytest.raises(DataError) as err:
        load_table(write(tmp_path, text), SCHEMA)
    for piece in pieces:
        assert piece in str(err.value)


def test_many_bad_rows_are_summarised(tmp_path):
    # issue 12: the first 20 rows of each problem, then a count
    rows = "".join(f"c{i},x,1,web\n" for i in range(30))
    with pytest.raises(DataError, match=r"rows 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20 \(\+10 more\)"):
        load_table(write(tmp_path, "customer_id,age,spend,channel\n" + rows), SCHEMA)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_table(tmp_path / "nope.csv", SCHEMA)


def test_schema_round_trip_and_errors(tmp_path):
    path = write(tmp_path, SCHEMA.to_toml(), "s.toml")
    assert load_schema(path) == SCHEMA
    with pytest.raises(SchemaError, match="not valid TOML"):
        load_schema(write(tmp_path, "id = [", "bad.toml"))
    with pytest.raises(SchemaError, match="schema_version 2 is not supported"):
        load_schema(write(tmp_path, SCHEMA.to_toml().replace("schema_version = 1", "schema_version = 2"), "v2.toml"))
    with pytest.raises(SchemaError, match="cannot read"):
        load_schema(tmp_path / "absent.toml")
    with pytest.raises(SchemaError, match="duplicate"):
        load_schema(write(tmp_path, 'id = "a"\n[[categorical]]\nname = "c"\nvalues = ["x", "x"]\n', "d.toml"))
    with pytest.raises(SchemaError, match="lower bound must be below"):
        load_schema(write(tmp_path, 'id = "a"\n[[numeric]]\nname = "n"\nlower = 5\nupper = 1\n', "b.toml"))


def test_money_features_are_robust_scaled_by_default(tmp_path):
    text = (
        'id = "c"\n'
        '[[numeric]]\nname = "spend"\ntransform = "log1p"\nlower = 0\nupper = 1e5\nmoney = true\n'
        '[[numeric]]\nname = "income"\nlower = 0\nupper = 1e6\nmoney = true\nscaling = "standard"\n'
        '[[numeric]]\nname = "tips"\nmoney = true\n'  # no public bounds: no histograms possible
        '[[numeric]]\nname = "age"\nlower = 18\nupper = 100\n'
    )
    schema = load_schema(write(tmp_path, text, "m.toml"))
    spend, income, tips, age = schema.numeric
    assert spend.robust and spend.needs_quantiles  # the default for a bounded money feature
    assert not income.robust and not income.needs_quantiles  # opted out
    assert not tips.robust and not tips.needs_quantiles  # standard without bounds
    assert not age.robust and not age.needs_quantiles  # not money
    assert schema.quantile_indices == [0]
    assert load_schema(write(tmp_path, schema.to_toml(), "again.toml")) == schema
    with pytest.raises(SchemaError, match="need public lower and upper bounds"):
        load_schema(write(tmp_path, 'id = "c"\n[[numeric]]\nname = "x"\nscaling = "robust"\n', "r.toml"))


def test_transactions_schema_derived_amounts_are_money_unless_said_otherwise(tmp_path):
    text = (
        'id = "c"\n[transactions]\ndate = "d"\namount = "a"\n'
        '[[numeric]]\nname = "monetary"\ntransform = "log1p"\nlower = 0\nupper = 1e5\n'
        '[[numeric]]\nname = "avg_order_value"\nlower = 0\nupper = 1e4\nmoney = false\n'
        '[[numeric]]\nname = "frequency"\nlower = 1\nupper = 500\n'
    )
    schema = load_schema(write(tmp_path, text, "tx.toml"))
    monetary, aov, frequency = schema.numeric
    assert monetary.money is True and monetary.robust  # derived spend: money by default
    assert aov.money is False and not aov.robust  # the schema said not
    assert frequency.money is None and not frequency.robust  # a count, not an amount
    assert load_schema(write(tmp_path, schema.to_toml(), "again.toml")) == schema
    # the same columns in a customer table (no [transactions]) are not guessed at
    plain = load_schema(write(tmp_path, 'id = "c"\n[[numeric]]\nname = "monetary"\nlower = 0\nupper = 9\n', "c.toml"))
    assert plain.numeric[0].money is None and not plain.numeric[0].robust
