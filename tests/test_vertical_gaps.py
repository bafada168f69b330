"""Gaps in a party's columns (issue 15): each party applies the schema's policies to its
own columns; a customer one party drops is shared by nobody; imputed gaps take the
public-bin median of the shared customers' present values. Counts against hand-built
defects, the model against scikit-learn on the pooled table imputed the same way."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs

from fedseg.common.schema import FeatureSchema, NumericFeature
from fedseg.server.orchestrator import RunError
from fedseg.server.vertical_run import build_model
from tests.vertical_helpers import cost, joined_table, run_vertical

N = 300
X, _ = make_blobs(N, 5, centers=4, cluster_std=1.0, random_state=0)
POOLED = pd.DataFrame({
    "id": [f"c{i:03d}" for i in range(N)],
    "a": np.clip(np.round(X[:, 0] * 4 + 50), 0, 99),
    "b": np.clip(np.round(X[:, 1] * 4 + 50), 0, 99),
    "c": np.clip(np.round(X[:, 2] / 2 + 5), 0, 9),
    "d": np.clip(np.round(X[:, 3] * 4 + 50), 0, 99),
    "e": np.clip(np.round(X[:, 4] * 4 + 50), 0, 99),
})
RAW = POOLED.copy()
RAW.loc[[0, 1, 2, 3, 4, 5, 6, 12], "a"] = np.nan  # 12 is a row crm drops (b below)
RAW.loc[10:14, "b"] = np.nan  # crm drops customers 10..14
RAW.loc[[20, 21, 22, 23, 41, 13], "c"] = np.nan  # 41: shop drops it (d); 13: not shared (crm dropped it)
RAW.loc[30:35, "c"] = 15.0  # clipped to 10
RAW.loc[[11, 40], "c"] = 15.0  # 11 not shared, 40 dropped by shop: not counted
RAW.loc[40:42, "d"] = 150.0  # shop drops customers 40..42
EXTRA = pd.DataFrame({"id": [f"u{i}" for i in range(5)], "a": [np.nan, np.nan, np.nan, 1.0, 2.0],
                      "b": [1.0] * 5})  # crm's own customers: their gaps are nobody's business

SCHEMA = FeatureSchema(id="id", numeric=(
    NumericFeature(name="a", lower=0, upper=100, bins=100),
    NumericFeature(name="b", lower=0, upper=100, missing="drop"),
    NumericFeature(name="c", lower=0, upper=10, bins=10),
    NumericFeature(name="d", lower=0, upper=100, out_of_range="drop"),
    NumericFeature(name="e", lower=0, upper=100),
))
SHARED = np.array(sorted(set(POOLED["id"]) - {f"c{i:03d}" for i in [10, 11, 12, 13, 14, 40, 41, 42]}))


def _frames(parties: dict[str, list[str]]) -> dict[str, pd.DataFrame]:
    frames = {name: RAW[["id", *cols]].sample(frac=1.0, random_state=i)
              for i, (name, cols) in enumerate(parties.items())}
    frames["crm"] = pd.concat([frames["crm"], EXTRA[["id", *parties["crm"]]]], ignore_index=True)
    return frames


def _median(values: np.ndarray, upper: float) -> float:
    """numpy's inverted_cdf median, at the left edge of its unit-wide public bin."""
    return float(min(np.floor(np.quantile(values, 0.5, method="inverted_cdf")), upper - 1))


def _imputed_pooled() -> tuple[pd.DataFrame, dict[str, float]]:
    shared = RAW.set_index("id").loc[SHARED]
    medians = {"a": _median(shared["a"].dropna().to_numpy(), 100),
               "c": _median(np.clip(shared["c"].dropna().to_numpy(), 0, 10), 10)}
    return RAW.fillna(medians), medians


TWO = {"crm": ["a", "b"], "shop": ["c", "d", "e"]}
THREE = {"crm": ["a", "b"], "shop": ["c", "d"], "service": ["e"]}
# by hand from the defects above: (missing, imputed, clipped, dropped) over the shared customers,
# gaps of rows a party dropped counted as read, rows it left out per party
COUNTS = {"a": (8, 7, 0, 0), "b": (5, 0, 0, 5), "c": (5, 4, 6, 0), "d": (0, 0, 0, 3), "e": (0, 0, 0, 0)}
LEFT_OUT = {"crm": 5, "shop": 3, "service": 0}


@pytest.mark.parametrize("parties,secure,floor", [(TWO, False, 3), (THREE, True, 6)])
def test_counts_medians_and_model_match_the_pooled_table_imputed_alike(parties, secure, floor):
    result, run, _ = run_vertical(_frames(parties), SCHEMA, parties, k=4, secure=secure, min_segment_size=floor)
    assert result.n_shared == len(SHARED) == 292  # crm's 5 and shop's 3 dropped customers are shared by nobody
    cov = build_model(run, result, "test").coverage
    shown = lambda n: None if 0 < n < floor else n  # noqa: E731
    party_of = {c: p for p, cols in parties.items() for c in cols}
    for name, (missing, imputed, clipped, dropped) in COUNTS.items():
        entry = cov["features"][name]
        assert (entry["missing"], entry["imputed"], entry["clipped"], entry["dropped"]) == \
            (shown(missing), shown(imputed), shown(clipped), shown(dropped)), name
        assert entry["party"] == party_of[name]
    assert cov["parties"] == {p: {"rows_dropped": shown(LEFT_OUT[p])} for p in parties}
    assert cov["shared_customers"] == 292 and cov["suppressed_below"] == floor

    pooled, medians = _imputed_pooled()
    rtol = 1e-6 if secure else 0.0  # secure: sums on a fixed-point grid
    assert_allclose([cov["features"]["a"]["impute_value"], cov["features"]["c"]["impute_value"]],
                    [medians["a"], medians["c"]], rtol=rtol)
    assert cov["features"]["e"]["impute_value"] is None  # no gaps: no median leaves service
    rows = pooled.set_index("id").loc[SHARED]
    blocks = np.hstack([np.clip(rows[cols].to_numpy(float), 0, [100 if c != "c" else 10 for c in cols])
                        for cols in parties.values()])
    assert_allclose(result.scaler.mean, blocks.mean(0), rtol=1e-6 if secure else 1e-12)
    J = joined_table(pooled, SCHEMA, parties, SHARED)
    reference = KMeans(4, n_init=10, random_state=0).fit(J).inertia_
    assert cost(J, result.centroids) / reference <= 1.01


def test_a_gap_the_schema_calls_an_error_stops_the_run_naming_the_party():
    numeric = tuple(f.model_copy(update={"missing": "error"}) if f.name == "a" else f for f in SCHEMA.numeric)
    strict = SCHEMA.model_copy(update={"numeric": numeric})
    with pytest.raises(RunError, match=r"party crm .*left the run \(bad-table\): its features \(a, b\) are gone"):
        run_vertical(_frames(TWO), strict, TWO, k=4, min_segment_size=3)


def test_a_party_gives_no_median_read_from_fewer_than_three_values():
    frames = _frames(TWO)
    frames["shop"] = frames["shop"].assign(c=np.where(frames["shop"]["id"].isin(["c100", "c101"]), 5.0, np.nan))
    with pytest.raises(RunError, match=r"party shop .*left the run \(bad-request\)"):  # c: 2 values among 292
        run_vertical(frames, SCHEMA, TWO, k=4, min_segment_size=3)


def _party(frame: pd.DataFrame, schema: FeatureSchema):
    """One party aligned on all its rows, as `align.align` leaves it (in-process)."""
    from fedseg.client.data import validate_frame
    from fedseg.common.psi.protocol import ids_digest
    from fedseg.common.vertical.align import Aligned
    from fedseg.common.vertical.party import PartyView

    class Base:
        def table(self, s):
            return validate_frame(frame, s, "party")

    ids = Base().table(schema).ids
    aligned = Aligned(session="s", key=b"k" * 32, rows=np.arange(len(ids), dtype=np.int64).tobytes(),
                      ids_sha256=ids_digest(ids), n_rows=len(ids))
    return PartyView(Base(), {}, aligned), len(ids)


def test_a_party_checks_a_forged_coverage_request_itself():
    from fedseg.common.vertical.coverage import VCoverageRequest, answer
    from fedseg.common.vertical.party import VerticalError
    from fedseg.common.vertical.spec import block_schema

    schema = block_schema(SCHEMA, ["c", "d", "e"])
    view, n = _party(RAW[["id", "c", "d", "e"]], schema)
    honest = dict(schema=schema, n_shared=n, num_start=2, num_width=5, cat_start=0, cat_width=0, slot=1, n_parties=2,
                  bound=100.0)
    reply = answer(VCoverageRequest(**honest), view)
    assert reply.imputes.tolist() == [0, 0, 1, 0, 0] and reply.left_out.tolist() == [0, 3]
    # the party's own median of c over its kept rows, at its unit bin's left edge
    kept = np.clip(RAW.loc[~RAW.index.isin([40, 41, 42]), "c"].dropna().to_numpy(), 0, 10)
    assert reply.medians[2] == min(np.floor(np.quantile(kept, 0.5, method="inverted_cdf")), 9)
    for forged, why in [({"bound": 1.0}, "bound"), ({"num_start": 3}, "does not fit"), ({"slot": 2}, "slot"),
                        ({"n_shared": n + 1}, "count of shared customers")]:
        with pytest.raises(VerticalError, match=why):
            answer(VCoverageRequest(**{**honest, **forged}), view)
