"""Sharpness-Aware Minimization (lesson 06): SAM, ASAM, m-sharpness and a cheaper variant.

* :class:`SAM` — a ``torch.optim.Optimizer`` around any base optimizer, with davda54/sam's
  interface (``first_step`` / ``second_step`` / ``step(closure)``). ``adaptive=True`` is ASAM;
  ``ascent_every=k`` reuses ε̂ for k − 1 steps (one forward/backward pass each). Recipes for
  mixed precision (GradScaler) and DistributedDataParallel are below.
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

Mixed precision (``torch.amp.GradScaler``): unscale each pass's gradient once, through two
different optimizer objects (GradScaler refuses a second ``unscale_`` on the same one)::

    with torch.autocast(device_type, dtype):
        loss = loss_fn(model(X), y)
    scaler.scale(loss).backward()
    scaler.unscale_(sam)                     # records an overflow of the pass at θ
    sam.first_step(zero_grad=True)           # ε̂ from the unscaled g
    with torch.autocast(device_type, dtype):
        loss = loss_fn(model(X), y)
    scaler.scale(loss).backward()
    # optional clipping: scaler.unscale_(sam.base_optimizer); clip_grad_norm_(...)
    sam.second_step(zero_grad=True, scaler=scaler)
    scaler.update()

``second_step(scaler=...)`` restores θ, then calls ``scaler.step(sam.base_optimizer)``,
which unscales the second gradient and skips the base step if it has inf/NaN. If the
first gradient was not finite, ε̂ = 0 and the base step is skipped as well (and the scaler
is made to record the overflow, so ``update()`` lowers the scale even without the
``unscale_(sam)`` line; ε̂ does not depend on the loss scale, so that line is otherwise
optional). ``step(closure)`` does not take a scaler: GradScaler forbids closures.

DistributedDataParallel (``ddp = DistributedDataParallel(model)``, davda54/sam issue #78).
SAM on the global batch, i.e. ε̂ from the all-reduced gradient, is the plain loop with both
backward passes synchronised as usual::

    loss_fn(ddp(X_local), y_local).backward()    # all-reduced g: the same ε̂ on every replica
    sam.first_step(zero_grad=True)               # (ASAM: the same T_w too, weights agree)
    loss_fn(ddp(X_local), y_local).backward()    # all-reduced gradient at θ + ε̂
    sam.second_step(zero_grad=True)              # θ from each replica's own (equal) copy

Putting the first pass under ``ddp.no_sync()`` is wrong for that: each replica would perturb
along its own local gradient. That is m-sharpness with m = the per-replica batch (Foret et
al.'s setup on TPUs); if it is what you want, ``no_sync()`` must wrap the forward as well as
the backward (DDP decides during the forward whether the backward all-reduces), and
``first_step`` needs ``zero_grad=True``, or the local first gradient would be summed into the
second one and all-reduced with it::

    with ddp.no_sync():
        loss_fn(ddp(X_local), y_local).backward()    # local g, no communication
    sam.first_step(zero_grad=True)
    loss_fn(ddp(X_local), y_local).backward()        # all-reduced: mean of per-replica SAM grads
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
