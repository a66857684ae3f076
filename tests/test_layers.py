"""edutools' layout: the folders are the layers, no import runs upward, one concern per module.

ground (0) → engine (1) → face (2): a module may import edutools modules of its own layer or a
lower one. The short names of ``edutools.SHORT_NAMES`` resolve to the module they name; modules
use the real paths, so the layer of every import is visible. The package root ``edutools``
(its ``__init__`` imports from the layers) counts as a layer above them all, so no module may
import it. Test files keep the package's cap on lines too.
"""

import ast
import re
import tomllib
from pathlib import Path

import pytest

import edutools

PACKAGE = Path(edutools.__file__).resolve().parent
LAYERS = {"ground": 0, "engine": 1, "face": 2}
DRAWING = ("matplotlib", "seaborn", "ipywidgets", "IPython")
MAX_LINES = 420
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE)
ROOT = max(LAYERS.values()) + 1  # the package root edutools: it imports from every layer
REPO = PACKAGE.parent
TEST_FILES = sorted((REPO / "tests").rglob("*.py"))


def dotted(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "edutools":
        return None
    if len(parts) == 1:
        return ROOT
    if parts[1] in LAYERS:
        return LAYERS[parts[1]]
    if parts[1] in edutools.SHORT_NAMES:
        return layer_of(edutools.SHORT_NAMES[parts[1]])
    return ROOT  # a name of the root package, e.g. edutools.__version__


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_every_module_is_in_a_layer_folder():
    top = {p.name for p in PACKAGE.iterdir() if not p.name.startswith((".", "__pycache__"))}
    assert top == {"__init__.py", "ground", "engine", "face"}, top


def test_short_names_point_at_real_modules():
    for short, target in edutools.SHORT_NAMES.items():
        assert layer_of(target) is not None, f"edutools.{short} → {target} is in no layer"
        relative = Path(*target.split(".")[1:])
        assert (PACKAGE / relative).with_suffix(".py").exists() or (PACKAGE / relative).is_dir(), (
            f"edutools.{short} → {target} does not exist")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: dotted(p))
def test_module_imports_only_from_its_layer_or_below(path):
    own = layer_of(dotted(path))
    for name in imports(path):
        other = layer_of(name)
        if other is not None:
            assert other <= own, f"{dotted(path)} (layer {own}) imports {name} (layer {other})"
        if own < LAYERS["face"]:
            assert not name.startswith(DRAWING), f"{dotted(path)} is not a face module but " \
                                                 f"imports {name}"


def test_the_package_root_is_caught():
    assert layer_of("edutools") == layer_of("edutools.__version__") == ROOT
    assert layer_of("edutools.theory") == LAYERS["ground"]  # a short name: its real module
    assert layer_of("numpy") is None


def test_the_version_has_one_source():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    source = project["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    module, _, name = source.rpartition(".")
    assert module == "edutools.ground.version" and name == "__version__"
    from edutools.ground import version

    assert edutools.__version__ == version.__version__


def test_the_short_names_the_readme_teaches_exist():
    readme = (REPO / "README.md").read_text()
    taught = set(re.findall(r"from edutools\.(\w+) import", readme)) - set(LAYERS)
    assert taught, "README no longer teaches short names: drop the import hook with them"
    assert taught <= set(edutools.SHORT_NAMES), taught - set(edutools.SHORT_NAMES)


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_test_files_stay_small(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(REPO)} has {lines} lines; split it by concern"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: dotted(p))
def test_modules_stay_small(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{dotted(path)} has {lines} lines; split it by concern"


def test_no_public_name_is_defined_twice():
    seen: dict[str, str] = {}
    per_module = {"main"}  # each command-line module has its own entry point
    for path in MODULES:
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef) and not node.name.startswith("_") \
                    and node.name not in per_module:
                assert node.name not in seen, (
                    f"{node.name} is defined in {seen[node.name]} and {dotted(path)}")
                seen[node.name] = dotted(path)
