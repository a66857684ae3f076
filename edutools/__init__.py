"""edutools: the helper package of the Sharpness & Stability course.

Where things live — the folders are the layers, each importing only from the ones below it:

1. ``edutools.ground`` — pure and small: :mod:`~edutools.ground.device` (device, seeding,
   environment report), :mod:`~edutools.ground.threads` (torch threads that fit the machine),
   :mod:`~edutools.ground.validation` (argument checks), :mod:`~edutools.ground.data`,
   :mod:`~edutools.ground.models`, :mod:`~edutools.ground.cache` (on-disk results) and
   :mod:`edutools.ground.theory` (closed-form edges, momentum conventions, the quadratic model,
   the noise scale; no training).
2. ``edutools.engine`` — what runs and measures: :mod:`edutools.engine.training` (the one
   training loop), :mod:`edutools.engine.sharpness` (Hessian operators apart from the algorithms
   that use them, and training meters), :mod:`~edutools.engine.landscape`,
   :mod:`edutools.engine.sam` (the SAM optimizer), :mod:`edutools.engine.monitor` (an edge
   monitor for any PyTorch training loop), :mod:`~edutools.engine.grid` (parallel, cached
   hyper-parameter grids) and :mod:`edutools.engine.experiments` (one module per paper's
   experiment). Never draws.
3. ``edutools.face`` — what a learner touches: :mod:`edutools.face.plots` (one style; figures
   receive numbers), :mod:`~edutools.face.widgets` (sliders) and
   :mod:`edutools.face.exercises` (checks that say what is wrong).

Short names: ``edutools.<name>`` is an alias of the module above that has that name (for example
``edutools.sharpness`` is ``edutools.engine.sharpness``, ``edutools.theory`` is
``edutools.ground.theory``, ``edutools.sam`` is ``edutools.engine.sam``), so
``from edutools.sharpness import lambda_max`` works in learners' own notebooks (README teaches
three of them). The package's own modules and the lessons use the real paths, so the layer of
every import stays visible.

Threads: importing edutools leaves torch alone. The one-thread default (``EDUTOOLS_THREADS``
overrides it) is applied at first use, by :func:`get_device` and :func:`seed_everything`, which
every lesson's setup cell and every run call; :func:`configure_threads` applies it explicitly.

Momentum convention everywhere: heavy ball as in ``torch.optim.SGD``, ``v ← βv + g``,
``θ ← θ − ηv``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types

#: ``edutools.<short name>`` → the module it stands for.
SHORT_NAMES: dict[str, str] = {
    "device": "edutools.ground.device",
    "threads": "edutools.ground.threads",
    "validation": "edutools.ground.validation",
    "data": "edutools.ground.data",
    "models": "edutools.ground.models",
    "cache": "edutools.ground.cache",
    "theory": "edutools.ground.theory",
    "quadratic": "edutools.ground.theory.quadratic",
    "momentum": "edutools.ground.theory.conventions",
    "training": "edutools.engine.training",
    "sharpness": "edutools.engine.sharpness",
    "landscape": "edutools.engine.landscape",
    "sam": "edutools.engine.sam",
    "monitor": "edutools.engine.monitor",
    "grid": "edutools.engine.grid",
    "experiments": "edutools.engine.experiments",
    "linreg": "edutools.engine.experiments.critical_lr",
    "patches": "edutools.engine.experiments.jelassi_li",
    "reparametrize": "edutools.engine.experiments.dinh",
    "plots": "edutools.face.plots",
    "widgets": "edutools.face.widgets",
    "exercises": "edutools.face.exercises",
}


class _ShortNameFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Makes ``import edutools.<short name>`` import the real module and return it itself.

    The alias *is* the module (``edutools.sharpness is edutools.engine.sharpness``), so patching
    or pickling through either name behaves the same; the real module is imported lazily, only
    when the short name is used.
    """

    def __init__(self) -> None:
        self._real_specs: dict[str, importlib.machinery.ModuleSpec] = {}

    def find_spec(self, fullname: str, path: object, target: object = None
                  ) -> importlib.machinery.ModuleSpec | None:
        prefix, _, short = fullname.partition(".")
        if prefix != __name__ or short not in SHORT_NAMES:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = importlib.import_module(SHORT_NAMES[spec.name.partition(".")[2]])
        self._real_specs[module.__name__] = module.__spec__
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        # The import system stamped the alias's spec on the real module: give it its own back.
        module.__spec__ = self._real_specs[module.__name__]


if not any(isinstance(finder, _ShortNameFinder) for finder in sys.meta_path):
    sys.meta_path.append(_ShortNameFinder())

from edutools.ground.device import environment_report, get_device, seed_everything  # noqa: E402
from edutools.ground.threads import configure_threads  # noqa: E402
from edutools.ground.version import __version__  # noqa: E402

__all__ = ["SHORT_NAMES", "__version__", "configure_threads", "environment_report", "get_device",
           "seed_everything"]
