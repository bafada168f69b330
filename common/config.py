"""The run configuration: every knob of a federated segmentation run, validated once."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class ConfigError(ValueError):
    """A run configuration that cannot be used."""


EXACT_ROUNDS = 20  # exact runs stop earlier when every candidate converged
DP_ROUNDS = 5  # DP runs all their rounds: fewer, better-funded noisy rounds (BENCHMARKS.md, DP)


class RunConfig(BaseModel):
    """Parameters the server uses to drive a run (Flower run-config keys use dashes)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    k: int = Field(default=0, ge=0, description="fixed k; 0 chooses k over k-min..k-max")
    k_min: int = Field(default=2, ge=2)
    k_max: int = Field(default=8, ge=2, le=64)
    restarts: int = Field(default=3, ge=1, le=16, description="candidate models per k")
    max_rounds: int = Field(default=EXACT_ROUNDS, ge=1, le=1000,
                            description=f"Lloyd rounds at most; 0 or unset: {EXACT_ROUNDS}, under DP {DP_ROUNDS}")
    tol: float = Field(
        default=1e-4, ge=0.0, description="centroid shift tolerance, relative to mean variance"
    )
    seed: int = Field(default=42, ge=0)
    min_nodes: int = Field(default=2, ge=1)
    min_segment_size: int = Field(default=10, ge=1)
    init_tables: int = Field(default=4, ge=1, le=16, description="coreset hash tables")
    init_bits: int = Field(default=12, ge=2, le=14, description="hyperplanes per table")
    secure: bool = Field(default=False, description="secure aggregation of every reply")
    max_dropout: float = Field(default=0.34, ge=0.0, lt=0.5, description="secure mode: tolerated node loss")
    max_records_per_node: int = Field(default=10_000_000, ge=1, description="sizes fixed point")
    epsilon: float = Field(default=0.0, ge=0.0, description="differential privacy ε; 0 = off")
    delta: float = Field(default=1e-6, gt=0.0, lt=1.0, description="differential privacy δ")
    selection: str = Field(default="silhouette", pattern="^(silhouette|calinski_harabasz|davies_bouldin)$")
    as_of: str = Field(default="", pattern=r"^(\d{4}-\d{2}-\d{2})?$",
                       description="transactions nodes: RFM as of this day (YYYY-MM-DD)")
    warm_start: str = Field(default="", description="model.json of a previous run to start Lloyd from")
    exchange_timeout: float = Field(default=300.0, gt=0.0, le=86_400.0,
                                    description="seconds a node has to answer one exchange, else it is dropped")
    dedup: bool = Field(default=False, description="count customers held by several units once (PSI of ids)")

    @model_validator(mode="before")
    @classmethod
    def _default_rounds(cls, data: Any) -> Any:
        """max-rounds 0 (the app config's and the CLI's default) picks the mode's default."""
        if isinstance(data, dict) and not data.get("max_rounds"):
            dp = float(data.get("epsilon") or 0) > 0
            data = {**data, "max_rounds": DP_ROUNDS if dp else EXACT_ROUNDS}
        return data

    @model_validator(mode="after")
    def _k_range(self) -> RunConfig:
        if self.k_min > self.k_max:
            raise ValueError(f"k-min ({self.k_min}) is larger than k-max ({self.k_max})")
        if self.as_of:
            try:
                date.fromisoformat(self.as_of)
            except ValueError:
                raise ValueError(f"as-of {self.as_of!r} is not a calendar date (YYYY-MM-DD)") from None
        if self.epsilon > 0 and not self.k:
            raise ValueError("differential privacy needs a fixed k (--k): choosing k would spend budget")
        return self

    @property
    def dp(self) -> bool:
        return self.epsilon > 0

    @property
    def secure_mode(self) -> bool:
        """DP noise is added in shares, so it always runs under secure aggregation."""
        return self.secure or self.dp

    @property
    def k_values(self) -> list[int]:
        """The k of every candidate family, ascending."""
        return [self.k] if self.k else list(range(self.k_min, self.k_max + 1))

    @classmethod
    def from_flower(cls, run_config: Mapping[str, Any]) -> RunConfig:
        """Build from a Flower run config (dashed keys); unknown keys are ignored."""
        known = set(cls.model_fields)
        values = {k.replace("-", "_"): v for k, v in run_config.items()}
        return cls.parse({k: v for k, v in values.items() if k in known})

    @classmethod
    def parse(cls, values: Mapping[str, Any]) -> RunConfig:
        """Validate, turning pydantic's error list into one readable message."""
        try:
            return cls.model_validate(dict(values))
        except ValidationError as exc:
            details = "; ".join(
                f"{'-'.join(str(p) for p in e['loc']).replace('_', '-') or 'config'}: {e['msg']}"
                for e in exc.errors()
            )
            raise ConfigError(f"invalid run config: {details}") from exc

    def to_flower(self) -> dict[str, int | float | str]:
        """Dashed keys, as Flower's run config spells them."""
        return {k.replace("_", "-"): v for k, v in self.model_dump().items()}
