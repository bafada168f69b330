"""Descriptive segment names from profiles, relative to the population.

A marketer reads "Champions (mobile)" faster than "high frequency, high monetary". When
the schema has recency / frequency / monetary-like features, each segment gets an
RFM-style *key* (Champions, Loyal, At risk, ...) from its z-scores against the
population (recency counts the other way: fewer days since the last purchase is
better); the key is what a playbook maps to actions. Demographic and channel
descriptors (young adults, seniors, affluent, the dominant channel when it holds at
least half of the segment, a standout interest tag) follow in brackets. Names are unique
within a model: colliding names get the feature that tells the segments apart, in the
schema's readable label ("Hibernating · longer since last purchase").

Rules, in order (r = -z(recency), f = z(frequency), m = z(monetary), t = z(tenure)):

| key | rule |
|---|---|
| At risk | r <= -0.5 (lapsed) and max(f, m) >= 0.25 (used to buy a lot) |
| Hibernating | r <= -0.5 and otherwise |
| Champions | r >= 0.25, f >= 0.5 and m >= 0.5 |
| Loyal | f >= 0.3 and m >= -0.25 |
| Big spenders | m >= 0.5 |
| Loyal | t >= 0.75 (long-standing customers, not lapsed) |
| New | r >= 0, f <= 0.25 and t <= -0.75 (without tenure: r >= 0.5 and f <= -0.25) |
| Promising | r >= 0.25 |
| About to sleep | r < 0 and f < 0 |
| Need attention | otherwise |

The thresholds are fields of `NamingConfig` and can be set in the playbook's `[naming]`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from fedseg.common.profiles import SegmentProfile, describe
from fedseg.common.schema import default_label

if TYPE_CHECKING:  # pragma: no cover
    from fedseg.common.artifact import ModelArtifact

SEGMENT_KEYS: tuple[str, ...] = (
    "Champions",
    "Loyal",
    "Big spenders",
    "New",
    "Promising",
    "Need attention",
    "About to sleep",
    "At risk",
    "Hibernating",
)
SMALL_SEGMENT = "Small segment"

_RECENCY = ("recency_days", "recency", "days_since_last_purchase", "days_since_last_order")
_FREQUENCY = ("frequency", "n_orders", "orders", "purchases", "num_purchases", "transactions")
_MONETARY = ("monetary", "total_spend", "spend", "revenue", "monetary_value", "total_amount")
_TENURE = ("tenure_days", "tenure", "days_since_first_purchase", "customer_age_days")


class NamingError(ValueError):
    """A naming configuration that does not fit the model's features."""


class NamingConfig(BaseModel):
    """Which feature plays which role, and the z-score thresholds of the rules.

    A role left as None is looked up among common column names (e.g. `recency_days`,
    `frequency`, `monetary`, `tenure_days`); set it to name your own column. A role
    named explicitly must exist in the model.
    """

    model_config = ConfigDict(extra="forbid")

    recency: str | None = Field(None, description="days since the last purchase (lower = better)")
    frequency: str | None = None
    monetary: str | None = None
    tenure: str | None = Field(None, description="days since the first purchase")
    age: tuple[str, ...] = ("age",)
    income: tuple[str, ...] = ("income", "household_income")
    channel: tuple[str, ...] = ("channel", "preferred_channel")
    interest_prefixes: tuple[str, ...] = ("tag_", "interest_", "likes_")
    high: float = Field(0.5, gt=0, description="z at which a feature counts as high")
    lapsed: float = Field(0.5, gt=0, description="-z(recency) at or below -lapsed: not recent")
    young_age: float = 30.0
    senior_age: float = 60.0
    descriptor_z: float = Field(0.75, gt=0, description="|z| for income/age descriptors")
    interest_z: float = Field(1.0, gt=0)
    channel_share: float = Field(0.5, gt=0, le=1)
    max_descriptors: int = Field(2, ge=0)


class SegmentName(BaseModel):
    id: int
    key: str | None = Field(description="RFM-style key a playbook maps to actions; None without RFM")
    name: str
    descriptors: list[str] = []


def _role(configured: str | None, candidates: tuple[str, ...], present: set[str], role: str) -> str | None:
    if configured is not None:
        if configured not in present:
            raise NamingError(
                f"naming: {role} feature {configured!r} is not a numeric feature of the model "
                f"(numeric features: {sorted(present)})"
            )
        return configured
    return next((c for c in candidates if c in present), None)


def rfm_key(profile: SegmentProfile, config: NamingConfig | None = None) -> str | None:
    """The RFM-style key of one segment, or None when the features have no recency plus
    frequency or monetary."""
    config = config or NamingConfig()
    present = set(profile.numeric)
    rec = _role(config.recency, _RECENCY, present, "recency")
    freq = _role(config.frequency, _FREQUENCY, present, "frequency")
    mon = _role(config.monetary, _MONETARY, present, "monetary")
    ten = _role(config.tenure, _TENURE, present, "tenure")
    if rec is None or (freq is None and mon is None):
        return None
    z = {name: p.z for name, p in profile.numeric.items()}
    r = -z[rec]
    f = z[freq] if freq else z[mon]  # a missing role mirrors the other one
    m = z[mon] if mon else z[freq]
    hi = config.high
    if r <= -config.lapsed:
        return "At risk" if max(f, m) >= hi / 2 else "Hibernating"
    if r >= hi / 2 and f >= hi and m >= hi:
        return "Champions"
    if f >= 0.6 * hi and m >= -hi / 2:
        return "Loyal"
    if m >= hi:
        return "Big spenders"
    if ten is not None and z[ten] >= 1.5 * hi:  # the longest-standing customers are not "Need attention"
        return "Loyal"
    if ten is not None:
        if r >= 0 and f <= hi / 2 and z[ten] <= -1.5 * hi:
            return "New"
    elif r >= hi and f <= -hi / 2:
        return "New"
    if r >= hi / 2:
        return "Promising"
    if r < 0 and f < 0:
        return "About to sleep"
    return "Need attention"


def descriptors(profile: SegmentProfile, config: NamingConfig | None = None) -> list[str]:
    """Demographic, channel and interest words, most telling first."""
    config = config or NamingConfig()
    out: list[str] = []
    age_word = income_word = None
    for name in config.age:
        p = profile.numeric.get(name)
        if p is not None:
            if p.mean < config.young_age:
                age_word = "young adults"
            elif p.mean >= config.senior_age:
                age_word = "seniors"
            elif p.z >= config.descriptor_z:
                age_word = "older"
            elif p.z <= -config.descriptor_z:
                age_word = "younger"
            break
    for name in config.income:
        p = profile.numeric.get(name)
        if p is not None:
            if p.z >= config.descriptor_z:
                income_word = "affluent"
            elif p.z <= -config.descriptor_z:
                income_word = "budget"
            break
    if income_word and age_word in ("young adults", "seniors"):
        out.append(f"{income_word} {age_word}")  # "affluent seniors"
    else:
        out += [w for w in (age_word, income_word) if w]
    for col in config.channel:
        shares = profile.categories.get(col)
        if shares:
            value, share = max(shares.items(), key=lambda kv: kv[1])
            if share >= config.channel_share:
                out.append(value)
            break
    interests = [
        (p.z, name) for name, p in profile.numeric.items()
        if name.startswith(config.interest_prefixes) and p.z >= config.interest_z
    ]
    if interests:
        top = max(interests)[1]
        prefix = next(pre for pre in config.interest_prefixes if top.startswith(pre))
        out.append(top[len(prefix):].replace("_", " "))
    return out


def _compose(key: str | None, words: list[str], profile: SegmentProfile) -> str:
    if key is None:
        return ", ".join(words) if words else describe(profile, top=2)
    return f"{key} ({', '.join(words)})" if words else key


def name_profiles(profiles: list[SegmentProfile | None], config: NamingConfig | None = None,
                  labels: Mapping[str, str] | None = None) -> list[SegmentName]:
    """A unique name per segment (in order); segments without a profile are 'Small segment'.
    `labels`: readable column labels (`FeatureSchema.label_of`) for disambiguation."""
    config = config or NamingConfig()
    out: list[SegmentName] = []
    for j, profile in enumerate(profiles):
        if profile is None:
            out.append(SegmentName(id=j, key=None, name=SMALL_SEGMENT))
            continue
        key = rfm_key(profile, config)
        words = descriptors(profile, config)
        out.append(SegmentName(id=j, key=key, name=_compose(key, words[: config.max_descriptors], profile),
                               descriptors=words))
    _disambiguate(out, profiles, config, labels or {})
    return out


def _disambiguate(names: list[SegmentName], profiles: list[SegmentProfile | None], config: NamingConfig,
                  labels: Mapping[str, str]) -> None:
    """Colliding names: first more descriptors, then the feature where they differ most."""
    groups = _collisions(names)
    for ids in groups:  # 1) the descriptors left out by max_descriptors
        for j in ids:
            p = profiles[j]
            if p is not None and len(names[j].descriptors) > config.max_descriptors:
                names[j].name = _compose(names[j].key, names[j].descriptors, p)
    for ids in _collisions(names):  # 2) the numeric feature that separates the group most
        described = [j for j in ids if profiles[j] is not None]
        if len(described) > 1:
            feats = list(profiles[described[0]].numeric)
            spread = {f: max(profiles[j].numeric[f].z for j in described) - min(profiles[j].numeric[f].z for j in described)
                      for f in feats}
            best = max(feats, key=lambda f: spread[f])
            label = labels.get(best) or default_label(best)
            if len(described) == 2:  # a pair: "higher ..." / "lower ..."
                lo, hi = sorted(described, key=lambda j: profiles[j].numeric[best].mean)
                names[lo].name, names[hi].name = f"{names[lo].name} · lower {label}", f"{names[hi].name} · higher {label}"
                continue
            for j in described:
                names[j].name = f"{names[j].name} · {label} {_num(profiles[j].numeric[best].mean)}"
    for ids in _collisions(names):  # 3) last resort: the segment id
        for j in ids:
            names[j].name = f"{names[j].name} #{j}"


def _num(x: float) -> str:
    """About three significant digits, thousands separated, never scientific notation."""
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def _collisions(names: list[SegmentName]) -> list[list[int]]:
    by_name: dict[str, list[int]] = defaultdict(list)
    for n in names:
        by_name[n.name].append(n.id)
    return [ids for ids in by_name.values() if len(ids) > 1]


def name_model(model: ModelArtifact, config: NamingConfig | None = None) -> list[SegmentName]:
    """Names for every segment of a model artifact."""
    schema = model.run.feature_schema
    labels = {n: schema.label_of(n) for n in schema.numeric_names}
    return name_profiles([s.profile for s in model.segments], config, labels)
