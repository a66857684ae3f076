"""Exercise checks that say what is wrong, not just "incorrect".

Face layer: each ``check_*`` function takes the learner's function, tries it on cases with known
answers, and returns an :class:`ExerciseFeedback` that displays as a coloured message. Solutions
live in the lessons (in a collapsed cell after the exercise).
"""

from __future__ import annotations

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


def implemented(function: object) -> bool:
    """False for an exercise stub that is not filled in yet, True otherwise.

    A stub is a function whose code raises ``NotImplementedError``; a lesson's check cell runs
    ``check(fn if implemented(fn) else fn_solution)``, so that the lesson still runs top to
    bottom before the learner has written anything. (A learner's function that keeps the
    ``raise NotImplementedError`` line counts as a stub.)
    """
    code = getattr(function, "__code__", None)
    return callable(function) and not (code is not None
                                       and "NotImplementedError" in code.co_names)
