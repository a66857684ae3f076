"""Exercise checks that say what is wrong, not just "incorrect": the feedback type (:mod:`.core`)
and one module per lesson with that lesson's checks.

Every ``lessonNN`` module of this package is found and imported here, and the names in its
``__all__`` are exported, so ``from edutools.face.exercises import check_sam_ascent`` works for
every lesson without a list to keep: a new lesson's module only needs its ``__all__``.
"""

import importlib
import pkgutil
import re

from edutools.face.exercises.core import ExerciseFeedback, implemented

__all__ = ["ExerciseFeedback", "implemented"]

#: The lesson modules found, by lesson number ("00", "01", ...).
LESSON_MODULES: dict[str, str] = {
    info.name[len("lesson"):]: f"{__name__}.{info.name}"
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name)
    if re.fullmatch(r"lesson\d\d", info.name)}

for _module_name in LESSON_MODULES.values():
    _module = importlib.import_module(_module_name)
    for _name in _module.__all__:
        globals()[_name] = getattr(_module, _name)
        __all__.append(_name)
del _module, _module_name, _name
