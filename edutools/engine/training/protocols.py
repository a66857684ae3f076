"""What :func:`~edutools.engine.training.train` asks of an optimizer beyond ``torch.optim``'s
``step()``: two small protocols, so that the loop knows no optimizer by name.

* :class:`ClosureOptimizer` — ``step(closure)`` re-evaluates the loss itself (L-BFGS-like, or
  counting optimizers in tests). The loop runs the forward and backward pass at θ first, then
  hands over the closure, which does forward + backward on the same mini-batch and returns the
  loss.
* :class:`TwoPassOptimizer` — a closure optimizer whose step evaluates the network at a second,
  perturbed point (SAM's θ + ε̂, :class:`edutools.engine.sam.SAM`). The loop freezes BatchNorm
  running statistics for passes made while :attr:`~TwoPassOptimizer.perturbed` is True
  (:mod:`edutools.ground.batchnorm`), and skips its own pass at θ when
  :attr:`~TwoPassOptimizer.ascent_due` is False (the step reuses a stored perturbation and
  needs no gradient at θ).

An optimizer declares either by subclassing it (as SAM does) or by having the attributes; the loop
checks with ``isinstance`` once, before the first step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class ClosureOptimizer(Protocol):
    """An optimizer whose ``step`` takes a closure; ``requires_closure = True`` asks for it.

    The closure zeroes the gradients, runs forward and backward on the step's mini-batch at the
    current parameters and returns the loss (a 0-d tensor).
    """

    requires_closure: bool

    def step(self, closure: Callable[[], torch.Tensor]) -> torch.Tensor | None:
        """One optimizer step, calling ``closure`` as often as it needs."""
        ...


@runtime_checkable
class TwoPassOptimizer(ClosureOptimizer, Protocol):
    """A :class:`ClosureOptimizer` that evaluates a second, perturbed point in each step.

    ``step(closure)`` must return the loss of its last closure call (the loss the loop records
    when it made no pass at θ itself).
    """

    @property
    def perturbed(self) -> bool:
        """True while the parameters sit at the perturbed point: a forward pass now must not
        update BatchNorm running statistics."""
        ...

    @property
    def ascent_due(self) -> bool:
        """Whether the next step needs the gradient at θ (False: it reuses a stored
        perturbation, and its only pass, at the perturbed point, gives the step's loss)."""
        ...
