"""Deployment commands of `fedseg`: security set-up for the central team, checks and
local labelling for the business units. See DEPLOY.md.

  fedseg certs --out DIR                      development CA + SuperLink TLS certificate
  fedseg node-keys --out DIR --name NAME      a SuperNode authentication key pair
  fedseg identity --out DIR --name NAME       a node's secure-aggregation identity key
  fedseg roster DIR/*.id.pub --out roster.toml  the roster of identities and its fingerprint
  fedseg connection --address HOST:PORT --ca ca.crt
                                              a SuperLink connection for `flwr`
  fedseg register --keys DIR                  register every NAME.pub with the SuperLink
  fedseg check-node --schema S --node-config C   read + validate a node's table as the node will
  fedseg label-node --model M --node-config C    label the node's customers locally
  fedseg check-link --superlink HOST:PORT --ca ca.crt [--key KEY]
                                              key file, CA and a TLS handshake, before starting a node
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

deploy_cli = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.splitlines()[0])
console = Console(stderr=False, soft_wrap=True)

CONNECTION = "fedseg"


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/bold red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


def _flwr() -> str:
    """The `flwr` next to this Python (the venv's), else the one on PATH."""
    local = Path(sys.executable).with_name("flwr")
    if local.exists():
        return str(local)
    found = shutil.which("flwr")
    if not found:
        _fail("the `flwr` command is not installed (pip install flwr)")
    return str(found)


@deploy_cli.command()
def certs(
    out: Annotated[Path, typer.Option(help="folder for ca.crt, ca.key, server.crt, server.key")],
    host: Annotated[
        Optional[list[str]],
        typer.Option("--host", help="address nodes dial (repeatable); default 127.0.0.1 and localhost"),
    ] = None,
    days: Annotated[int, typer.Option(min=1, help="validity in days")] = 365,
    force: Annotated[bool, typer.Option(help="replace existing files")] = False,
) -> None:
    """Make a development CA and a SuperLink TLS certificate signed by it."""
    from fedseg.server.security import DEFAULT_HOSTS, SecurityError, certificate_hosts, make_certificates

    try:
        files = make_certificates(out, hosts=host or list(DEFAULT_HOSTS), days=days, overwrite=force)
    except (SecurityError, OSError) as exc:
        _fail(str(exc))
    console.print(f"CA certificate      {files.ca_cert}   (give this to every node and to `flwr`)")
    console.print(f"CA private key      {files.ca_key}   (0600; keep it offline)")
    console.print(f"server certificate  {files.server_cert}   (valid for {', '.join(certificate_hosts(files.server_cert))})")
    console.print(f"server private key  {files.server_key}   (0600; SuperLink host only)")
    console.print(
        "start the SuperLink with:\n  flower-superlink --enable-supernode-auth "
        f"--ssl-ca-certfile {files.ca_cert} --ssl-certfile {files.server_cert} "
        f"--ssl-keyfile {files.server_key} --host 0.0.0.0 --port 9093",
        highlight=False,
    )


@deploy_cli.command("node-keys")
def node_keys(
    out: Annotated[Path, typer.Option(help="folder for NAME (private key) and NAME.pub")],
    name: Annotated[str, typer.Option(help="node name, e.g. the business unit: retail-north")],
    force: Annotated[bool, typer.Option(help="replace existing files")] = False,
) -> None:
    """Make a SuperNode authentication key pair (EC P-384, OpenSSH format)."""
    from fedseg.server.security import SecurityError, make_node_keys

    try:
        files = make_node_keys(out, name, overwrite=force)
    except (SecurityError, OSError) as exc:
        _fail(str(exc))
    console.print(f"private key  {files.private_key}   (0600; stays on the node: "
                  f"flower-supernode --auth-supernode-private-key {files.private_key})", highlight=False)
    console.print(f"public key   {files.public_key}   (send to the central team)", highlight=False)
    console.print(f"the central team registers it with:\n  flwr supernode register {files.public_key} "
                  f"{CONNECTION} --name {name}\nor, for a folder of keys:  fedseg register --keys {out}",
                  highlight=False)


@deploy_cli.command()
def identity(
    out: Annotated[Path, typer.Option(help="folder for NAME.id.key (private) and NAME.id.pub")],
    name: Annotated[str, typer.Option(help="node name on the roster, e.g. the business unit: retail-north")],
    force: Annotated[bool, typer.Option(help="replace existing files")] = False,
) -> None:
    """Make a node's secure-aggregation identity key (Ed25519): it signs the node's keys of every run."""
    from fedseg.server.identities import make_identity
    from fedseg.server.security import SecurityError

    try:
        files = make_identity(out, name, overwrite=force)
    except (SecurityError, OSError) as exc:
        _fail(str(exc))
    console.print(f"identity key         {files.private_key}   (0600; stays on the node: "
                  f"node config identity-key=\"{files.private_key}\")", highlight=False)
    console.print(f"identity public key  {files.public_key}   (send to the central team for the roster)",
                  highlight=False)


@deploy_cli.command()
def roster(
    public_keys: Annotated[list[Path], typer.Argument(help="identity public keys (NAME.id.pub), one per node")],
    out: Annotated[Path, typer.Option(help="roster file to write (TOML)")],
    force: Annotated[bool, typer.Option(help="replace an existing roster")] = False,
) -> None:
    """Write the federation's roster of identity public keys and print its fingerprint."""
    from fedseg.server.identities import write_roster
    from fedseg.server.security import SecurityError

    try:
        sha = write_roster(public_keys, out, overwrite=force)
    except (SecurityError, OSError) as exc:
        _fail(str(exc))
    console.print(f"roster       {out}   ({len(public_keys)} identities; send it to every node)", highlight=False)
    console.print(f"roster-sha256 {sha}", highlight=False)
    console.print("each node operator confirms this fingerprint out of band (e.g. by phone) and sets\n"
                  f"  roster=\"{out}\" roster-sha256=\"{sha}\"  in the node config", highlight=False)


@deploy_cli.command()
def connection(
    address: Annotated[str, typer.Option(help="SuperLink HOST:PORT (its --host/--port)")],
    ca: Annotated[Optional[Path], typer.Option(help="CA certificate that signed the SuperLink's")] = None,
    name: Annotated[str, typer.Option(help="connection name for `flwr ... NAME`")] = CONNECTION,
    insecure: Annotated[bool, typer.Option(help="no TLS (development only)")] = False,
    default: Annotated[bool, typer.Option(help="make it flwr's default connection")] = False,
) -> None:
    """Add (or replace) a SuperLink connection in flwr's config ($FLWR_HOME/config.toml)."""
    import tomllib

    import tomli_w
    from flwr.supercore.utils import get_flwr_home

    if ca is None and not insecure:
        _fail("give --ca (the CA certificate) or --insecure")
    if ca is not None and not ca.is_file():
        _fail(f"{ca}: no such file")
    if ":" not in address:
        _fail(f"--address must look like HOST:PORT, got {address!r}")
    path = get_flwr_home() / "config.toml"
    try:
        config = tomllib.loads(path.read_text()) if path.exists() else {}
    except tomllib.TOMLDecodeError as exc:
        _fail(f"{path}: not valid TOML ({exc}); fix or remove it")
    superlink = config.setdefault("superlink", {})
    entry: dict = {"address": address}
    if insecure:
        entry["insecure"] = True
    else:
        entry["root-certificates"] = str(Path(ca).expanduser().resolve())
    superlink[name] = entry
    if default or "default" not in superlink:
        superlink["default"] = name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tomli_w.dumps(config))
    console.print(f"connection {name!r} → {address} written to {path}", highlight=False)


def register_key(public_key: Path, name: str, connection_name: str = CONNECTION,
                 env: Mapping[str, str] | None = None) -> int:
    """Register one node public key with the SuperLink via `flwr`; returns its node id."""
    from fedseg.server.security import SecurityError, load_node_public_key

    try:
        load_node_public_key(public_key)
    except SecurityError as exc:
        raise ValueError(str(exc)) from None
    cmd = [_flwr(), "supernode", "register", str(public_key), connection_name, "--name", name, "--format", "json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                          env={**(os.environ if env is None else env), "FLWR_TELEMETRY_ENABLED": "0"})
    text = proc.stdout.strip()
    start = text.find("{")
    try:
        payload = json.loads(text[start:]) if start >= 0 else {}
    except json.JSONDecodeError:
        payload = {}
    if proc.returncode != 0 or not payload.get("success"):
        detail = payload.get("error-message") or (proc.stderr.strip() or text or f"exit code {proc.returncode}")
        raise ValueError(f"{public_key}: registration failed: {detail}")
    return int(payload["node-id"])


@deploy_cli.command()
def register(
    keys: Annotated[Path, typer.Option(help="folder of NAME.pub files, or one .pub file")],
    superlink: Annotated[str, typer.Option(help="flwr connection name (see `fedseg connection`)")] = CONNECTION,
) -> None:
    """Register node public keys with the SuperLink (`flwr supernode register` for each)."""
    files = sorted(keys.glob("*.pub")) if keys.is_dir() else [keys]
    if not files or not files[0].exists():
        _fail(f"{keys}: no .pub files")
    failed = 0
    for pub in files:
        try:
            node_id = register_key(pub, pub.stem, superlink)
        except ValueError as exc:
            failed += 1
            console.print(f"[red]✗[/red] {exc}", highlight=False)
            continue
        console.print(f"✓ {pub.stem}: node id {node_id}", highlight=False)
    if failed:
        raise typer.Exit(code=2)


def _node_config(text: str) -> dict:
    """The node config exactly as flower-supernode parses `--node-config` (string or .toml)."""
    from flwr.common.config import parse_config_args

    try:
        return dict(parse_config_args([text]))
    except Exception as exc:  # click/TOML errors: one line
        raise ValueError(f"--node-config {text!r}: {exc}") from None


@deploy_cli.command("check-node")
def check_node(
    schema: Annotated[Path, typer.Option(help="feature schema TOML (from the central team)")],
    node_config: Annotated[str, typer.Option(help="the exact --node-config given to flower-supernode")],
) -> None:
    """Read and validate this node's table (file or database) exactly as the node will."""
    from fedseg.client.data import DataError
    from fedseg.client.source import describe_source, node_data
    from fedseg.common.schema import SchemaError, load_schema

    try:
        config = _node_config(node_config)
        feature_schema = load_schema(schema)
        table = node_data(config, {}).table(feature_schema)
    except (DataError, SchemaError, ValueError, OSError) as exc:
        _fail(str(exc))
    console.print(f"[green]ok[/green]: {describe_source(config)}: {table.n_rows} rows match {schema}",
                  highlight=False)
    if table.coverage is not None:  # gaps, clipped and dropped values per column
        from fedseg.cli.table_check import coverage_lines

        view = feature_schema.customer_view() if feature_schema.transactions else feature_schema
        for line in coverage_lines(table.coverage, view):
            console.print(line, highlight=False)


@deploy_cli.command("label-node")
def label_node(
    model: Annotated[Path, typer.Option(help="model.json from the central team")],
    node_config: Annotated[str, typer.Option(help="the node's --node-config with labels-path or labels-table")],
) -> None:
    """Label this node's customers with a finished model; the labels stay on the node."""
    from fedseg.client.assign import segment_labels
    from fedseg.client.data import DataError
    from fedseg.client.source import node_data, write_node_labels
    from fedseg.common.artifact import ArtifactError, load_artifact

    try:
        config = _node_config(node_config)
        artifact = load_artifact(model)
        schema = artifact.run.feature_schema
        table = node_data(config, {}).table(schema)
        where = write_node_labels(config, schema.id, table.ids, segment_labels(artifact, table),
                                  [s.name for s in artifact.segments])
    except (DataError, ArtifactError, ValueError, OSError) as exc:
        _fail(str(exc))
    console.print(f"{table.n_rows} customers labelled → {where}", highlight=False)


@deploy_cli.command("check-link")
def check_link(
    superlink: Annotated[str, typer.Option(help="SuperLink HOST:PORT, as given to flower-supernode --superlink")],
    ca: Annotated[Path, typer.Option(help="the central team's CA certificate (--root-certificates)")],
    key: Annotated[Optional[Path], typer.Option(help="the node's private key (--auth-supernode-private-key)")] = None,
) -> None:
    """Check the node's key file, the CA and a TLS handshake with the SuperLink."""
    from fedseg.server.preflight import PreflightError, check_private_key, check_superlink

    try:
        lines = ([check_private_key(key)] if key is not None else []) + [check_superlink(superlink, ca)]
    except PreflightError as exc:
        _fail(str(exc))
    for line in lines:
        console.print(f"[green]ok[/green]: {line}", highlight=False)
