"""Lesson 00's exercise: the effective learning rate of heavy-ball momentum."""

from __future__ import annotations

import math
from collections.abc import Callable

from edutools.face.exercises.core import ExerciseFeedback

__all__ = ["check_effective_lr"]


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
