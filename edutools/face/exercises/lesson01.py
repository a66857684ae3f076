"""Lesson 01's exercise: the contraction factor of gradient descent on a quadratic.

The contract: ``contraction_factor(lr, curvature) -> float``, the factor by which one GD step with
step size η = ``lr`` multiplies |θ| along an eigen-direction of curvature λ = ``curvature`` of
f(θ) = ½λθ². One step maps θ to θ − ηλθ = (1 − ηλ)θ, so the answer is |1 − ηλ|: below 1 the
direction shrinks, above 1 it grows.

:func:`check_contraction_factor` tries the learner's function on step sizes on both sides of
ηλ = 1 and ηλ = 2 (and a flat direction λ = 0), then, if the answers are wrong, recognises the
usual mistakes by comparing them with each wrong formula on all cases at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from numbers import Real

from edutools.face.exercises.core import ExerciseFeedback

__all__ = ["check_contraction_factor"]

EXERCISE = "contraction factor of GD"

#: (η, λ) cases: ηλ = 0.5, 1.5, 2.5, 1, 0 (flat) and 3; the splits of ηλ into η and λ differ,
#: so that formulas in η or λ alone cannot match by accident.
CASES: tuple[tuple[float, float], ...] = ((0.1, 5.0), (0.3, 5.0), (0.05, 50.0), (0.25, 4.0),
                                          (0.2, 0.0), (1.5, 2.0))

#: Typical wrong answers: (formula in η, λ; what the learner is told).
MISTAKES: tuple[tuple[Callable[[float, float], float], str], ...] = (
    (lambda lr, lam: 1 - lr * lam,
     "you returned 1 − ηλ without the absolute value: for ηλ > 1 it is negative (the direction "
     "flips sign every step), but the factor by which |θ| changes is its size, |1 − ηλ|"),
    (lambda lr, lam: lr * lam - 1,
     "you returned ηλ − 1: right in size when ηλ > 1, but negative for small steps; the factor "
     "by which |θ| changes is |1 − ηλ|"),
    (lambda lr, lam: abs(1 - 2 * lr * lam),
     "you used 1 − 2ηλ: the gradient of ½λθ² is λθ (the ½ cancels the 2), so a step is "
     "θ − ηλθ and the factor is |1 − ηλ|"),
    (lambda lr, lam: 1 - 2 * lr * lam,
     "you used 1 − 2ηλ (and no absolute value): the gradient of ½λθ² is λθ, not 2λθ; the factor "
     "is |1 − ηλ|"),
    (lambda lr, lam: abs(1 - lr * lam / 2),
     "you used 1 − ηλ/2: the gradient of ½λθ² is λθ, so a step subtracts ηλθ, not ηλθ/2"),
    (lambda lr, lam: 1 - lr * lam / 2,
     "you used 1 − ηλ/2: the gradient of ½λθ² is λθ, so a step subtracts ηλθ, not ηλθ/2"),
    (lambda lr, lam: lr * lam,
     "you returned ηλ, the step in units of the curvature; the factor is what multiplies θ: "
     "θ − ηλθ = (1 − ηλ)θ, so |1 − ηλ|"),
    (lambda lr, lam: 1 + lr * lam,
     "you returned 1 + ηλ: gradient descent moves *against* the gradient, θ ← θ − ηλθ"),
    (lambda lr, lam: (1 - lr * lam) ** 2,
     "you returned (1 − ηλ)², the factor of the loss ½λθ² per step; the question asks for |θ|, "
     "which changes by |1 − ηλ|"),
    (lambda lr, lam: min(abs(1 - lr * lam), 1.0),
     "you capped the factor at 1: a direction with ηλ > 2 really grows, by |1 − ηλ| > 1 per step"),
    (lambda lr, lam: 1 - lr,
     "you returned 1 − η: the curvature λ is missing; the step along the direction is ηλθ"),
)


def _near(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def check_contraction_factor(contraction_factor: Callable[[float, float], float]
                             ) -> ExerciseFeedback:
    """Check a learner's ``contraction_factor(lr, curvature)`` against |1 − ηλ|.

    Returns an :class:`ExerciseFeedback` that names the mistake when the answers match a typical
    wrong formula (see :data:`MISTAKES`), else the first case that is off.
    """
    answers = []
    for lr, curvature in CASES:
        try:
            value = contraction_factor(lr, curvature)
        except NotImplementedError:
            return ExerciseFeedback(EXERCISE, False, "not written yet: replace the "
                                    "`raise NotImplementedError` line.")
        except Exception as error:  # noqa: BLE001 — any learner error becomes feedback
            return ExerciseFeedback(EXERCISE, False,
                                    f"calling it with lr={lr}, curvature={curvature} raised "
                                    f"{type(error).__name__}: {error}")
        if isinstance(value, bool) or not isinstance(value, Real):
            hint = (" — did you forget `return`?" if value is None else
                    "; return the factor itself, not whether the step is stable" if isinstance(
                        value, bool) else "")
            return ExerciseFeedback(EXERCISE, False,
                                    f"lr={lr}, curvature={curvature} returned {value!r}: expected "
                                    f"one number{hint}.")
        answers.append(float(value))
    expected = [abs(1 - lr * curvature) for lr, curvature in CASES]
    if all(_near(a, e) for a, e in zip(answers, expected, strict=True)):
        return ExerciseFeedback(EXERCISE, True,
                                "correct: one step maps θ to (1 − ηλ)θ, so |θ| shrinks iff "
                                "ηλ < 2 and flips sign every step once ηλ > 1.")
    for formula, message in MISTAKES:
        if all(_near(a, formula(lr, lam)) for a, (lr, lam) in zip(answers, CASES, strict=True)):
            return ExerciseFeedback(EXERCISE, False, message + ".")
    for answer, want, (lr, curvature) in zip(answers, expected, CASES, strict=True):
        if not _near(answer, want):
            return ExerciseFeedback(
                EXERCISE, False,
                f"for lr={lr}, curvature={curvature} (ηλ = {lr * curvature:g}) you returned "
                f"{answer:g}, expected {want:g}. One GD step on ½λθ² maps θ to θ − ηλθ.")
    raise AssertionError("unreachable: some answer differs from the expected one")
