"""The feature schema: which columns a node's table holds and how they are encoded.

A schema is a small TOML file shared by every node and the server. It is public:
column names, transforms, public bounds and category vocabularies, never data.
"""

from __future__ import annotations

import tomllib
import datetime as dt
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

SCHEMA_VERSION = 1
DEFAULT_BINS = 4096  # public histogram bins per feature: log1p(1..500) integers each get their own
RFM_DERIVED = ("recency_days", "frequency", "monetary", "avg_order_value", "tenure_days")
RFM_MONEY = ("monetary", "avg_order_value")  # derived amounts: money unless the schema says not
MISSING_LEVEL = "missing"  # the public category a categorical gap is imputed to
MissingPolicy = Literal["impute", "drop", "error"]
RangePolicy = Literal["clip", "drop", "error"]


class SchemaError(ValueError):
    """A schema file that cannot be read or does not describe a valid table."""


class NumericFeature(BaseModel):
    """A numeric column; `lower`/`upper` are public bounds values are clipped to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    label: str | None = Field(default=None, description="readable name in reports and segment names")
    transform: Literal["none", "log1p"] = "none"
    lower: float | None = None
    upper: float | None = None
    # federated quantiles (histograms over public bins between lower and upper, on the
    # transformed scale); each option below needs them
    bins: int | None = Field(default=None, ge=2, le=65536, description="public histogram bins")
    winsorize: tuple[float, float] | None = Field(default=None, description="global quantiles to clip at")
    # "auto": robust for money features with public bounds (skewed amounts: one big spender
    # must not set the scale), standard otherwise
    scaling: Literal["auto", "standard", "robust"] = "auto"
    money: bool | None = None  # a currency amount (spend, income, order value); None: not said
    score: Literal["none", "high", "low"] = "none"  # RFM 1-5 quintile score; "low": low values score 5
    # a gap: filled with the federated median ("impute", needs bounds), row left out, or error
    missing: MissingPolicy = "impute"
    # a value outside [lower, upper]: clipped to the bound (counted), row left out, or error
    out_of_range: RangePolicy = "clip"
    # set by the server from the federated quantiles (transformed scale), never by users
    winsor_limits: tuple[float, float] | None = None
    # set by the server: some node reported gaps (coverage phase), so the histogram phase
    # gives the federated median, which the server then sets as `impute_value` (original units)
    gaps: bool = False
    impute_value: float | None = None

    @model_validator(mode="after")
    def _bounds_ordered(self) -> NumericFeature:
        if self.lower is not None and self.upper is not None and self.lower >= self.upper:
            raise ValueError(f"feature {self.name!r}: lower bound must be below upper bound")
        if self.transform == "log1p" and self.lower is not None and self.lower <= -1:
            raise ValueError(f"feature {self.name!r}: log1p needs lower bound > -1")
        if self.winsorize is not None and not 0.0 <= self.winsorize[0] < self.winsorize[1] <= 1.0:
            raise ValueError(f"feature {self.name!r}: winsorize needs 0 <= low < high <= 1")
        if self.needs_quantiles and (self.lower is None or self.upper is None):
            raise ValueError(
                f"feature {self.name!r}: winsorize, robust scaling and scores need public lower and "
                "upper bounds (the histogram bins lie between them)"
            )
        return self

    @property
    def robust(self) -> bool:
        """Scaled by median/IQR from federated quantiles: asked for, or by default for a
        money feature whose public bounds allow histograms (without bounds: standard)."""
        bounded = self.lower is not None and self.upper is not None
        return self.scaling == "robust" or (self.scaling == "auto" and bool(self.money) and bounded)

    @property
    def needs_quantiles(self) -> bool:
        """Whether this feature takes part in the federated histogram phase."""
        return self.winsorize is not None or self.robust or self.score != "none" or self.imputes_median

    @property
    def bounded(self) -> bool:
        return self.lower is not None and self.upper is not None

    @property
    def imputes_median(self) -> bool:
        """Gaps reported and filled with the federated median (from public-bin histograms)."""
        return self.gaps and self.missing == "impute" and self.bounded

    @property
    def n_bins(self) -> int:
        return self.bins or DEFAULT_BINS


class TransactionsSpec(BaseModel):
    """The node holds purchases, not customers: RFM per customer is derived on the node.

    `as_of` may come from the run config (`as-of`) instead; the server fills it in."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    date: str = Field(default="date", min_length=1)
    amount: str = Field(default="amount", min_length=1)
    as_of: dt.date | None = None
    earliest: dt.date = Field(default=dt.date(1900, 1, 1), description="older dates are rejected")
    allow_zero_amounts: bool = False


class CategoricalFeature(BaseModel):
    """A categorical column with a public vocabulary; encoded one-hot."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    label: str | None = Field(default=None, description="readable name in reports")
    values: tuple[str, ...] = Field(min_length=2)
    # a gap: the public level "missing" (must be in `values`), row left out, or error
    missing: MissingPolicy = "impute"

    @model_validator(mode="after")
    def _unique_values(self) -> CategoricalFeature:
        if len(set(self.values)) != len(self.values):
            raise ValueError(f"feature {self.name!r}: vocabulary has duplicate values")
        return self


class FeatureSchema(BaseModel):
    """Columns of a customer table, in the order they are encoded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = SCHEMA_VERSION
    id: str = Field(min_length=1)
    numeric: tuple[NumericFeature, ...] = ()
    categorical: tuple[CategoricalFeature, ...] = ()
    allow_extra_columns: bool = False
    transactions: TransactionsSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _derived_money(cls, data: object) -> object:
        """In a transactions schema, the derived `monetary` and `avg_order_value` are
        money (robust scaling by default) unless a feature says `money = false`."""
        if not isinstance(data, dict) or data.get("transactions") is None:
            return data
        numeric = []
        for f in data.get("numeric", ()):  # loop over features, not records
            if isinstance(f, NumericFeature) and f.name in RFM_MONEY and f.money is None:
                f = f.model_copy(update={"money": True})
            elif isinstance(f, dict) and f.get("name") in RFM_MONEY and f.get("money") is None:
                f = {**f, "money": True}
            numeric.append(f)
        return {**data, "numeric": tuple(numeric)}

    @model_validator(mode="after")
    def _check(self) -> FeatureSchema:
        if self.schema_version != SCHEMA_VERSION:
            raise ValueError(
                f"schema_version {self.schema_version} is not supported (expected {SCHEMA_VERSION})"
            )
        names = [self.id, *self.numeric_names, *self.categorical_names]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"column names appear more than once: {dupes}")
        if not self.numeric and not self.categorical:
            raise ValueError("schema has no features")
        if self.transactions is not None:
            unknown = [n for n in self.numeric_names if n not in RFM_DERIVED]
            if unknown or self.categorical:
                raise ValueError(
                    f"a [transactions] schema derives only {list(RFM_DERIVED)} per customer; "
                    f"cannot use {unknown + self.categorical_names}"
                )
            tx = self.transactions
            if len({self.id, tx.date, tx.amount}) < 3:
                raise ValueError("[transactions]: id, date and amount must be three different columns")
        return self

    @property
    def quantile_indices(self) -> list[int]:
        """Numeric features (by position) that need federated histograms."""
        return [i for i, f in enumerate(self.numeric) if f.needs_quantiles]

    @property
    def score_indices(self) -> list[int]:
        """Numeric features (by position) that get an RFM 1-5 quintile score."""
        return [i for i, f in enumerate(self.numeric) if f.score != "none"]

    def customer_view(self) -> FeatureSchema:
        """The per-customer table a transactions node derives (derived columns may be extra)."""
        return self.model_copy(update={"transactions": None, "allow_extra_columns": True})

    def label_of(self, name: str) -> str:
        """The readable label of a column: the schema's `label`, else a known RFM or
        interest-tag wording, else the name with spaces ("tag_tech" -> "tech interest")."""
        for f in (*self.numeric, *self.categorical):
            if f.name == name and f.label:
                return f.label
        return default_label(name)

    @property
    def numeric_names(self) -> list[str]:
        return [f.name for f in self.numeric]

    @property
    def categorical_names(self) -> list[str]:
        return [f.name for f in self.categorical]

    @property
    def columns(self) -> list[str]:
        """Every column the node's table must have, id first (a transactions table: id,
        date, amount)."""
        if self.transactions is not None:
            return [self.id, self.transactions.date, self.transactions.amount]
        return [self.id, *self.numeric_names, *self.categorical_names]

    @property
    def encoded_names(self) -> list[str]:
        """Names of the encoded features: numerics, then `column=value` one-hots."""
        onehots = [f"{c.name}={v}" for c in self.categorical for v in c.values]
        return [*self.numeric_names, *onehots]

    @property
    def n_encoded(self) -> int:
        return len(self.numeric) + sum(len(c.values) for c in self.categorical)

    @classmethod
    def numeric_only(cls, id_column: str, names: list[str]) -> FeatureSchema:
        """Schema for `--features a,b,c`: plain numeric columns, no transform."""
        return cls(id=id_column, numeric=tuple(NumericFeature(name=n) for n in names))

    def to_toml(self) -> str:
        """TOML text that `load_schema` reads back to an equal schema."""
        lines = [f"schema_version = {self.schema_version}", f"id = {_q(self.id)}"]
        if self.allow_extra_columns:
            lines.append("allow_extra_columns = true")
        for f in self.numeric:
            lines += ["", "[[numeric]]", f"name = {_q(f.name)}"]
            if f.label is not None:
                lines.append(f"label = {_q(f.label)}")
            if f.transform != "none":
                lines.append(f"transform = {_q(f.transform)}")
            if f.lower is not None:
                lines.append(f"lower = {f.lower!r}")
            if f.upper is not None:
                lines.append(f"upper = {f.upper!r}")
            if f.bins is not None:
                lines.append(f"bins = {f.bins}")
            if f.winsorize is not None:
                lines.append(f"winsorize = [{f.winsorize[0]!r}, {f.winsorize[1]!r}]")
            if f.money is not None:
                lines.append(f"money = {str(f.money).lower()}")
            if f.scaling != "auto":
                lines.append(f"scaling = {_q(f.scaling)}")
            if f.score != "none":
                lines.append(f"score = {_q(f.score)}")
            if f.missing != "impute":
                lines.append(f"missing = {_q(f.missing)}")
            if f.out_of_range != "clip":
                lines.append(f"out_of_range = {_q(f.out_of_range)}")
        for c in self.categorical:
            values = ", ".join(_q(v) for v in c.values)
            lines += ["", "[[categorical]]", f"name = {_q(c.name)}", f"values = [{values}]"]
            if c.label is not None:
                lines.append(f"label = {_q(c.label)}")
            if c.missing != "impute":
                lines.append(f"missing = {_q(c.missing)}")
        if self.transactions is not None:
            tx = self.transactions
            lines += ["", "[transactions]", f"date = {_q(tx.date)}", f"amount = {_q(tx.amount)}",
                      f"earliest = {tx.earliest.isoformat()}"]
            if tx.as_of is not None:
                lines.append(f"as_of = {tx.as_of.isoformat()}")
            if tx.allow_zero_amounts:
                lines.append("allow_zero_amounts = true")
        return "\n".join(lines) + "\n"


KNOWN_LABELS = {
    "recency_days": "days since last purchase", "frequency": "purchases", "monetary": "total spend",
    "avg_order_value": "average order value", "tenure_days": "days as a customer",
}
INTEREST_PREFIXES = ("tag_", "interest_", "likes_")


def default_label(name: str) -> str:
    """Readable wording of a column name without a schema label."""
    if name in KNOWN_LABELS:
        return KNOWN_LABELS[name]
    for prefix in INTEREST_PREFIXES:
        if name.startswith(prefix) and len(name) > len(prefix):
            return f"{name[len(prefix):].replace('_', ' ')} interest"
    return name.replace("_", " ")


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_schema(text: str, source: str = "<schema>") -> FeatureSchema:
    """Parse schema TOML text; errors name the source and the offending field."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SchemaError(f"{source}: not valid TOML: {exc}") from exc
    try:
        return FeatureSchema.model_validate(raw)
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'schema'}: {e['msg']}" for e in exc.errors()
        )
        raise SchemaError(f"{source}: invalid schema: {details}") from exc


def load_schema(path: str | Path) -> FeatureSchema:
    """Read a schema TOML file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SchemaError(f"{path}: cannot read schema file: {exc.strerror or exc}") from exc
    return parse_schema(text, source=str(path))
