"""Exercise checks that say what is wrong, not just "incorrect".

Face layer: each ``check_*`` function takes the learner's function, tries it on cases with known
answers, and returns an :class:`ExerciseFeedback` that displays as a coloured message. Solutions
live in the lessons (in a collapsed cell after the exercise).
"""

from __future__ import annotations

import dis
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


def implemented(function: object, *, note: bool = True) -> bool:
    """False while ``function`` is still an exercise stub whose body starts by raising
    ``NotImplementedError``; True otherwise.

    A lesson's check cell reads ``check_x(my_fn if implemented(my_fn) else my_fn_solution)``: the
    learner's function is checked once written, and the lesson still runs top to bottom (e.g.
    under papermill) while it is not. Only the first statement is inspected, without calling the
    function. With ``note`` (default), a short line says when the solution is used instead.
    """
    code = getattr(function, "__code__", None)
    if code is None:  # a builtin, a class or a partial: not a stub
        return callable(function)
    skipped = {"RESUME", "NOP", "CACHE", "PUSH_NULL", "EXTENDED_ARG", "COPY_FREE_VARS",
               "MAKE_CELL"}
    written = True
    for instruction in dis.get_instructions(code):
        if instruction.opname in skipped:
            continue
        written = not (instruction.opname in {"LOAD_GLOBAL", "LOAD_NAME", "LOAD_DEREF"}
                       and instruction.argval == "NotImplementedError")
        break
    if not written and note:
        print(f"`{getattr(function, '__name__', function)}` is not written yet: the check below "
              "uses the solution instead. Write yours in the exercise cell, run it, then run "
              "this cell again.")
    return written
