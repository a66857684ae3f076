"""The course's slider panels, declared once next to their figures, and found automatically.

Each lesson's figure module (``edutools/face/plots/lessonNN.py``) ends with a ``PANELS`` tuple of
:class:`Panel` declarations: which run function the panel calls, which figure draws it, which
grid of slider values is worth precomputing, and what a quick test run looks like. Nothing else
lists the panels: :func:`declared_panels` imports every ``lessonNN`` figure module it finds
(``pkgutil``), and the precompute registry, the partial-results test and the browser benchmark are
built from it. What only the lesson knows, is read from the lesson (:func:`panel_calls`): the
``fixed=`` parameters its ``slider_panel(...)`` call passes in full mode (``FAST = False``), the
sliders' labels and a piece of source that finds the panel's cell in a browser. So a lesson's
constants (``LR = 0.01``) live in the lesson only.
"""

from __future__ import annotations

import ast
import importlib
import json
import pkgutil
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = ["EXPERIMENTS", "LESSONS_DIR", "Panel", "PanelCall", "declared_panels",
           "lesson_notebook", "panel_calls"]

#: Where ``Panel.run`` modules live.
EXPERIMENTS = "edutools.engine.experiments"
#: The lessons' folder (the package is installed editable from the repository: README).
LESSONS_DIR = Path(__file__).resolve().parents[2] / "lessons"
_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class Panel:
    """One slider panel of a lesson, declared in that lesson's figure module.

    Attributes:
        run: the run function as the lesson names it, ``"<module>.<function>"`` with the module
            under :data:`EXPERIMENTS`, e.g. ``"cohen_eos.gd_edge_run"``.
        show: the figure function the panel draws with.
        name: a short name of the panel, e.g. ``"learning rate η (GD at the edge)"``.
        grid: the name, in the run's module, of the slider grid to precompute
            (``"SLIDER_GRID"``); ``None``: the panel is cheap or has its own cache.
        quick: run-only settings that make a few-second run for the partial-results test
            (``{"num_steps": 200}``); ``None``: the panel's run draws no partial results.
        sample: slider (and fixed) values as the panel passes them to ``run`` and ``show``.
        reference: ``show`` also takes ``reference=`` (a finished run to compare with).
        lesson: the lesson's number, filled in by :func:`declared_panels` from the module name.
    """

    run: str
    show: Callable[..., Any]
    name: str
    grid: str | None = None
    quick: Mapping[str, Any] | None = None
    sample: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    reference: bool = False
    lesson: str = ""

    @property
    def module(self) -> str:
        """The run's module, e.g. ``edutools.engine.experiments.cohen_eos``."""
        return f"{EXPERIMENTS}.{self.run.rpartition('.')[0]}"

    @property
    def function(self) -> str:
        """The run function's name, e.g. ``gd_edge_run``."""
        return self.run.rpartition(".")[2]

    def run_function(self) -> Callable[..., Any]:
        """The run function itself (imports its engine module)."""
        return getattr(importlib.import_module(self.module), self.function)

    def slider_grid(self) -> Mapping[str, Any]:
        """The slider grid to precompute (``grid`` in the run's module)."""
        if self.grid is None:
            raise ValueError(f"lesson {self.lesson} panel {self.name!r} declares no grid")
        return getattr(importlib.import_module(self.module), self.grid)


def declared_panels() -> list[Panel]:
    """Every :class:`Panel` of ``edutools.face.plots.lessonNN.PANELS``, in lesson order."""
    import edutools.face.plots as plots

    found = []
    for info in sorted(pkgutil.iter_modules(plots.__path__), key=lambda info: info.name):
        if re.fullmatch(r"lesson\d\d", info.name):
            module = importlib.import_module(f"{plots.__name__}.{info.name}")
            found += [replace(panel, lesson=info.name[-2:]) for panel in
                      getattr(module, "PANELS", ())]
    return found


def lesson_notebook(lesson: str) -> Path:
    """The notebook of lesson ``lesson`` (``"03"`` → ``lessons/03_momentum.ipynb``)."""
    paths = sorted(LESSONS_DIR.glob(f"{lesson}_*.ipynb"))
    if len(paths) != 1:
        raise FileNotFoundError(f"lesson {lesson}: expected one {LESSONS_DIR}/{lesson}_*.ipynb, "
                                f"found {[p.name for p in paths]}")
    return paths[0]


@dataclass(frozen=True)
class PanelCall:
    """One ``widgets.slider_panel(...)`` call of a lesson, read from its source.

    Attributes:
        lesson: the lesson's number.
        cell: the index of the notebook cell that makes (and displays) the panel.
        run: the first argument's source, e.g. ``"seed_network.train_seed_network"``.
        marker: the source from the first argument to the end of the second (run and show): the
            first code cell that contains it is the panel's.
        labels: the sliders' labels, in the order of the sliders' dict.
        fixed: the ``fixed=`` parameters in full mode; a value the reader cannot work out from
            the lesson's literals is left out and named in ``unresolved``.
        unresolved: the ``fixed=`` parameters left out.
    """

    lesson: str
    cell: int
    run: str
    marker: str
    labels: tuple[str, ...]
    fixed: Mapping[str, Any]
    unresolved: tuple[str, ...] = ()

    def matches(self, panel: Panel) -> bool:
        """Whether this call is ``panel``'s (its run, with or without the module prefix)."""
        return self.lesson == panel.lesson and self.run in (panel.run, panel.function)


def code_cells(path: Path) -> list[tuple[int, str]]:
    """(cell index, source) of each code cell of the notebook at ``path``."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return [(index, "".join(cell["source"])) for index, cell in enumerate(cells)
            if cell["cell_type"] == "code"]


@cache
def panel_calls(lesson: str) -> tuple[PanelCall, ...]:
    """Every ``slider_panel(...)`` call of lesson ``lesson``, in notebook order."""
    names = _Names()
    calls = []
    for index, source in code_cells(lesson_notebook(lesson)):
        tree = _parse(source)
        if tree is None:
            continue
        names.learn(tree)  # this cell's constants count for its panel and the cells after it
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _called(node) == "slider_panel" \
                    and len(node.args) >= 3:
                calls.append(_panel_call(lesson, index, source, node, names))
    return tuple(calls)


def _panel_call(lesson: str, index: int, source: str, node: ast.Call, names: _Names
                ) -> PanelCall:
    run, show, sliders = node.args[:3]
    fixed_node = next((k.value for k in node.keywords if k.arg == "fixed"), None)
    fixed, unresolved = {}, []
    if isinstance(fixed_node, ast.Dict):
        for key, value in zip(fixed_node.keys, fixed_node.values, strict=True):
            try:
                fixed[ast.literal_eval(key)] = names.value(value)
            except ValueError:
                unresolved.append(ast.literal_eval(key))
    labels = tuple(_label(names.assigned.get(getattr(value, "id", None), value))
                   for value in sliders.values) \
        if isinstance(sliders, ast.Dict) else ()
    start, end = _offset(source, run.lineno, run.col_offset), \
        _offset(source, show.end_lineno, show.end_col_offset)
    return PanelCall(lesson=lesson, cell=index, run=ast.get_source_segment(source, run) or "",
                     marker=source[start:end], labels=labels, fixed=fixed,
                     unresolved=tuple(unresolved))


def _parse(source: str) -> ast.Module | None:
    # Shell escapes and magics (`!pip ...`, `%matplotlib`) are not Python: blank them out.
    lines = ["" if line.lstrip().startswith(("!", "%")) else line for line in source.split("\n")]
    try:
        return ast.parse("\n".join(lines))
    except SyntaxError:
        return None


def _called(node: ast.Call) -> str | None:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)


def _label(node: ast.expr) -> str:
    """The label of a slider made by ``node`` (a factory call), or ``"?"``."""
    from edutools.face.widgets.sliders import SLIDER_LABELS

    if not isinstance(node, ast.Call):
        return "?"
    name = _called(node)
    if name in SLIDER_LABELS:
        return SLIDER_LABELS[name]
    first = node.args[0] if node.args else None
    return first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) \
        else "?"


def _offset(source: str, lineno: int, col: int) -> int:
    """Character offset in ``source`` of ast position (line, UTF-8 byte column)."""
    lines = source.split("\n")
    before = sum(len(line) + 1 for line in lines[:lineno - 1])
    return before + len(lines[lineno - 1].encode()[:col].decode())


class _Names:
    """A lesson's top-level constants and engine modules, as far as they can be read without
    running it: literals, ``a if FAST else b`` (full mode: ``b``) and ``module.CONSTANT`` of an
    engine module the lesson imports."""

    def __init__(self) -> None:
        self.assigned: dict[str, ast.expr] = {}
        self.modules: dict[str, str] = {}

    def learn(self, tree: ast.Module) -> None:
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                    and isinstance(node.targets[0], ast.Name):
                self.assigned[node.targets[0].id] = node.value
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    self.modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    self.modules[alias.asname or alias.name] = alias.name

    def value(self, node: ast.expr) -> Any:
        """The value of ``node`` in full mode; ``ValueError`` if it cannot be read."""
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -self.value(node.operand)
        if isinstance(node, ast.Name):
            if node.id == "FAST":
                return False
            if node.id in self.assigned:
                return self.value(self.assigned[node.id])
        if isinstance(node, ast.IfExp) and isinstance(node.test, ast.Name) \
                and node.test.id == "FAST":
            return self.value(node.orelse)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id in self.modules:
            module = importlib.import_module(self.modules[node.value.id])
            return getattr(module, node.attr)
        raise ValueError(f"cannot read {ast.unparse(node)!r} without running the lesson")
