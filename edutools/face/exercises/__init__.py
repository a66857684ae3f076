"""Exercise checks that say what is wrong, not just "incorrect": the feedback type and
:func:`implemented` (:mod:`.core`), and one module per lesson with that lesson's checks."""

from edutools.face.exercises.core import ExerciseFeedback, implemented
from edutools.face.exercises.lesson00 import check_effective_lr
from edutools.face.exercises.lesson01 import check_contraction_factor
from edutools.face.exercises.lesson05 import check_power_iteration, make_eigenproblem

__all__ = ["ExerciseFeedback", "check_contraction_factor", "check_effective_lr",
           "check_power_iteration", "implemented", "make_eigenproblem"]
