"""Lesson 04's exercise: the learning rate that keeps SGD's noise scale when the batch size (and
the momentum) change.

The contract: ``lr_for_batch(lr, batch_size, new_batch_size, momentum=0.0, new_momentum=0.0)``
returns the η' with η'/(B'(1−β')) = η/(B(1−β)), i.e. η' = η·(B'/B)·(1−β')/(1−β) — heavy-ball
momentum as in ``torch.optim.SGD`` (``v ← βv + g``, ``θ ← θ − ηv``). :func:`check_lr_for_batch`
tries it on cases with known answers and names the usual mistakes.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from edutools.face.exercises.core import ExerciseFeedback

__all__ = ["check_lr_for_batch"]

EXERCISE = "learning rate for a new batch size"

#: (lr, batch_size, new_batch_size, momentum, new_momentum): B grows, B shrinks, β changes.
CASES = ((0.05, 16, 64, 0.0, 0.0), (0.1, 32, 128, 0.9, 0.9), (0.05, 16, 64, 0.0, 0.75),
         (0.2, 256, 64, 0.5, 0.0))


def _expected(lr: float, batch_size: int, new_batch_size: int, momentum: float,
              new_momentum: float) -> float:
    return lr * (new_batch_size / batch_size) * (1 - new_momentum) / (1 - momentum)


def _mistakes(lr: float, batch_size: int, new_batch_size: int, momentum: float,
              new_momentum: float) -> list[tuple[float, str]]:
    """Answers that typical mistakes give on one case, each with what to tell the learner."""
    k = new_batch_size / batch_size
    keep = (1 - new_momentum) / (1 - momentum)
    return [
        (lr, "you returned η unchanged: with k times the batch, each step averages away k times "
             "more gradient noise, so the step size must change with B"),
        (lr / k * keep, "inverse scaling: you divided η by B'/B. A larger batch has *less* noise "
                        "per step, so η must grow with B (linear scaling, Goyal et al. 2017)"),
        (lr / k, "inverse scaling: you divided η by B'/B. A larger batch has *less* noise per "
                 "step, so η must grow with B (linear scaling, Goyal et al. 2017)"),
        (lr * math.sqrt(k) * keep, "square-root scaling: it keeps the noise's standard deviation "
                                   "per step, not the noise scale η/(B(1−β)), which needs η ∝ B"),
        (lr * math.sqrt(k), "square-root scaling: it keeps the noise's standard deviation per "
                            "step, not the noise scale η/(B(1−β)), which needs η ∝ B"),
        (lr * k, "you forgot the momentum: the effective step is η/(1−β), so when β changes "
                 "multiply by (1−β')/(1−β) too"),
        (lr * k / keep, "the momentum factor is upside down: more momentum makes the effective "
                        "step η/(1−β) larger, so η must shrink by (1−β')/(1−β)"),
    ]


def check_lr_for_batch(lr_for_batch: Callable[..., float]) -> ExerciseFeedback:
    """Check a learner's ``lr_for_batch(lr, batch_size, new_batch_size, momentum, new_momentum)``
    against η·(B'/B)·(1−β')/(1−β); the message names the mistake when it recognises one."""
    for case in CASES:
        lr, batch_size, new_batch_size, momentum, new_momentum = case
        call = (f"lr_for_batch({lr}, {batch_size}, {new_batch_size}, momentum={momentum}, "
                f"new_momentum={new_momentum})")
        try:
            got = lr_for_batch(lr, batch_size, new_batch_size, momentum, new_momentum)
        except NotImplementedError:
            return ExerciseFeedback(EXERCISE, False, "not written yet: replace the "
                                    "`raise NotImplementedError` line.")
        except ZeroDivisionError as error:
            return ExerciseFeedback(EXERCISE, False,
                                    f"{call} raised ZeroDivisionError ({error}): with β = 0 only "
                                    "1−β is safe to divide by — did you use β where 1−β belongs?")
        except Exception as error:  # noqa: BLE001 — any learner error becomes feedback
            return ExerciseFeedback(EXERCISE, False,
                                    f"{call} raised {type(error).__name__}: {error}")
        try:
            if isinstance(got, str | bytes):
                raise TypeError("text is not a number")
            got = float(got)
        except (TypeError, ValueError):
            return ExerciseFeedback(EXERCISE, False,
                                    f"{call} returned {got!r}; return the new η as a number.")
        expected = _expected(*case)
        if math.isclose(got, expected, rel_tol=1e-9):
            continue
        for answer, hint in _mistakes(*case):
            if math.isclose(got, answer, rel_tol=1e-9):
                return ExerciseFeedback(EXERCISE, False, f"{call} gave {got:g}; {hint}.")
        return ExerciseFeedback(EXERCISE, False, f"{call} gave {got:g}, expected {expected:g}; "
                                "the noise scale η/(B(1−β)) must stay the same.")
    return ExerciseFeedback(EXERCISE, True,
                            "correct: η' = η·(B'/B)·(1−β')/(1−β) keeps the noise scale "
                            "η/(B(1−β)); a bigger batch wants a bigger step, more momentum a "
                            "smaller one.")
