"""Exercise checks that say what is wrong, not just "incorrect".

Face layer: each ``check_*`` function takes the learner's function, tries it on cases with known
answers, and returns an :class:`ExerciseFeedback` that displays as a coloured message. Solutions
live in the lessons (in a collapsed cell after the exercise).
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ExerciseFeedback:
    """Outcome of a check: ``passed`` and a message for the learner."""

    exercise: str
    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        mark = "✅" if self.passed else "❌"
        return f"{mark} {self.exercise}: {self.message}"

    def _repr_html_(self) -> str:
        color = "#2e7d32" if self.passed else "#c62828"
        return f"<div style='color:{color}'><b>{self}</b></div>"


def implemented(function: Callable[..., object]) -> bool:
    """False while ``function`` is still an exercise stub: a body that only raises
    ``NotImplementedError`` (after an optional docstring and comments). The lesson then checks
    its own solution instead, so that it runs top to bottom before the learner has written
    anything. A function whose source cannot be read counts as written."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):
        return True
    body = tree.body[0].body if tree.body and hasattr(tree.body[0], "body") else []
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    if len(body) != 1 or not isinstance(body[0], ast.Raise) or body[0].exc is None:
        return True
    raised = body[0].exc.func if isinstance(body[0].exc, ast.Call) else body[0].exc
    return not (isinstance(raised, ast.Name) and raised.id == "NotImplementedError")
