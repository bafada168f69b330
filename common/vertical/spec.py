"""Which party holds which columns: parsed from `crm=age,income;shop=frequency`, checked
against the schema, and each party's own block schema (the one its node pins).

Every feature belongs to exactly one party; the id column to all of them.
"""

from __future__ import annotations

import re

from fedseg.common.schema import FeatureSchema

_PARTY = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")


class SpecError(ValueError):
    """A `--vertical` split that is malformed or does not match the schema."""


def parse_split(text: str) -> dict[str, list[str]]:
    """party -> its columns, in the order given; SpecError names what is wrong."""
    parties: dict[str, list[str]] = {}
    for part in [p.strip() for p in text.split(";") if p.strip()]:
        name, sep, cols = part.partition("=")
        name = name.strip()
        columns = [c.strip() for c in cols.split(",") if c.strip()]
        if not sep or not _PARTY.match(name) or not columns:
            raise SpecError(f"--vertical parts look like party=col1,col2; got {part!r}")
        if name in parties:
            raise SpecError(f"party {name!r} appears twice in --vertical")
        parties[name] = columns
    if len(parties) < 2:
        raise SpecError("--vertical needs at least two parties, e.g. 'crm=age,income;shop=frequency'")
    return parties


def check_split(parties: dict[str, list[str]], schema: FeatureSchema) -> None:
    """Every schema feature held by exactly one party, and nothing else."""
    held = [c for cols in parties.values() for c in cols]
    twice = sorted({c for c in held if held.count(c) > 1})
    if twice:
        raise SpecError(f"columns held by more than one party: {twice}")
    if schema.id in held:
        raise SpecError(f"the id column {schema.id!r} is shared by every party; do not list it")
    features = [*schema.numeric_names, *schema.categorical_names]
    unknown = sorted(set(held) - set(features))
    if unknown:
        raise SpecError(f"columns not in the schema: {unknown}")
    missing = sorted(set(features) - set(held))
    if missing:
        raise SpecError(f"schema features no party holds: {missing}")


def held_only(schema: FeatureSchema, parties: dict[str, list[str]]) -> FeatureSchema:
    """The schema's features some party holds (a pooled schema may list more columns)."""
    held = {c for cols in parties.values() for c in cols}
    unknown = sorted(held - {*schema.numeric_names, *schema.categorical_names})
    if unknown:
        raise SpecError(f"--vertical names columns the schema does not have: {unknown}")
    return block_schema(schema, sorted(held))


def block_schema(schema: FeatureSchema, columns: list[str]) -> FeatureSchema:
    """The schema of one party's block: the id and its columns, in schema order."""
    keep = set(columns)
    return schema.model_copy(update={
        "numeric": tuple(f for f in schema.numeric if f.name in keep),
        "categorical": tuple(f for f in schema.categorical if f.name in keep),
    })


def block_schemas(schema: FeatureSchema, parties: dict[str, list[str]]) -> dict[str, FeatureSchema]:
    check_split(parties, schema)
    return {name: block_schema(schema, cols) for name, cols in parties.items()}
