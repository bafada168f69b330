"""fedseg: privacy-preserving federated customer segmentation on Flower.

The code lives in the top-level folders `common/`, `client/`, `server/`, `simulations/` and
`cli/`, installed as `fedseg.common`, `fedseg.client`, ... (pyproject's `package-dir`).
In a source checkout or an unpacked Flower app bundle (FAB) there is no `fedseg/common`
folder, so the folder above this one joins the package path: `flwr run` and a SuperNode
then import the code of the FAB they run, never another installed copy.
"""

from pathlib import Path

__version__ = "0.2.0"

_ROOT = Path(__file__).resolve().parent.parent
if not (Path(__file__).resolve().parent / "common").is_dir() and (_ROOT / "common" / "__init__.py").is_file():
    __path__.append(str(_ROOT))  # type: ignore[name-defined]  # noqa: F821
