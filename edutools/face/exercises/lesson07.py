"""Exercise check of lesson 07 (the capstone): the robust score, with feedback.

The exercise's contract: ``robust_score(acc_at_lr, acc_at_half_lr, acc_at_double_lr) -> float``

* each argument is a 1-D NumPy array of final validation accuracies (fractions in [0, 1]), one
  per seed, of one configuration trained at η, at η/2 and at 2η;
* the score is the worst of the three seed means minus the sample standard deviation
  (``ddof=1``) of the accuracies at η — what you can count on if η is off by a factor of two in
  either direction and your seed is one standard deviation unlucky
  (:func:`edutools.engine.experiments.capstone_analysis.robust_score` is the reference).

:func:`check_robust_score` runs the learner's function on cases where the typical mistakes give
different numbers and names the mistake it recognises.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edutools.engine.experiments.capstone_analysis import robust_score
from edutools.face.exercises.core import ExerciseFeedback

EXERCISE = "robust score"
TOLERANCE = 1e-9

__all__ = ["check_robust_score"]


@dataclass(frozen=True)
class _Case:
    name: str
    at_lr: np.ndarray
    half: np.ndarray
    double: np.ndarray


def _cases() -> list[_Case]:
    return [
        _Case("a configuration that loses accuracy at η/2",
              np.array([0.90, 0.93, 0.95]), np.array([0.86, 0.88, 0.87]),
              np.array([0.94, 0.95, 0.93])),
        _Case("a configuration whose 2η runs diverged (accuracy near chance)",
              np.array([0.96, 0.97, 0.92, 0.95]), np.array([0.93, 0.95, 0.94, 0.94]),
              np.array([0.10, 0.11, 0.09, 0.10])),
        _Case("a configuration that is best at η itself, with two seeds",
              np.array([0.91, 0.95]), np.array([0.90, 0.90]), np.array([0.92, 0.93])),
    ]


def _mistakes(case: _Case) -> list[tuple[float, str]]:
    """Values that typical wrong answers give on ``case``, with what is wrong."""
    means = [case.half.mean(), case.at_lr.mean(), case.double.mean()]
    std1, std0 = case.at_lr.std(ddof=1), case.at_lr.std(ddof=0)
    pooled = np.concatenate([case.half, case.at_lr, case.double])
    return [
        (min(means) - std0, "you used the population standard deviation (np.std's default, "
         "ddof=0); use the sample standard deviation over seeds, np.std(acc, ddof=1)"),
        (min(means), "you left out the spread over seeds: subtract the standard deviation of "
         "the accuracies at η"),
        (means[1] - std1, "you left out the learning-rate sensitivity: take the worst of the "
         "three seed means (η/2, η, 2η), not the mean at η alone"),
        (means[1], "you returned the mean accuracy at η: that is the plain score, with neither "
         "the seed spread nor the sensitivity to η"),
        (min(means) + std1, "you added the standard deviation: a larger spread must *lower* the "
         "score"),
        (max(means) - std1, "you took the *best* of the three learning rates; robustness asks "
         "what you get in the *worst* case, so take the minimum"),
        (min(means) - std1 ** 2, "you subtracted the variance; subtract the standard deviation "
         "(same units as the accuracy)"),
        (pooled.min() - std1, "you took the worst single run; take the worst of the seed *means* "
         "per learning rate"),
        (min(means) - pooled.std(ddof=1), "you took the spread over all runs of all three "
         "learning rates; the spread is over seeds at η only"),
        (float(np.mean(means)) - std1, "you averaged the three learning rates; robustness asks "
         "for the worst of them"),
    ]


def check_robust_score(score: Callable[..., object]) -> ExerciseFeedback:
    """Check a learner's ``robust_score(acc_at_lr, acc_at_half_lr, acc_at_double_lr)``.

    See the module docstring for the contract. Three cases (3, 4 and 2 seeds); the arrays are
    copies, and a function that changes them in place is told so.
    """
    for case in _cases():
        arrays = (case.at_lr.copy(), case.half.copy(), case.double.copy())
        try:
            raw = score(*arrays)
        except NotImplementedError:
            return _fail("not written yet: replace the `raise NotImplementedError` line.")
        except Exception as error:  # noqa: BLE001 — any learner error becomes feedback
            return _fail(f"on {case.name}, it raised {type(error).__name__}: {error}")
        message = _diagnose(case, raw, arrays)
        if message is not None:
            return _fail(f"on {case.name} (accuracies at η {case.at_lr.tolist()}, at η/2 "
                         f"{case.half.tolist()}, at 2η {case.double.tolist()}): {message}")
    return ExerciseFeedback(
        EXERCISE, True,
        "correct: the worst seed mean over η/2, η and 2η, minus the seed spread at η. A "
        "configuration scores high only if it is good, steady over seeds, and forgiving of η.")


def _fail(message: str) -> ExerciseFeedback:
    return ExerciseFeedback(EXERCISE, False, message)


def _diagnose(case: _Case, raw: object, arrays: tuple[np.ndarray, ...]) -> str | None:
    if raw is None:
        return "it returned None: end with `return score`."
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return (f"the score must be one number (a float), got {type(raw).__name__}; did you "
                "return an array, e.g. forget to take the mean over seeds?")
    originals = (case.at_lr, case.half, case.double)
    if not all(np.array_equal(a, o) for a, o in zip(arrays, originals, strict=True)):
        return ("your function changed its input arrays in place (e.g. `acc.sort()`); work on "
                "copies: the caller reuses them.")
    if not math.isfinite(value):
        return (f"it returned {value}; with ≥ 2 seeds every term is finite — check for a "
                "division by zero or a standard deviation of a single number.")
    expected = robust_score(case.at_lr, case.half, case.double)
    if math.isclose(value, expected, rel_tol=0, abs_tol=TOLERANCE):
        return None
    for wrong, explanation in _mistakes(case):
        if math.isclose(value, wrong, rel_tol=0, abs_tol=TOLERANCE):
            return f"got {value:.4f}, expected {expected:.4f}: {explanation}."
    return (f"got {value:.4f}, expected {expected:.4f} = min(seed means at η/2, η, 2η) − "
            "std(accuracies at η, ddof=1).")
