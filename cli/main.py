"""The `fedseg` command: federated runs, reports, and deployment set-up and checks.

Every user-facing failure (bad data, bad schema, bad options, a run that cannot go on)
prints one clear line and exits with status 2; nothing is half-written.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

import fedseg
from fedseg.client.data import DataError
from fedseg.common.artifact import ArtifactError
from fedseg.common.config import ConfigError
from fedseg.common.schema import SchemaError
from fedseg.cli.deploy import deploy_cli
from fedseg.cli.options import SimulateOptions, check_options
from fedseg.cli.table_check import DelimiterOpt, EncodingOpt
from fedseg.server.orchestrator import RunError

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("FLWR_DISABLE_UPDATE_CHECK", "1")
os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")

cli = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.splitlines()[0])
cli.add_typer(deploy_cli)  # certs, node-keys, identity, roster, connection, register, check-node, label-node
console = Console(stderr=False)
USER_ERRORS = (DataError, SchemaError, ConfigError, RunError, ArtifactError, ValueError)


def print_version(requested: bool) -> None:
    """Print `fedseg <version>` and stop, before any command runs (an eager option's callback)."""
    if requested:
        console.print(f"fedseg {fedseg.__version__}", highlight=False)
        raise typer.Exit()


@cli.callback()
def root(
    version: Annotated[bool, typer.Option("--version", is_eager=True, callback=print_version,
                                          help="print the fedseg version and exit")] = False,
) -> None:
    """Hold the options that come before the command; `--version` acts in its callback."""


def fail(message: str) -> None:
    """Print one red error line and exit with status 2 (a user-facing failure, not a crash)."""
    console.print(f"[bold red]error:[/bold red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


def parse_k_range(text: str) -> tuple[int, int]:
    """Read `--k-range MIN:MAX`; a malformed value is a ValueError naming the option."""
    try:
        low, high = (int(p) for p in text.split(":"))
    except ValueError:
        raise ValueError(f"--k-range must look like MIN:MAX (e.g. 2:8), got {text!r}") from None
    return low, high


@cli.command()
def simulate(
    data: Annotated[Optional[Path], typer.Option(help="pooled customer CSV to split into nodes")] = None,
    schema: Annotated[Optional[Path], typer.Option(help="feature schema TOML")] = None,
    features: Annotated[Optional[str], typer.Option(help="numeric columns a,b,c (z-scored)")] = None,
    id_column: Annotated[Optional[str], typer.Option("--id", help="id column for --features [default: customer_id]")] = None,
    partition: Annotated[Optional[str], typer.Option(help="iid | dirichlet:ALPHA:COLUMN | column:NAME")] = None,
    clients: Annotated[Optional[int], typer.Option(min=1, help="nodes: synthetic departments, or iid/dirichlet "
                                                   "parts of --data [default: 5]")] = None,
    k: Annotated[Optional[int], typer.Option(min=2, help="fixed number of segments")] = None,
    k_range: Annotated[Optional[str], typer.Option(help="MIN:MAX range of k to choose from [default: 2:8]")] = None,
    seed: Annotated[int, typer.Option(min=0, help="seed of every random draw (same seed, same model)")] = 42,
    out: Annotated[Optional[Path], typer.Option(help="output folder (default: a new one under runs/)")] = None,
    customers: Annotated[Optional[int], typer.Option(min=50, help="synthetic customers [default: 20000]")] = None,
    restarts: Annotated[Optional[int], typer.Option(min=1, max=16, help="candidate models per k (k-means restarts "
                                                    "run side by side) [default: 3]")] = None,
    max_rounds: Annotated[int, typer.Option(min=0, help="at most this many Lloyd rounds; 0: 20, or 5 under "
                                            "--epsilon (every DP round is run and paid for)")] = 0,
    min_segment_size: Annotated[int, typer.Option(min=1, help="fewest customers any released aggregate "
                                                  "describes (smaller segments are withheld)")] = 10,
    secure: Annotated[bool, typer.Option("--secure", help="secure aggregation of every reply")] = False,
    epsilon: Annotated[Optional[float], typer.Option(help="differential privacy ε (implies --secure; needs --k)")] = None,
    delta: Annotated[Optional[float], typer.Option(help="differential privacy δ [default: 1e-06]")] = None,
    cdnow: Annotated[bool, typer.Option("--cdnow", help="CDNOW purchases split into --stores; nodes derive RFM")] = False,
    stores: Annotated[Optional[int], typer.Option(min=1, help="--cdnow: number of stores (nodes) [default: 5]")] = None,
    as_of: Annotated[Optional[str], typer.Option(help="transactions nodes: RFM as of YYYY-MM-DD")] = None,
    warm_start: Annotated[Optional[Path], typer.Option(help="model.json of a previous run: start Lloyd from "
                                                       "its centroids, count customers that changed segment")] = None,
    delimiter: DelimiterOpt = None,
    encoding: EncodingOpt = None,
    dedup: Annotated[bool, typer.Option("--dedup", help="customers held by several nodes counted once (private "
                                        "set intersection of ids)")] = False,
    overlap: Annotated[Optional[float], typer.Option(min=0.0, max=1.0, help="copy this share of the customers "
                                                     "into a second node (to try --dedup)")] = None,
    ray_address: Annotated[Optional[str], typer.Option(help="join this Ray cluster (`ray start --head`) "
                                                       "[default: $RAY_ADDRESS, else a local Ray]")] = None,
    vertical: Annotated[Optional[str], typer.Option(help="split --data by columns into parties "
                                                    "'crm=a,b;shop=c,d' (vertical federation; --overlap: share "
                                                    "of the customers every party holds [default: 1.0])")] = None,
) -> None:
    """Run a federated segmentation on Flower's Simulation Engine and print the segments."""
    from fedseg.cli.progress import ProgressView
    from fedseg.common.secagg.identity import too_small
    from fedseg.server.report.markdown import print_report
    from fedseg.simulations.driver import simulate as run_sim
    from fedseg.simulations.inputs import simulation_inputs
    from fedseg.cli.table_check import data_failures, needs_bounds, read_options

    read = None
    if vertical is not None:
        return _vertical(data, schema, id_column, vertical, overlap, customers, k, seed, restarts, max_rounds,
                         min_segment_size, secure, epsilon, out)
    try:
        read = read_options(delimiter, encoding)
        check_options(SimulateOptions(data, schema, features, id_column, partition, clients, k, k_range, customers,
                                      restarts, epsilon, delta, cdnow, stores, warm_start))
        low, high = parse_k_range(k_range or "2:8")
        if epsilon is not None and not epsilon > 0:
            raise ValueError(f"--epsilon must be > 0, got {epsilon}")
        config = _config(k, low, high, seed, restarts or 3, max_rounds, min_segment_size, secure)
        extra = {"as_of": as_of or "", "warm_start": str(warm_start or ""), "dedup": dedup}
        if epsilon is not None:
            extra.update(epsilon=epsilon, delta=1e-6 if delta is None else delta)
        config = config.parse({**config.model_dump(), **extra})
        if cdnow:
            from fedseg.simulations.inputs import cdnow_inputs

            frames, feature_schema, label = cdnow_inputs(stores or 5)
        else:
            frames, feature_schema, label = simulation_inputs(
                data, schema, features, id_column or "customer_id", partition, clients or 5, customers or 20000, seed,
                read,
            )
            for note in read.notes:
                console.print(f"note: {note}", highlight=False, soft_wrap=True)
            read.notes.clear()
        if overlap is not None:
            frames, label = _with_overlap(frames, overlap, seed, cdnow), f"{label}, {overlap:.0%} held by two nodes"
        if dedup and len(frames) < 2:
            raise ValueError("--dedup needs at least two nodes")
        if warm_start is not None:  # fail before starting the simulation
            from fedseg.common.artifact import load_artifact
            from fedseg.server.warm_start import check_compatible

            check_compatible(load_artifact(warm_start), feature_schema, str(warm_start))
        if secure or epsilon is not None:
            needs_bounds(feature_schema, "--epsilon" if epsilon is not None else "--secure")
        if (secure or epsilon is not None) and too_small(len(frames)):  # before any engine starts
            raise ValueError(f"{too_small(len(frames))}; use --clients 3 or more")
        out_dir = out or Path("runs") / time.strftime(f"%Y%m%d-%H%M%S-seed{seed}")
        console.print(f"fedseg: {label}; {len(frames)} nodes; k in {config.k_values}; out {out_dir}")
        logging.getLogger("flwr").setLevel(logging.ERROR)
        with ProgressView(console, config.max_rounds) as view:
            model, timings = run_sim(frames, feature_schema, config, out_dir, view.on_event, ray_address=ray_address)
    except USER_ERRORS as exc:
        for note in read.notes if read is not None else []:  # how the file was read, before the problems
            console.print(f"note: {note}", highlight=False, soft_wrap=True)
        fail(str(exc))
    print_report(model, console)
    console.print(
        f"wall time {timings['total']:.1f}s; model: {out_dir / 'model.json'}; "
        f"report: {out_dir / 'report.html'} (and report.md)"
    )
    left_out = data_failures(model.run.clients_failed)
    if left_out:
        console.print(f"[bold red]error:[/bold red] {left_out}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=3)


def _vertical(data, schema, id_column, spec, overlap, customers, k, seed, restarts, max_rounds, min_segment_size,
              secure, epsilon, out) -> None:
    """`simulate --vertical` (cli/vertical.py)."""
    from fedseg.cli.vertical import simulate_vertical_cli

    try:
        if k is None or epsilon is not None:
            raise ValueError("--vertical needs a fixed --k and does not take --epsilon")
        config = _config(k, 2, k, seed, restarts or 3, max_rounds, min_segment_size, secure)
        out_dir = out or Path("runs") / time.strftime(f"%Y%m%d-%H%M%S-seed{seed}-vertical")
        simulate_vertical_cli(console, data=data, schema_path=schema, id_column=id_column or "customer_id",
                              spec=spec, overlap=1.0 if overlap is None else overlap,
                              customers=customers or 20000, config=config, out_dir=out_dir)
    except USER_ERRORS as exc:
        fail(str(exc))


def _with_overlap(frames, share: float, seed: int, cdnow: bool):
    """`--overlap`: customer rows copied into a second node (not for purchase tables)."""
    from fedseg.simulations.overlap import with_shared_customers

    if cdnow:
        raise ValueError("--overlap copies customer rows; it does not apply to --cdnow purchases")
    return with_shared_customers(frames, share, seed)


def _config(k, low, high, seed, restarts, max_rounds, min_segment_size, secure):
    """The run configuration from the command-line values; k-max grows to a fixed k."""
    from fedseg.common.config import RunConfig

    return RunConfig.parse(
        dict(k=k or 0, k_min=low, k_max=max(high, k or 0), seed=seed, restarts=restarts,
             max_rounds=max_rounds, min_segment_size=min_segment_size, secure=secure)
    )


@cli.command()
def assign(
    model: Annotated[Path, typer.Option(help="model.json from a run")],
    data: Annotated[Path, typer.Option(help="customer table (CSV or Parquet)")],
    out: Annotated[Path, typer.Option(help="labels CSV to write: id column and segment")],
) -> None:
    """Label customers with a model locally: columns `<id>,segment,segment_name`."""
    from fedseg.client.assign import assign_file
    from fedseg.common.artifact import load_artifact

    try:
        rows = assign_file(load_artifact(model), data, out)
    except USER_ERRORS as exc:
        fail(str(exc))
    console.print(f"{rows} customers labelled → {out}")


@cli.command()
def check(
    schema: Annotated[Path, typer.Option(help="feature schema TOML")],
    data: Annotated[Path, typer.Option(help="customer table (CSV or Parquet)")],
    delimiter: DelimiterOpt = None,
    encoding: EncodingOpt = None,
) -> None:
    """Validate a table against the schema exactly as a node would: every problem (file,
    column, rows), the coverage of every column, and the schema's fingerprint (the
    node-config key schema-sha256 pins it)."""
    from fedseg.cli.table_check import check_table, read_options

    try:
        check_table(schema, data, read_options(delimiter, encoding),
                    lambda line: console.print(line, highlight=False, soft_wrap=True))
    except USER_ERRORS as exc:
        fail(str(exc))


@cli.command("schema")
def schema_cmd(
    table: Annotated[Path, typer.Argument(help="customer table (CSV or Parquet)")],
    out: Annotated[Optional[Path], typer.Option(help="schema TOML to write [default: print it]")] = None,
    id_column: Annotated[Optional[str], typer.Option("--id", help="id column [default: the first column]")] = None,
    delimiter: DelimiterOpt = None,
    encoding: EncodingOpt = None,
) -> None:
    """Propose a schema TOML from a table: types, categories, and bounds rounded outward,
    each marked for the data owner to confirm as public."""
    from fedseg.cli.table_check import draft_file, read_options

    try:
        text = draft_file(table, out, id_column, read_options(delimiter, encoding))
    except USER_ERRORS as exc:
        fail(str(exc))
    if out is None:
        console.print(text, highlight=False, markup=False, end="")
    else:
        console.print(f"schema proposed → {out}; confirm every bound marked PROPOSED before sharing it",
                      highlight=False)


@cli.command()
def synth(
    out: Annotated[Path, typer.Option(help="folder for one CSV per department + schema.toml")],
    customers: Annotated[int, typer.Option(min=50, help="customers in all departments together")] = 20000,
    departments: Annotated[int, typer.Option(min=1, help="departments: one CSV each")] = 5,
    seed: Annotated[int, typer.Option(min=0, help="seed of the generator")] = 42,
) -> None:
    """Write synthetic customer tables, one per department, and their schema."""
    from fedseg.common.synthetic import generate_customers, synthetic_schema, write_departments

    paths = write_departments(generate_customers(customers, departments, seed), out, synthetic_schema())
    for path in paths:
        console.print(str(path))


from fedseg.cli.report import drift_cmd, report_cmd  # noqa: E402

cli.command("report")(report_cmd)
cli.command("drift")(drift_cmd)


def main() -> None:
    """Entry point of the `fedseg` console script."""
    cli()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
