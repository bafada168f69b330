"""Real, messy customer tables (issue 12 items 1-3): gaps and out-of-range values by the
schema's policies, every problem named in the user's terms, counts checked by hand."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from fedseg.cli.main import cli
from fedseg.client.data import DataError, load_table, read_frame
from fedseg.common.config import RunConfig
from fedseg.common.schema import CategoricalFeature, FeatureSchema, NumericFeature, load_schema
from fedseg.common.schema_draft import round_outward
from fedseg.common.table_policy import apply_policies
from fedseg.server.model import build_artifact
from fedseg.server.orchestrator import Orchestrator
from fedseg.server.report.markdown import markdown_report
from fedseg.server.report.page import render_html
from tests.helpers import frame_nodes, transport
from tests.messy import cleaned, cost_ratio, write_messy


def _schema(**policies) -> FeatureSchema:
    return FeatureSchema(id="id", numeric=(NumericFeature(name="a", lower=0, upper=10, **policies),),
                         categorical=(CategoricalFeature(name="c", values=("x", "missing")),))


def test_policies_by_hand():
    raw = np.array([[1.0], [np.nan], [12.0], [-3.0], [5.0]])
    codes = np.array([[0], [-1], [0], [1], [-1]])
    out = apply_policies(raw, codes, _schema())  # impute, clip
    assert out.keep.all() and out.problems == []
    np.testing.assert_array_equal(out.numeric[[0, 2, 3, 4]], [[1.0], [10.0], [0.0], [5.0]])
    assert np.isnan(out.numeric[1, 0])  # waits for the federated median
    assert out.codes[:, 0].tolist() == [0, 1, 0, 1, 1]  # gaps take the level "missing"
    assert out.coverage.missing.tolist() == [1, 2] and out.coverage.imputed.tolist() == [1, 2]
    assert out.coverage.clipped.tolist() == [2] and out.coverage.kept == 5

    dropped = apply_policies(raw, codes, _schema(missing="drop", out_of_range="drop"))
    assert dropped.keep.tolist() == [True, False, False, False, True]
    assert dropped.coverage.dropped.tolist() == [3, 0] and dropped.coverage.clipped.tolist() == [0]
    assert dropped.coverage.imputed.tolist() == [0, 1]  # the city gap of row 5, kept

    errors = apply_policies(raw, codes, _schema(missing="error", out_of_range="error"))
    assert [(p.column, p.rows.tolist()) for p in errors.problems] == [("a", [1]), ("a", [2, 3])]

    filled = apply_policies(raw, codes, _schema().model_copy(update={"numeric": (
        NumericFeature(name="a", lower=0, upper=10, impute_value=4.0),)}))
    assert filled.numeric[1, 0] == 4.0


def test_values_no_sum_survives_are_errors_naming_the_rows():
    schema = FeatureSchema(id="id", numeric=(NumericFeature(name="a"), NumericFeature(name="b", transform="log1p")))
    raw = np.array([[1.0, 1.0], [1e308, 2.0], [np.inf, -5.0]])
    out = apply_policies(raw, np.zeros((3, 0), np.int64), schema)
    assert [(p.column, p.rows.tolist()) for p in out.problems] == [("a", [1, 2]), ("b", [2])]
    assert "larger than" in out.problems[0].kind and "log1p" in out.problems[1].kind


def test_check_lists_every_problem_of_the_file(tmp_path):
    """Regression (issue 12): an empty cell at row 10 was not reported when a NaN at row
    20 was; and a 1e308 and an age above `upper` passed `check` silently."""
    rows = [f"c{i},{30 + i % 40},{i}" for i in range(1, 41)]
    rows[9] = "c10,,10"  # empty cell
    rows[19] = "c20,NaN,20"
    rows[24] = "c25,1e308,25"
    rows[29] = "c30,500,30"
    (tmp_path / "t.csv").write_text("id,age,n\n" + "\n".join(rows) + "\n")
    (tmp_path / "s.toml").write_text('id = "id"\n[[numeric]]\nname = "age"\nlower = 18.0\nupper = 100.0\n'
                                     'missing = "error"\nout_of_range = "error"\n[[numeric]]\nname = "n"\n')
    done = CliRunner().invoke(cli, ["check", "--schema", str(tmp_path / "s.toml"), "--data", str(tmp_path / "t.csv")])
    assert done.exit_code == 2
    text = " ".join(done.output.split())
    assert "2 problems" in text
    assert "column 'age': missing value (empty or NaN) at rows 10, 20" in text
    assert "column 'age': value outside the public bounds [18.0, 100.0] at rows 25, 30" in text


def test_problems_are_capped_at_20_rows_and_20_kinds(tmp_path):
    names = [f"x{j}" for j in range(25)]
    header = "id," + ",".join(names)
    rows = [f"c{i}," + ",".join(["oops"] * 25) for i in range(30)]
    (tmp_path / "t.csv").write_text(header + "\n" + "\n".join(rows) + "\n")
    schema = FeatureSchema.numeric_only("id", names)
    with pytest.raises(DataError) as err:
        load_table(tmp_path / "t.csv", schema)
    text = str(err.value)
    assert "25 problems" in text and "and 5 more problems" in text
    assert "rows 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20 (+10 more)" in text


def test_semicolon_and_latin1_files_just_work_or_say_what_to_pass(tmp_path):
    schema = FeatureSchema(id="id", numeric=(NumericFeature(name="n"),),
                           categorical=(CategoricalFeature(name="city", values=("Málaga", "Bilbao")),))
    path = tmp_path / "t.csv"
    path.write_bytes("id;n;city\na;1,5;Málaga\nb;2;Bilbao\n".encode("latin-1"))
    table = load_table(path, schema)
    assert table.codes[:, 0].tolist() == [0, 1] and table.numeric[:, 0].tolist() == [1.5, 2.0]
    with pytest.raises(DataError, match="pass --delimiter ';'"):
        from fedseg.client.reading import ReadOptions

        load_table(path, schema, ReadOptions(delimiter=","))
    with pytest.raises(DataError, match=r"not utf-8 \(byte 0xe1.*--encoding"):
        load_table(path, schema, ReadOptions(encoding="utf-8"))


def test_schema_command_proposes_bounds_rounded_outward_for_the_owner(tmp_path):
    assert (round_outward(1234.0, up=True), round_outward(1234.0, up=False)) == (1300.0, 1200.0)
    assert (round_outward(-0.0371, up=False), round_outward(18.0, up=False), round_outward(0.0, up=True)) == (
        -0.038, 18.0, 0.0)
    data, _, frame, facts = write_messy(tmp_path, n=600)
    out = tmp_path / "proposed.toml"
    done = CliRunner().invoke(cli, ["schema", str(data), "--out", str(out)])
    assert done.exit_code == 0, done.output
    text = out.read_text()
    schema = load_schema(out)
    age, income, visits = schema.numeric
    present = frame["age"].replace({"": "nan"}).astype(float)
    assert age.lower <= present.min() and age.upper >= present.max() == 500  # outward, from the data
    assert income.upper < 1e308  # a value no sum survives is left out of the proposal
    assert text.count("PROPOSED from the data") == 3  # every bound marked for the owner
    assert schema.categorical_names == ["unit", "city"]
    assert "missing" in schema.categorical[1].values and "Córdoba" in schema.categorical[1].values
    ok = CliRunner().invoke(cli, ["check", "--schema", str(out), "--data", str(data)])
    assert ok.exit_code == 0, ok.output
    assert "income: 555 present" in ok.output and "45 missing" in ok.output


def test_messy_table_in_process_counts_and_quality(tmp_path):
    """Every node takes part; imputed / clipped / dropped counts equal the hand counts;
    cost within 1 % of scikit-learn's KMeans(n_init=10) on the table cleaned by hand."""
    data, schema_path, frame, facts = write_messy(tmp_path)
    pooled = read_frame(data)
    frames = [g for _, g in pooled.groupby("unit")]
    nodes = frame_nodes(frames)
    schema = load_schema(schema_path)
    config = RunConfig(k=4, seed=3)
    result = Orchestrator(config, schema, transport(nodes), list(nodes)).run()
    model = build_artifact(result, config, schema)
    assert model.run.clients == 4 and not model.run.clients_failed
    X, hand = cleaned(frame, facts)
    cov = model.coverage["features"]
    assert model.coverage["rows_dropped"] == hand["dropped"] == cov["visits"]["dropped"]
    assert cov["age"]["imputed"] == hand["imputed_age"] and cov["income"]["imputed"] == hand["imputed_income"]
    assert cov["age"]["clipped"] == hand["clipped_age"]
    assert cov["income"]["clipped"] is None  # 1 value: below the disclosure floor, not published
    assert cov["city"]["imputed"] == hand["imputed_city"]
    assert sum(s.size for s in model.segments) == len(X)
    report = markdown_report(model)
    assert "## Data coverage" in report and f"| age | {len(facts['nan_age'])} | {hand['imputed_age']} (" in report
    assert "| income |" in report and "< 10 |" in report  # the one clipped income: below the floor
    width = np.array([82 / 4096, 200000 / 4096])  # one public bin
    assert np.all(np.abs(np.array([cov[c]["impute_value"] for c in ("age", "income")])
                         - hand["medians"][:2]) <= width)
    assert cov["visits"]["impute_value"] is None  # missing = "drop": nothing imputed
    assert cost_ratio(model, X) <= 1.01


def test_messy_table_without_schema_options_fails_before_the_engine(tmp_path):
    data, _, frame, facts = write_messy(tmp_path)
    out = tmp_path / "run"
    done = CliRunner().invoke(cli, ["simulate", "--data", str(data), "--features", "age,income,visits",
                                    "--id", "customer_id", "--k", "4", "--out", str(out)])
    assert done.exit_code == 2 and not out.exists()
    text = " ".join(done.output.split())
    assert str(data.name) in text and "problems" in text
    income_gaps = np.sort(np.concatenate([facts["empty_income"], facts["nan_income"]])) + 1
    shown = ", ".join(str(r) for r in income_gaps[:20])
    assert f"column 'income': missing value (empty or NaN) at rows {shown} (+25 more)" in text
    assert "column 'income': value larger than 9e+15" in text
    assert f"at row {facts['huge_income'][0] + 1};" in text
    assert "column 'age': missing value" in text and "column 'visits': missing value" in text
    assert "fedseg-sim" not in text and "node-" not in text  # the user's file, not a node's
    assert "read as cp1252" in text and "separated by ';'" in text  # how the file was read


def test_secure_without_bounds_fails_before_the_engine_with_the_fix(tmp_path):
    data, *_ = write_messy(tmp_path, n=300)
    out = tmp_path / "run"
    (tmp_path / "nob.toml").write_text('id = "customer_id"\nallow_extra_columns = true\n'
                                       '[[numeric]]\nname = "visits"\nmissing = "drop"\n')
    done = CliRunner().invoke(cli, ["simulate", "--data", str(data), "--schema", str(tmp_path / "nob.toml"),
                                    "--k", "3", "--out", str(out), "--epsilon", "1"])
    assert done.exit_code == 2 and not out.exists()
    text = " ".join(done.output.split())
    assert "--epsilon needs public lower and upper bounds" in text and "fedseg schema TABLE" in text


def test_check_node_shows_the_coverage_of_every_column(tmp_path):
    data, schema, frame, facts = write_messy(tmp_path, n=600)
    done = CliRunner().invoke(cli, ["check-node", "--schema", str(schema), "--node-config", f'data-path="{data}"'])
    assert done.exit_code == 0, done.output
    gaps = len(facts["empty_income"]) + len(facts["nan_income"])
    kept = 600 - len(facts["gap_visits"])
    assert f"coverage: 600 rows read, {kept} take part" in done.output
    assert f"income: {600 - gaps} present" in done.output
    assert f"visits: {kept} present" in done.output and f"{len(facts['gap_visits'])} rows dropped" in done.output


def test_secure_run_on_the_messy_table_gives_the_plaintext_counts_and_model(tmp_path):
    """The coverage counts and the federated medians go through secure aggregation too."""
    from fedseg.simulations.local_transport import LocalTransport

    data, schema_path, *_ = write_messy(tmp_path, n=1600)
    frames = [g for _, g in read_frame(data).groupby("unit")]
    schema = load_schema(schema_path)
    results = []
    for secure in (False, True):
        tr = LocalTransport(frame_nodes(frames))
        results.append(Orchestrator(RunConfig(k=3, seed=5, secure=secure), schema, tr, list(tr.nodes)).run())
    plain, secure = results
    assert secure.coverage == plain.coverage and plain.coverage["features"]["age"]["imputed"] > 0
    assert not secure.failures
    np.testing.assert_allclose(secure.chosen.centroids, plain.chosen.centroids, atol=1e-6)


def test_messy_table_shared_between_units_counted_once(tmp_path):
    """Issue 12's combined case: the messy export (NaN and empty cells, a 1e308, values
    above `upper`, Latin-1) with 30 % of its customers also held by a second
    unit, run with dedup: every node takes part, segment sizes sum to the distinct kept
    customers, the coverage counts are the hand counts of the distinct table (a shared
    customer's gaps counted once; a dropped row per unit holding it), cost within 1 % of scikit-learn on the cleaned,
    deduplicated pooled table. Before dedup the same run counts the copies twice."""
    from fedseg.simulations.overlap import with_shared_customers

    data, schema_path, frame, facts = write_messy(tmp_path)
    pooled = read_frame(data)
    frames = with_shared_customers([g for _, g in pooled.groupby("unit")], 0.3, seed=5)
    copies = sum(len(f) for f in frames) - len(pooled)
    assert copies == round(0.3 * len(pooled))
    schema = load_schema(schema_path)
    X, hand = cleaned(frame, facts)
    for dedup in (False, True):
        nodes = frame_nodes(frames)
        config = RunConfig(k=4, seed=3, dedup=dedup)
        result = Orchestrator(config, schema, transport(nodes), list(nodes)).run()
        model = build_artifact(result, config, schema)
        assert model.run.clients == 4 and not model.run.clients_failed
        total = sum(s.size for s in model.segments)
        if not dedup:
            assert total > len(X)  # copies counted twice
            continue
        assert total == len(X)  # distinct customers minus the rows the schema drops
        cov = model.coverage["features"]
        gap_ids = frame["customer_id"].iloc[facts["gap_visits"]]  # rows the schema drops never reach the
        held = sum(int(f["customer_id"].isin(gap_ids).sum()) for f in frames)  # PSI: counted per holder
        assert model.coverage["rows_dropped"] == cov["visits"]["dropped"] == held > hand["dropped"]
        assert cov["age"]["imputed"] == hand["imputed_age"] and cov["income"]["imputed"] == hand["imputed_income"]
        assert cov["age"]["clipped"] == hand["clipped_age"] and cov["city"]["imputed"] == hand["imputed_city"]
        shared = copies - (held - hand["dropped"])
        assert model.privacy["deduplication"]["shared_customers"] == shared
        assert cost_ratio(model, X) <= 1.01
        page = render_html(model)  # what a marketer reads: the overlap and the coverage table
        assert f"{shared:,} customers were held by more than one of the 4 units" in page
        assert (f"<tr><td>age</td><td>{len(facts['nan_age'])}</td><td>{hand['imputed_age']} (" in page
                and f"<td>{hand['clipped_age']}</td><td>0</td></tr>" in page)
