"""edutools' three layers: each module imports only from its own layer or the ones below."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "edutools"
LAYERS = {
    "ground": {"device", "validation", "data", "models", "theory", "quadratic", "momentum"},
    "engine": {"training", "sharpness", "landscape", "linreg", "patches", "generalization",
               "reparametrize"},
    "face": {"plots", "widgets", "exercises", "sharpness_exercises"},
}
RANK = {module: rank for rank, layer in enumerate(LAYERS.values()) for module in layer}
DRAWING = ("matplotlib", "seaborn", "ipywidgets", "IPython")


def imports(module: str) -> set[str]:
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            if node.module == "edutools":
                found.update(f"edutools.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_every_module_has_a_layer():
    modules = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert modules == set(RANK), f"assign a layer to: {modules ^ set(RANK)}"


@pytest.mark.parametrize("module", sorted(RANK))
def test_module_imports_only_from_its_layer_or_below(module):
    for name in imports(module):
        other = name.split(".")[1] if name.startswith("edutools.") else None
        if other in RANK:
            assert RANK[other] <= RANK[module], f"{module} ({RANK[module]}) imports {other}"
        if RANK[module] < 2:
            assert not name.startswith(DRAWING), f"{module} is not a face module but imports {name}"
