"""Plain-word warnings in the reports: weak silhouette, k at the edge of the range tried,
segments merged by disclosure control, DP noise."""

from __future__ import annotations

import pytest

from fedseg.common.synthetic import generate_customers
from fedseg.server.report.caveats import caveats
from fedseg.server.report.markdown import markdown_report
from fedseg.server.report.page import render_html
from tests.test_drift import synthetic_model


@pytest.fixture(scope="module")
def chosen():
    return synthetic_model(generate_customers(3000, 3, seed=4), k=4, choose_from=2)


def with_k(model, k, sil):
    """The model as if k (of the 2..4 tried) had been chosen with this silhouette."""
    return model.model_copy(update={"k": k, "centroids": model.centroids[:k], "segments": model.segments[:k],
                                    "metrics": {**model.metrics, "silhouette": sil}})


def test_weak_silhouette_in_plain_words(chosen):
    notes = caveats(with_k(chosen, 3, 0.12))
    assert any("overlap a lot" in n and "0.12" in n for n in notes)
    assert not any("overlap" in n for n in caveats(with_k(chosen, 3, 0.6)))


@pytest.mark.parametrize("k, word", [(4, "largest"), (2, "smallest")])
def test_k_at_the_edge_of_the_range(chosen, k, word):
    model = with_k(chosen, k, 0.6)
    notes = caveats(model)
    assert any(word in n and "2..4" in n for n in notes)
    assert any(word in line for line in markdown_report(model).splitlines() if line.startswith("> **Note:**"))
    assert f"{word} number of segments tried" in render_html(model)


def test_no_caveat_for_a_k_inside_the_range(chosen):
    assert caveats(with_k(chosen, 3, 0.6)) == []


def test_fixed_k_is_never_at_an_edge():
    model = synthetic_model(generate_customers(2000, 2, seed=4), k=3)
    assert not any("tried" in n for n in caveats(model.model_copy(update={"metrics": {"silhouette": 0.6}})))


def test_merged_segments_are_announced(chosen):
    privacy = {**chosen.privacy, "disclosure_control": {**chosen.privacy["disclosure_control"], "merged_segments": 1}}
    notes = caveats(with_k(chosen, 3, 0.6).model_copy(update={"privacy": privacy}))
    assert any("1 segment(s) had fewer than 10 customers" in n for n in notes)
