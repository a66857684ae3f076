"""When a training run counts as diverged, and a message naming the setting that did it.

Two criteria, checked after every step on the mini-batch loss ``L_t`` (initial full loss ``L_0``):

* **blow-up** — ``L_t`` is not finite or exceeds ``divergence_factor · L_0`` (default 1000×): the
  mean-squared-error runs of the course explode this way within a few steps;
* **sustained rise** — every one of the last :data:`RISE_STEPS` losses is above
  :data:`RISE_FACTOR` ``· L_0`` and their later half is not lower than their earlier half. Cross-
  entropy is bounded below by 0 and grows only about linearly in the logits, so a run with a far
  too large learning rate settles tens of times above its start (lr = 100 on a 3-class teacher:
  1.1 → 15–85) without ever reaching 1000×. An edge-of-stability catapult spikes for a few steps
  and comes back down, so it is not flagged.

The message reads the learning rate (and momentum) from the optimizer's ``param_groups``, the
values actually in force, not from ``train``'s own arguments, which a custom optimizer (SAM,
Adam) ignores.
"""

from __future__ import annotations

import math

import numpy as np
import torch

#: A loss held above this multiple of the initial loss ...
RISE_FACTOR = 10.0
#: ... for this many consecutive steps, and not falling, is a divergence.
RISE_STEPS = 20


def divergence_reason(step_losses: torch.Tensor, completed: int, initial_loss: float,
                      divergence_factor: float) -> str | None:
    """Why the run has diverged after ``completed`` steps, or None if it has not.

    Args:
        step_losses: the mini-batch loss of every step so far (float64, length ≥ completed).
        completed: steps taken; ``step_losses[completed - 1]`` is the latest.
        initial_loss: the full training loss before the first step (> 0).
        divergence_factor: the blow-up multiple (> 1).
    """
    value = float(step_losses[completed - 1])
    if not math.isfinite(value):
        return f"the mini-batch loss became {value}"
    if value > divergence_factor * initial_loss:
        return (f"the mini-batch loss reached {value:.3g}, over {divergence_factor:g}× the "
                f"initial loss {initial_loss:.3g}")
    if completed < RISE_STEPS:
        return None
    recent = step_losses[completed - RISE_STEPS:completed].numpy()
    half = RISE_STEPS // 2
    if recent.min() > RISE_FACTOR * initial_loss and recent[half:].mean() >= recent[:half].mean():
        return (f"the mini-batch loss stayed above {RISE_FACTOR:g}× the initial loss "
                f"{initial_loss:.3g} for {RISE_STEPS} steps and is not falling (now {value:.3g})")
    return None


def settings_in_force(optimizer: torch.optim.Optimizer) -> str:
    """``lr=…`` (and ``momentum=…`` where the optimizer has one) as the optimizer's param groups
    hold them now, e.g. ``"SGD lr=0.1, momentum=0.9"``."""
    parts = []
    for key in ("lr", "momentum"):
        values = sorted({float(group[key]) for group in optimizer.param_groups if key in group})
        if values and (key == "lr" or any(values)):
            parts.append(f"{key}={'/'.join(f'{v:g}' for v in values)}")
    return f"{type(optimizer).__name__} {', '.join(parts)}" if parts else type(optimizer).__name__


def divergence_message(reason: str, step: int, optimizer: torch.optim.Optimizer) -> str:
    """The warning text of a run that diverged at ``step`` for ``reason``."""
    lrs = np.unique([float(g["lr"]) for g in optimizer.param_groups if "lr" in g])
    culprit = f"lr={'/'.join(f'{v:g}' for v in lrs)}" if lrs.size else "the step size"
    return (f"Training diverged at step {step}: {reason}. {culprit} is too large here "
            f"(optimizer in force: {settings_in_force(optimizer)}); the record up to that step "
            "is returned")
