"""`fedseg simulate` options that apply in some modes only.

An option typed where it has no effect is an error, never silently ignored: a user who
asks for `--clients 8` on a split that has one node per column value, or `--stores 3`
without `--cdnow`, would otherwise get a run that is not the one they asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SimulateOptions:
    """The options as typed; None means "not given" (the default then applies)."""

    data: Path | None = None
    schema: Path | None = None
    features: str | None = None
    id_column: str | None = None
    partition: str | None = None
    clients: int | None = None
    k: int | None = None
    k_range: str | None = None
    customers: int | None = None
    restarts: int | None = None
    epsilon: float | None = None
    delta: float | None = None
    cdnow: bool = False
    stores: int | None = None
    warm_start: Path | None = None


def ignored_options(o: SimulateOptions) -> list[str]:
    """One sentence per option given in a mode where it would have no effect."""
    problems = []
    if o.cdnow:
        given = [name for name, value in (("--data", o.data), ("--schema", o.schema), ("--features", o.features),
                                          ("--id", o.id_column), ("--partition", o.partition),
                                          ("--clients", o.clients), ("--customers", o.customers)) if value is not None]
        if given:
            problems.append(f"--cdnow brings its own data, schema and split (--stores N); drop {', '.join(given)}")
    elif o.stores is not None:
        problems.append("--stores only applies to --cdnow")
    if o.data is not None and o.customers is not None:
        problems.append("--customers sizes the built-in synthetic data; it does not apply with --data")
    if o.id_column is not None and o.features is None:
        problems.append("--id only applies with --features (a --schema names its own id column)")
    one_node_per_value = (o.partition or "").startswith("column:")
    if o.data is None and o.partition == "column:department":  # synthetic: --clients departments
        one_node_per_value = False
    if o.clients is not None and one_node_per_value:
        problems.append(f"--clients does not apply to --partition {o.partition}: one node per value of the column")
    if o.k is not None and o.k_range is not None:
        problems.append("give either --k or --k-range, not both")
    if o.warm_start is not None and o.k is None and o.k_range is not None:
        problems.append("--warm-start keeps the old model's k (or a fixed --k); --k-range does not apply")
    if o.epsilon is None and o.delta is not None:
        problems.append("--delta only applies with --epsilon")
    if o.epsilon is not None and o.restarts is not None:
        problems.append("--restarts does not apply under --epsilon: differential privacy runs a fixed, small "
                        "number of candidates (each costs budget)")
    return problems


def check_options(options: SimulateOptions) -> None:
    """Raise ValueError naming every option that would be ignored."""
    problems = ignored_options(options)
    if problems:
        raise ValueError("; ".join(problems))
