"""Exercise checks that say what is wrong, not just "incorrect".

Face layer: each ``check_*`` function takes the learner's function, tries it on cases with known
answers, and returns an :class:`ExerciseFeedback` that displays as a coloured message. Solutions
live in the lessons (in a collapsed cell after the exercise); :func:`implemented` lets a lesson's
check cell fall back to the solution while the learner's stub is unwritten.
"""

from __future__ import annotations

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


def implemented(function: Callable[..., object], *, note: bool = True) -> bool:
    """True once the learner has written ``function``; False while it is still the stub.

    The stubs of the course's exercises are ``def f(...): raise NotImplementedError(...)``; a
    function whose code still names ``NotImplementedError`` counts as not written. A lesson's check
    cell reads ``check_f(f if implemented(f) else f_solution)``, so the lesson runs top to bottom
    before the learner has written anything. With ``note`` (default), a short line says so when
    the solution is used instead.

    Raises:
        TypeError: ``function`` is not a Python function.
    """
    code = getattr(function, "__code__", None)
    if code is None:
        raise TypeError(f"implemented() takes the function you wrote, got {function!r}")
    written = "NotImplementedError" not in code.co_names
    if not written and note:
        print(f"`{function.__name__}` is not written yet: the check below uses the solution "
              "instead. Write yours in the exercise cell, run it, then run this cell again.")
    return written
