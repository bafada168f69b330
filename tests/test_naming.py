"""Segment names and the playbook: RFM keys from z-scores, descriptors, uniqueness, TOML checks."""

from __future__ import annotations

import numpy as np
import pytest

from fedseg.client.data import validate_frame
from fedseg.common.naming import SEGMENT_KEYS, NamingConfig, NamingError, name_profiles, rfm_key
from fedseg.common.playbook import PlaybookError, load_playbook, parse_playbook
from fedseg.common.preprocessing import clip_numeric, one_hot
from fedseg.common.profiles import NumericProfile, ProfileStats, SegmentProfile, build_profiles
from fedseg.common.synthetic import SEGMENTS, generate_customers, synthetic_schema


def prof(z: dict[str, float], means: dict[str, float] | None = None, cats=None) -> SegmentProfile:
    """A profile with the given z-scores (population mean 100, std 10 → mean = 100 + 10 z)."""
    means = means or {}
    return SegmentProfile(
        numeric={f: NumericProfile(mean=means.get(f, 100 + 10 * v), std=1.0, population_mean=100.0, z=v)
                 for f, v in z.items()},
        categories=cats or {},
    )


def rfm(r: float, f: float, m: float, **extra: float) -> SegmentProfile:
    """r is the z of recency_days (positive = longer since the last purchase)."""
    return prof({"recency_days": r, "frequency": f, "monetary": m, **extra})


@pytest.mark.parametrize(
    ("profile", "key"),
    [
        (rfm(-1.2, 1.5, 1.4), "Champions"),
        (rfm(-0.1, 0.8, 0.1), "Loyal"),
        (rfm(1.3, 0.9, 1.1), "At risk"),
        (rfm(1.8, -0.6, -0.5), "Hibernating"),
        (rfm(-0.6, -0.3, -0.2, tenure_days=-1.2), "New"),
        (rfm(-0.6, -0.3, -0.2, tenure_days=0.4), "Promising"),  # recent but known for long: not new
        (rfm(-0.9, -0.5, -0.3), "New"),  # CDNOW schema: no tenure, very recent, few orders
        (rfm(-0.3, -0.1, 0.9), "Big spenders"),
        (rfm(0.2, -0.3, -0.1), "About to sleep"),
        (rfm(-0.1, 0.1, 0.0), "Need attention"),
    ],
)
def test_rfm_keys_follow_the_rules(profile, key):
    assert rfm_key(profile) == key
    assert key in SEGMENT_KEYS


def test_custom_role_mapping_and_missing_roles():
    p = prof({"days_since_order": 1.5, "orders_12m": 1.0, "revenue": 0.8})
    assert rfm_key(p) is None  # nothing recognisable: no RFM key
    cfg = NamingConfig(recency="days_since_order", frequency="orders_12m", monetary="revenue")
    assert rfm_key(p, cfg) == "At risk"
    with pytest.raises(NamingError, match="recency feature 'last_seen'"):
        rfm_key(p, NamingConfig(recency="last_seen"))
    # frequency alone stands in for monetary
    assert rfm_key(prof({"recency_days": -1.0, "frequency": 1.2})) == "Champions"


def test_descriptors_demographics_channel_and_interest():
    senior = prof({"age": 1.8, "income": 1.2, "recency_days": 0.0, "frequency": 0.0, "monetary": 0.0},
                  means={"age": 71.0}, cats={"channel": {"online": 0.1, "store": 0.85, "mobile": 0.05}})
    young = prof({"age": -1.1, "income": -0.2, "tag_tech": 1.4, "tag_deals": 1.1},
                 means={"age": 24.5}, cats={"channel": {"online": 0.45, "store": 0.3, "mobile": 0.25}})
    names = name_profiles([senior, young])
    assert names[0].descriptors == ["affluent seniors", "store"]
    assert names[0].name == "Need attention (affluent seniors, store)"
    assert names[1].key is None  # no RFM features
    assert names[1].descriptors == ["young adults", "tech"]  # online at 45 % is no majority
    assert names[1].name == "young adults, tech"


def test_names_are_unique_within_a_model():
    b = prof({"recency_days": 1.6, "frequency": -0.5, "monetary": -0.1},
             means={"monetary": 44.9})
    a = prof({"recency_days": 1.8, "frequency": -0.6, "monetary": -0.5}, means={"monetary": 14.4})
    twin = rfm(-1.2, 1.5, 1.4)
    names = name_profiles([a, b, twin, twin, None, None])
    texts = [n.name for n in names]
    assert len(set(texts)) == len(texts)
    assert [n.key for n in names[:2]] == ["Hibernating", "Hibernating"]
    # a pair is told apart in words, with the column's readable label
    assert texts[0] == "Hibernating · lower total spend" and texts[1] == "Hibernating · higher total spend"
    trio = name_profiles([a, b, prof({"recency_days": 1.7, "frequency": -0.55, "monetary": -0.3},
                                     means={"monetary": 30.0})], labels={"monetary": "spend (EUR)"})
    assert [n.name for n in trio] == ["Hibernating · spend (EUR) 14.4", "Hibernating · spend (EUR) 44.9",
                                      "Hibernating · spend (EUR) 30"]
    assert texts[2].startswith("Champions") and texts[3].startswith("Champions")
    assert texts[4].startswith("Small segment") and names[4].key is None


def test_longest_standing_segment_is_not_need_attention():
    """The issue's CDNOW case: the richest, longest-tenured segment was "Need attention"."""
    p = prof({"recency_days": 0.02, "frequency": -0.58, "monetary": -0.03, "tenure_days": 1.46, "income": 1.64})
    assert rfm_key(p) == "Loyal"


def test_readable_labels():
    from fedseg.common.schema import FeatureSchema, NumericFeature

    schema = FeatureSchema(id="id", numeric=(NumericFeature(name="tag_tech"), NumericFeature(name="spend_eur", label="spend (EUR)"),
                                             NumericFeature(name="recency_days"), NumericFeature(name="n_visits")))
    assert [schema.label_of(n) for n in schema.numeric_names] == [
        "tech interest", "spend (EUR)", "days since last purchase", "n visits"]


def test_synthetic_ground_truth_segments_get_their_names():
    """Profiles of the generator's true segments: the names match what the generator meant."""
    df = generate_customers(6000, 3, seed=1)
    schema = synthetic_schema()
    table = validate_frame(df[list(schema.columns)], schema, "all")
    labels = df["true_segment"].to_numpy()
    k = len(SEGMENTS)
    member = np.zeros((k, len(labels)))
    member[labels, np.arange(len(labels))] = 1.0
    values = clip_numeric(table.numeric, schema)
    stats = ProfileStats(np.bincount(labels, minlength=k), member @ values, member @ values**2,
                         member @ one_hot(table.codes, schema))
    names = {SEGMENTS[n.id]: n for n in name_profiles(build_profiles(stats, schema, 10))}
    assert names["high-value loyal"].key == "Champions"
    assert names["dormant / at risk"].key in ("Hibernating", "At risk")
    assert names["new customers"].key == "New"
    assert names["families"].key == "Loyal" and "family" in names["families"].descriptors
    assert "affluent seniors" in names["affluent seniors"].descriptors
    assert any("young adults" in d for d in names["young price-sensitive online"].descriptors)
    assert "online" in names["young price-sensitive online"].descriptors


def test_default_playbook_covers_every_key():
    book = load_playbook()
    assert set(book.segments) == set(SEGMENT_KEYS)
    assert all(a.channels for a in book.segments.values())


def test_unknown_playbook_key_names_file_and_key(tmp_path):
    path = tmp_path / "book.toml"
    path.write_text('[segments."Whales"]\ngoal = "g"\nchannels = ["email"]\ncontent = "c"\noffer = "o"\n'
                    'service_level = "s"\n', encoding="utf-8")
    with pytest.raises(PlaybookError) as err:
        load_playbook(path)
    assert str(path) in str(err.value) and "'Whales'" in str(err.value) and "Champions" in str(err.value)


def test_playbook_field_errors_and_naming_table(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[segments.Loyal]\ngoal = "g"\nchannels = []\ncontent = "c"\noffer = "o"\n'
                   'service_level = "s"\nprice = 3\n', encoding="utf-8")
    with pytest.raises(PlaybookError) as err:
        load_playbook(bad)
    assert str(bad) in str(err.value) and "segments.Loyal.channels" in str(err.value)
    assert "segments.Loyal.price" in str(err.value)
    with pytest.raises(PlaybookError, match="not valid TOML"):
        parse_playbook("[segments\n", "x.toml")
    with pytest.raises(PlaybookError, match="missing.toml: cannot read"):
        load_playbook(tmp_path / "missing.toml")
    book = parse_playbook('[naming]\nrecency = "days_since_order"\nfrequency = "orders"\n'
                          '[segments.Loyal]\ngoal = "g"\nchannels = ["sms"]\ncontent = "c"\noffer = "o"\n'
                          'service_level = "s"\n')
    p = prof({"days_since_order": 0.0, "orders": 0.9})
    names = name_profiles([p], book.naming)
    assert names[0].key == "Loyal" and book.action_for(names[0]).channels == ["sms"]
