"""edutools: the helper package of the Sharpness & Stability course.

Layers (each imports only from those below it):

1. ground — :mod:`~edutools.device`, :mod:`~edutools.validation`, :mod:`~edutools.data`,
   :mod:`~edutools.models`, :mod:`~edutools.theory`, :mod:`~edutools.quadratic`,
   :mod:`~edutools.momentum` (convention converter);
2. engine — :mod:`~edutools.training`, :mod:`~edutools.sharpness`, :mod:`~edutools.landscape`,
   :mod:`~edutools.linreg` (divergence-step bisection), :mod:`~edutools.patches`
   (Jelassi–Li), :mod:`~edutools.generalization` (noise scale, phases),
   :mod:`~edutools.reparametrize` (Dinh et al.);
3. face — :mod:`~edutools.plots`, :mod:`~edutools.widgets`, :mod:`~edutools.exercises`,
   :mod:`~edutools.sharpness_exercises`.

Momentum convention everywhere: heavy ball as in ``torch.optim.SGD``, ``v ← βv + g``,
``θ ← θ − ηv``.
"""

__version__ = "0.1.0"

from edutools.device import environment_report, get_device, seed_everything  # noqa: E402
from edutools.ground.threads import configure_threads  # noqa: E402

# One torch thread by default (EDUTOOLS_THREADS overrides): see edutools.ground.threads.
configure_threads()

__all__ = ["__version__", "configure_threads", "environment_report", "get_device",
           "seed_everything"]
