"""Sharpness-Aware Minimization (lesson 06): SAM, ASAM, m-sharpness and a cheaper variant.

* :class:`SAM` — a ``torch.optim.Optimizer`` around any base optimizer, with davda54/sam's
  interface (``first_step`` / ``second_step`` / ``step(closure)``). ``adaptive=True`` is ASAM;
  ``ascent_every=k`` reuses ε̂ for k − 1 steps (one forward/backward pass each). Its docstring
  holds the recipes for mixed precision (GradScaler) and DistributedDataParallel.
* :func:`m_sharpness_gradient` / :meth:`SAM.m_sharpness_step` — one ε̂ per sub-batch of m samples.
* :func:`ascent_perturbation` — ε̂ itself, for SAM and ASAM, from plain tensors.
* :func:`frozen_running_stats`, :func:`disable_running_stats`, :func:`enable_running_stats` —
  keep BatchNorm running statistics out of the perturbed pass.

Typical loop with BatchNorm::

    sam = SAM(model.parameters(), torch.optim.SGD, rho=0.05, lr=0.1, momentum=0.9)
    for X, y in batches:
        loss_fn(model(X), y).backward()              # at θ: updates the running statistics
        sam.first_step(zero_grad=True)
        with frozen_running_stats(model):            # at θ + ε̂: statistics left untouched
            loss_fn(model(X), y).backward()
        sam.second_step(zero_grad=True)
"""

from edutools.engine.sam.batchnorm import (
    disable_running_stats,
    enable_running_stats,
    frozen_running_stats,
)
from edutools.engine.sam.m_sharpness import MSharpnessGradient, m_sharpness_gradient
from edutools.engine.sam.optimizer import SAM
from edutools.engine.sam.perturbation import AscentResult, asam_scale, ascent_perturbation

__all__ = [
    "SAM",
    "AscentResult",
    "MSharpnessGradient",
    "asam_scale",
    "ascent_perturbation",
    "disable_running_stats",
    "enable_running_stats",
    "frozen_running_stats",
    "m_sharpness_gradient",
]
