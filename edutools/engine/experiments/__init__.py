"""The course's experiments: one module per experiment, each a few run functions that train and
measure and return numbers (never draw).

Which lesson uses which module is read from the lessons themselves, so it cannot go stale:
``lesson_map()`` returns module → lessons (the lessons' ``from edutools.engine.experiments
import ...`` lines), ``lesson_map(by="lesson")`` lesson → modules. At the time of writing:

* lesson 00 — ``seed_network`` (the MNIST MLP; lesson 07 trains it too)
* lesson 01 — ``cohen_eos`` (GD at the edge of stability), ``self_stabilization`` (why λ_max comes
  back down)
* lesson 02 — ``eoss`` (the edge of stochastic stability), ``one_step``, ``critical_lr``
* lesson 03 — ``heavy_ball``, ``acceleration``, ``momentum_eoss``, ``jelassi_li`` (and lesson
  02's ``eoss`` and ``critical_lr``)
* lesson 04 — ``keskar``, ``keskar_seeds`` (many seeds at once), ``large_batch``, ``warmup``
* lesson 05 — ``sharpness_measures``, ``eigen_costs``, ``li_slices``, ``dinh``
* lesson 06 — ``long_bartlett``, ``sam_generalization``, ``sam_memorization``, ``sam_momentum``
* lesson 07 — ``capstone``, ``capstone_analysis``, ``capstone_proxies``
* lesson 08 — ``own_network`` (the edge monitor on a CNN, with heavy ball and Adam, and on the
  seed's recipe)

(``tests/engine/test_experiments_map.py`` checks that every module here belongs to a lesson.)

Naming rule for new modules: name a module by its **topic** — what it studies, in the words the
lesson uses (``warmup``, ``large_batch``, ``sam_momentum``) — and cite the paper in the first line
of its docstring ("Long & Bartlett 2023 (lesson 06): ..."). The older paper-named modules
(``cohen_eos``, ``keskar``, ``dinh``, ``jelassi_li``, ``long_bartlett``, ``li_slices``) keep their
names because lessons import them. A module's first docstring line says its lesson; its slider
grid (``SLIDER_GRID``) sits next to the run function that the lesson's panel calls, and the panel
itself is declared in ``edutools/face/plots/lessonNN.py`` (``PANELS``).

This ``__init__`` imports none of the modules: ``from edutools.engine.experiments import
cohen_eos`` loads only what that lesson needs.
"""

from __future__ import annotations

import ast
import json
import pkgutil
from pathlib import Path

__all__ = ["lesson_map", "module_names"]

#: The lessons' folder (the package is installed editable from the repository: README).
LESSONS_DIR = Path(__file__).resolve().parents[3] / "lessons"
_PACKAGE = "edutools.engine.experiments"


def module_names() -> list[str]:
    """The experiment modules of this package, sorted (found on disk, none imported)."""
    return sorted(info.name for info in pkgutil.iter_modules(__path__))


def _imported_modules(source: str, known: set[str]) -> set[str]:
    """The experiment modules a cell's source imports (shell escapes and magics skipped)."""
    lines = ["" if line.lstrip().startswith(("!", "%")) else line for line in source.split("\n")]
    try:
        tree = ast.parse("\n".join(lines))
    except SyntaxError:
        return set()
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == _PACKAGE:
            found.update(alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(_PACKAGE + "."):
            found.add(node.module.split(".")[3])
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[3] for alias in node.names
                         if alias.name.startswith(_PACKAGE + "."))
    return found & known


def lesson_map(*, by: str = "module") -> dict[str, tuple[str, ...]]:
    """Module → the lessons that import it (``by="module"``), or lesson → the modules it imports
    (``by="lesson"``), read from ``lessons/NN_*.ipynb``. A module no lesson imports directly
    (one used by another module) maps to ``()``."""
    if by not in ("module", "lesson"):
        raise ValueError(f"by must be 'module' or 'lesson', got {by!r}")
    known = set(module_names())
    per_lesson: dict[str, tuple[str, ...]] = {}
    for path in sorted(LESSONS_DIR.glob("[0-9][0-9]_*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        found = set().union(*(_imported_modules("".join(cell["source"]), known)
                              for cell in cells if cell["cell_type"] == "code"))
        per_lesson[path.name[:2]] = tuple(sorted(found))
    if by == "lesson":
        return per_lesson
    return {name: tuple(lesson for lesson, modules in per_lesson.items() if name in modules)
            for name in sorted(known)}
