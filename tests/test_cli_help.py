"""The `fedseg` command describes itself: every command in `--help`, help on every option, `--version`."""

from __future__ import annotations

import tomllib
from pathlib import Path

import click
import pytest
import typer
from typer.testing import CliRunner

import fedseg
from fedseg.cli.main import cli

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def commands(group: click.Group, prefix: str = "fedseg") -> dict[str, click.Command]:
    """Every command of the tree under `group`, keyed by its full invocation ("fedseg certs")."""
    found = {}
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        found[path] = command
        if isinstance(command, click.Group):
            found |= commands(command, path)
    return found


ROOT = typer.main.get_command(cli)
COMMANDS = commands(ROOT)


def test_the_tree_holds_the_main_and_the_deploy_commands():
    names = {path.split()[-1] for path in COMMANDS}

    assert {"simulate", "assign", "check", "synth", "report", "drift"} <= names
    assert {"certs", "node-keys", "connection", "register", "check-node", "label-node", "check-link"} <= names


@pytest.mark.parametrize("path", sorted(["fedseg", *COMMANDS]))
def test_every_option_and_argument_has_help(path):
    command = ROOT if path == "fedseg" else COMMANDS[path]

    missing = [param.name for param in command.params if not (getattr(param, "help", None) or "").strip()]

    assert command.help or path == "fedseg", f"{path} has no description"
    assert missing == [], f"{path}: no help text for {missing}"


def test_help_lists_every_registered_command():
    result = CliRunner().invoke(cli, ["--help"], terminal_width=200)

    assert result.exit_code == 0
    listed = {line.strip("│ ").split()[0] for line in result.output.splitlines() if line.strip("│ ")}
    assert [name for name in ROOT.commands if name not in listed] == []


def test_version_is_the_package_and_the_project_version():
    project_version = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["version"]

    result = CliRunner().invoke(cli, ["--version"])

    assert result.exit_code == 0
    assert result.output.strip() == f"fedseg {fedseg.__version__}"
    assert fedseg.__version__ == project_version
