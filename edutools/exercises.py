"""Exercise checks that say what is wrong, not just "incorrect".

Face layer: each ``check_*`` function takes the learner's function, tries it on cases with known
answers, and returns an :class:`ExerciseFeedback` that displays as a coloured message. Solutions
live in the lessons (in a collapsed cell after the exercise).
"""

from __future__ import annotations

import math
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


def check_effective_lr(effective_lr: Callable[[float, float], float]) -> ExerciseFeedback:
    """Check a learner's ``effective_lr(lr, momentum)`` against η/(1−β) (heavy ball)."""
    name = "effective step size of heavy ball"
    cases = [(0.1, 0.0), (0.01, 0.9), (0.3, 0.5), (1.0, 0.99)]
    for lr, momentum in cases:
        expected = lr / (1 - momentum)
        try:
            got = float(effective_lr(lr, momentum))
        except NotImplementedError:
            return ExerciseFeedback(name, False, "not written yet: replace the `raise` line.")
        except Exception as error:  # noqa: BLE001 — any learner error becomes feedback
            return ExerciseFeedback(name, False, f"calling it with lr={lr}, momentum={momentum} "
                                    f"raised {type(error).__name__}: {error}")
        if math.isclose(got, expected, rel_tol=1e-9):
            continue
        if momentum and math.isclose(got, lr * (1 + momentum), rel_tol=1e-9):
            hint = "you returned η(1+β): that is one step plus one echo, not the sum of all echoes"
        elif momentum and math.isclose(got, lr / (1 + momentum), rel_tol=1e-9):
            hint = "check the sign: the geometric series 1 + β + β² + … sums to 1/(1−β)"
        elif math.isclose(got, lr, rel_tol=1e-9):
            hint = "you returned η itself: momentum should make the effective step larger"
        else:
            hint = f"expected {expected:g}"
        return ExerciseFeedback(name, False,
                                f"lr={lr}, momentum={momentum} gave {got:g}; {hint}.")
    return ExerciseFeedback(name, True, "correct: a constant gradient g moves θ by η·g/(1−β) per "
                            "step once the velocity has settled.")
