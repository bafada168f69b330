"""The model artifact `model.json` (format `fedseg-model/1`), written atomically."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fedseg.common.profiles import SegmentProfile
from fedseg.common.schema import FeatureSchema

FORMAT = "fedseg-model/1"


class ArtifactError(ValueError):
    """A model file that cannot be read or is not a fedseg model."""


class ScalerOut(BaseModel):
    mean: list[float]
    scale: list[float]


class Segment(BaseModel):
    id: int
    size: int
    share: float
    name: str
    key: str | None = Field(default=None, description="playbook key, e.g. Champions")
    summary: str = ""
    profile: SegmentProfile | None = Field(description="None when below the minimum size")
    share_ci95: float | None = Field(default=None, description="DP: half-width of the share's 95 % interval")


class RunInfo(BaseModel):
    config: dict[str, Any]
    seed: int
    clients: int
    clients_failed: dict[int, str] = Field(
        default_factory=dict, description="node id -> failure code (fixed set; details stay in the node's log)")
    phase_nodes: dict[str, list[int]] = Field(
        default_factory=dict, description="per phase, how many nodes each of its exchanges summed (a node that "
        "left mid-run is in the earlier phases only: the scaler, coreset and early rounds include it)")
    rounds: int = Field(description="communication rounds (server↔nodes exchanges)")
    lloyd_rounds: int
    converged: bool
    timings: dict[str, float]
    feature_schema: FeatureSchema
    fedseg_version: str | None = Field(
        default=None, description="fedseg.__version__ of the ServerApp that ran (the FAB's code under flwr run)")

    @field_validator("clients_failed", mode="before")
    @classmethod
    def _older_list_form(cls, value: Any) -> Any:
        """Models written before failure codes listed free text per failed node; such a
        model still loads (e.g. as a warm start), its texts replaced by the generic code,
        since they may hold a node's cell values."""
        if isinstance(value, list):
            return {i: "node-error" for i in range(len(value))}
        return value


class ModelArtifact(BaseModel):
    """The saved model (model.json) as a run writes it; centroids live in the encoded, scaled space."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["fedseg-model/1"] = FORMAT
    features: list[str]
    scaler: ScalerOut
    centroids: list[list[float]]
    k: int
    segments: list[Segment]
    selection: list[dict[str, float]]
    metrics: dict[str, float]
    run: RunInfo
    privacy: dict[str, Any]
    quantiles: list[dict[str, Any]] | None = Field(
        default=None, description="global quantiles per feature from federated histograms")
    drift: dict[str, Any] | None = Field(
        default=None, description="warm start: customers that changed segment (aggregate over nodes)")
    coverage: dict[str, Any] | None = Field(
        default=None, description="per feature: values missing, imputed, clipped, rows dropped (aggregates)")

    @model_validator(mode="after")
    def _shapes(self) -> ModelArtifact:
        d = len(self.features)
        if len(self.scaler.mean) != d or len(self.scaler.scale) != d:
            raise ValueError("scaler length does not match features")
        if len(self.centroids) != self.k or any(len(c) != d for c in self.centroids):
            raise ValueError("centroids must be k rows of one value per feature")
        if self.run.feature_schema.encoded_names != self.features:
            raise ValueError("features do not match the schema's encoded features")
        return self

    def centroid_array(self) -> np.ndarray:
        return np.asarray(self.centroids, dtype=float)

    def scaler_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.scaler.mean), np.asarray(self.scaler.scale)


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temp file in the same folder and rename: never half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = synced_temp(path, text)
    try:
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def synced_temp(path: Path, text: str) -> str:
    """`text` in a synced temp file beside `path`, named `.<name>.<random>` (removed
    again when the write fails): what a rename then puts in place whole."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # a model or report is meant to be read by the team
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def _no_constant(name: str) -> float:
    """NaN and Infinity are not JSON: a model holding them is not a model."""
    raise json.JSONDecodeError(f"{name} is not a number", name, 0)


def save_artifact(artifact: ModelArtifact, path: str | Path) -> Path:
    """Write the model only if the text written reads back through `load_artifact`'s
    own checks (a non-finite value serialises as null and would not): never a model the
    next `fedseg` command rejects."""
    path = Path(path)
    atomic_write_text(path, artifact_text(artifact, path))
    return path


def artifact_text(artifact: ModelArtifact, path: str | Path = "model.json") -> str:
    """The model as written, checked to read back through `parse_artifact`."""
    optional = {k for k in ("quantiles", "drift", "coverage") if getattr(artifact, k) is None}  # keys only when used
    text = artifact.model_dump_json(indent=2, exclude=optional)
    parse_artifact(text, path)
    return text


def load_artifact(path: str | Path) -> ModelArtifact:
    """Read and validate a model file, with errors that name it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ArtifactError(f"{path}: cannot read model file: {exc.strerror or exc}") from exc
    return parse_artifact(text, path)


def parse_artifact(text: str, path: str | Path) -> ModelArtifact:
    """The model in `text` (named `path` in errors), validated as `load_artifact` does."""
    try:
        raw = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{path}: not JSON: {exc}") from exc
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        found = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
        raise ArtifactError(f"{path}: format is {found!r}, expected {FORMAT!r}")
    try:
        return ModelArtifact.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ArtifactError(
            f"{path}: invalid model: {'.'.join(map(str, first['loc']))}: {first['msg']}"
        ) from exc
