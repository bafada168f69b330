"""The model artifact: round trip, atomic write, clear errors."""

from __future__ import annotations

import json

import pytest

from fedseg.common.artifact import ArtifactError, ModelArtifact, RunInfo, ScalerOut, Segment, load_artifact, save_artifact
from fedseg.common.schema import FeatureSchema

SCHEMA = FeatureSchema.numeric_only("id", ["a", "b"])


def artifact() -> ModelArtifact:
    return ModelArtifact(
        features=["a", "b"], scaler=ScalerOut(mean=[1.0, 2.0], scale=[0.5, 1.0]),
        centroids=[[0.1, 0.2], [-0.3, 0.4]], k=2,
        segments=[Segment(id=0, size=5, share=0.5, name="x", profile=None)] * 2,
        selection=[{"k": 2, "inertia": 1.0}], metrics={"inertia": 1.0},
        run=RunInfo(config={}, seed=1, clients=3, rounds=9, lloyd_rounds=5, converged=True,
                    timings={}, feature_schema=SCHEMA),
        privacy={"mode": "plaintext"},
    )


def test_round_trip(tmp_path):
    path = save_artifact(artifact(), tmp_path / "m" / "model.json")
    assert load_artifact(path) == artifact()
    raw = json.loads(path.read_text())
    assert {"format", "features", "scaler", "centroids", "k", "segments", "selection", "metrics", "run", "privacy"} == set(raw)
    assert raw["format"] == "fedseg-model/1"


def test_failed_write_leaves_old_file_untouched(tmp_path, monkeypatch):
    path = save_artifact(artifact(), tmp_path / "model.json")
    before = path.read_text()
    bad = artifact()
    monkeypatch.setattr("os.replace", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        save_artifact(bad, path)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.json"]  # no temp file left


@pytest.mark.parametrize(
    "text, match",
    [("{", "not JSON"), ('{"format": "other/2"}', "expected 'fedseg-model/1'"),
     ('{"format": "fedseg-model/1", "k": 2}', "invalid model")],
)
def test_bad_model_files(tmp_path, text, match):
    path = tmp_path / "m.json"
    path.write_text(text)
    with pytest.raises(ArtifactError, match=match):
        load_artifact(path)


def test_shape_mismatch_rejected():
    raw = artifact().model_dump()
    raw["centroids"] = [[0.1, 0.2]]
    with pytest.raises(ValueError, match="centroids"):
        ModelArtifact.model_validate(raw)


def _profiled(median: float | None) -> ModelArtifact:
    from fedseg.common.profiles import NumericProfile, SegmentProfile

    quart = {} if median is None else {"q25": median / 2, "median": median, "q75": median * 2}
    profile = SegmentProfile(numeric={"a": NumericProfile(mean=3.0, std=1.0, population_mean=2.0, z=1.0, **quart),
                                      "b": NumericProfile(mean=1.0, std=1.0, population_mean=1.0, z=0.0)},
                             categories={})
    return artifact().model_copy(update={"segments": [Segment(id=0, size=5, share=0.5, name="x", profile=profile),
                                                      Segment(id=1, size=5, share=0.5, name="y", profile=None)]})


def test_segment_quartiles_round_trip(tmp_path):
    path = save_artifact(_profiled(40.0), tmp_path / "model.json")
    loaded = load_artifact(path)
    a = loaded.segments[0].profile.numeric["a"]
    assert (a.q25, a.median, a.q75) == (20.0, 40.0, 80.0)
    assert loaded.segments[0].profile.numeric["b"].median is None


def test_model_written_before_segment_quartiles_still_loads(tmp_path):
    # Prepare: a model.json as older versions wrote it: numeric profiles hold mean, std,
    # population_mean and z only
    raw = json.loads(_profiled(None).model_dump_json())
    for entry in raw["segments"][0]["profile"]["numeric"].values():
        for key in ("q25", "median", "q75", "mean_ci95"):
            entry.pop(key)
    assert set(raw["segments"][0]["profile"]["numeric"]["a"]) == {"mean", "std", "population_mean", "z"}
    path = tmp_path / "old.json"
    path.write_text(json.dumps(raw))
    # Execute
    loaded = load_artifact(path)
    # Assert
    a = loaded.segments[0].profile.numeric["a"]
    assert a.mean == 3.0 and (a.q25, a.median, a.q75) == (None, None, None)


def test_model_without_fedseg_version_still_loads(tmp_path):
    raw = json.loads(save_artifact(artifact(), tmp_path / "model.json").read_text())
    raw["run"].pop("fedseg_version")  # a model.json written before the field existed
    (tmp_path / "old.json").write_text(json.dumps(raw))
    assert load_artifact(tmp_path / "old.json").run.fedseg_version is None


def test_a_model_with_the_older_failure_texts_loads_without_them(tmp_path):
    """Models written before failure codes listed free text (which could hold a cell
    value) per failed node: they still load, e.g. as a warm start, with the generic code."""
    raw = json.loads(artifact().model_dump_json())
    raw["run"]["clients_failed"] = ["node 7: 'x.csv' column age row 3: value 512.0 above upper"]
    path = tmp_path / "model.json"
    path.write_text(json.dumps(raw))
    loaded = load_artifact(path)
    assert loaded.run.clients_failed == {0: "node-error"}
    assert "512" not in loaded.model_dump_json()


@pytest.mark.parametrize("centroid", [float("nan"), float("inf"), -float("inf")])
def test_a_model_that_would_not_load_is_never_written(tmp_path, centroid):
    """Issue 13: a non-finite centroid serialises as null, which `load_artifact` rejects;
    so `save_artifact` refuses before writing, naming the field, and leaves nothing."""
    bad = artifact().model_copy(update={"centroids": [[centroid, 0.2], [-0.3, 0.4]]})
    with pytest.raises(ArtifactError, match=r"centroids\.0\.0"):
        save_artifact(bad, tmp_path / "model.json")
    assert list(tmp_path.iterdir()) == []


def test_nan_and_infinity_literals_are_not_a_model(tmp_path):
    path = save_artifact(artifact(), tmp_path / "model.json")
    path.write_text(path.read_text().replace("0.1", "NaN", 1))
    with pytest.raises(ArtifactError, match="NaN is not a number"):
        load_artifact(path)
