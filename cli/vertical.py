"""`fedseg simulate --vertical "crm=a,b;shop=c,d"`: the pooled table split by columns
into one party per part, each keeping a random --overlap share of the customers in
common with every other party; vertical k-means over the shared customers."""

from __future__ import annotations

import logging
from pathlib import Path

from rich.console import Console

from fedseg.common.config import RunConfig
from fedseg.common.schema import FeatureSchema, load_schema
from fedseg.common.vertical.model import VerticalModel
from fedseg.common.vertical.spec import check_split, held_only, parse_split


def vertical_inputs(data: Path | None, schema_path: Path | None, id_column: str, spec: str, overlap: float,
                    customers: int, seed: int):
    """(party frames, pooled schema, parties) from the CSV or the synthetic customers."""
    from fedseg.simulations.vertical_split import vertical_split

    parties = parse_split(spec)
    if data is None:
        from fedseg.common.synthetic import generate_customers, synthetic_schema

        frame, schema = generate_customers(customers, 1, seed), synthetic_schema()
    else:
        from fedseg.client.data import read_frame

        frame = read_frame(data)
        cols = [c for cols in parties.values() for c in cols]
        schema = load_schema(schema_path) if schema_path else FeatureSchema.numeric_only(id_column, cols)
    schema = held_only(schema, parties)
    check_split(parties, schema)
    return vertical_split(frame, schema.id, parties, overlap, seed), schema, parties


def simulate_vertical_cli(console: Console, *, data: Path | None, schema_path: Path | None, id_column: str,
                          spec: str, overlap: float, customers: int, config: RunConfig, out_dir: Path) -> VerticalModel:
    from fedseg.simulations.vertical_sim import simulate_vertical

    frames, schema, parties = vertical_inputs(data, schema_path, id_column, spec, overlap, customers, config.seed)
    if config.secure and len(parties) < 3:
        raise ValueError("secure aggregation needs at least 3 parties (a sum of two reveals each to the other)")
    if config.secure:
        from fedseg.common.secure_layout import require_bounds

        require_bounds(schema)  # before any engine starts; --schema gives the bounds
    console.print(f"fedseg: vertical, {len(parties)} parties ({', '.join(parties)}), "
                  f"{overlap:.0%} of the customers held by all; k = {config.k}; out {out_dir}")
    logging.getLogger("flwr").setLevel(logging.ERROR)
    model, wall = simulate_vertical(frames, schema, parties, config, out_dir, on_event=lambda e: None)
    from fedseg.server.report.vertical import vertical_markdown

    console.print(vertical_markdown(model))
    console.print(f"wall time {wall:.1f}s; model: {out_dir / 'model.json'}; reports: {out_dir / 'report.md'}, {out_dir / 'report.html'}")
    return model
