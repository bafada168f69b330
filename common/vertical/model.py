"""The artifact of a vertical run (`model.json`, mode "vertical") and its report.

Per feature, the party that holds it; per segment, its size and each party's block of
its profile (means in original units, category shares) and of its centroid in the
scaled space, all over at least min-segment-size customers. One artifact, one report.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict


class HeldFeature(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str  # encoded name: a numeric column, or column=value
    party: str
    mean: float  # the party's scaler over the shared customers
    scale: float


class VerticalSegment(BaseModel):
    model_config = ConfigDict(frozen=True)
    segment: int
    size: int
    profile: dict[str, dict[str, float]]  # party -> encoded feature -> mean (original units / share)
    centroid: list[float]  # scaled space, every party's features in `features` order


class VerticalModel(BaseModel):
    model_config = ConfigDict(frozen=True)
    mode: Literal["vertical"] = "vertical"
    fedseg_version: str
    k: int
    shared_customers: int
    min_segment_size: int
    merged_segments: int
    secure: bool
    lloyd_rounds: int
    exchanges: int
    features: list[HeldFeature]
    segments: list[VerticalSegment]
    coverage: dict | None = None  # per feature (with its party): missing, imputed (value), clipped, dropped


def save_model(model: VerticalModel, out_dir: Path, reports: Mapping[str, str] | None = None) -> Path:
    """model.json and the reports (file name -> text; default report.md), written
    together at the end (nothing half-way)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / "model.json.tmp"
    tmp.write_text(model.model_dump_json(indent=2))
    for name, text in (reports or {"report.md": report(model)}).items():
        (out_dir / name).write_text(text)
    tmp.replace(out_dir / "model.json")
    return out_dir / "model.json"


def load_model(path: Path) -> VerticalModel:
    return VerticalModel.model_validate(json.loads(Path(path).read_text()))


def report(model: VerticalModel) -> str:
    """The marketing report: segments by size, each party's block of every profile."""
    parties = list(dict.fromkeys(f.party for f in model.features))
    lines = [f"# Segments of the shared customers (vertical federation, {len(parties)} parties)", "",
             f"{model.shared_customers} customers held by every party; k = {model.k}; "
             f"{'secure aggregation' if model.secure else 'plain sums'}; {model.lloyd_rounds} Lloyd rounds.",
             f"Segments under {model.min_segment_size} customers are merged into their nearest "
             f"({model.merged_segments} merged).", ""]
    for party in parties:
        names = [f.name for f in model.features if f.party == party]
        lines += [f"## {party}", "", "| segment | size | " + " | ".join(names) + " |",
                  "|---|---|" + "---|" * len(names)]
        for s in sorted(model.segments, key=lambda s: -s.size):
            values = " | ".join(f"{s.profile[party][n]:.3g}" for n in names)
            lines.append(f"| {s.segment} | {s.size} | {values} |")
        lines.append("")
    return "\n".join(lines)
