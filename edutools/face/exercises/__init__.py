"""Exercise checks that say what is wrong, not just "incorrect": the feedback type (:mod:`.core`)
and one module per lesson with that lesson's checks."""

from edutools.face.exercises.core import ExerciseFeedback, implemented
from edutools.face.exercises.lesson00 import check_effective_lr
from edutools.face.exercises.lesson01 import check_contraction_factor
from edutools.face.exercises.lesson02 import check_batch_ratio
from edutools.face.exercises.lesson03 import (
    check_mean_square_lr,
    check_polyak_setting,
    check_stable_edge,
)
from edutools.face.exercises.lesson04 import check_lr_for_batch
from edutools.face.exercises.lesson05 import check_power_iteration, make_eigenproblem
from edutools.face.exercises.lesson07 import check_robust_score

__all__ = ["ExerciseFeedback", "check_batch_ratio", "check_contraction_factor",
           "check_effective_lr", "check_lr_for_batch", "check_mean_square_lr",
           "check_polyak_setting", "check_power_iteration",
           "check_robust_score", "check_stable_edge", "implemented", "make_eigenproblem"]
