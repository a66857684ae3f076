"""Exercise check of lesson 08 (your own network): attach an edge monitor to a training loop.

The exercise's contract: ``train_with_monitor(model, optimizer, X, y, *, num_steps, every)``

* trains ``model`` with ``optimizer`` for ``num_steps`` full-batch steps on ``(X, y)`` with the
  course's half-MSE loss (``edutools.ground.models.half_mse``): zero the gradients, compute the
  loss, ``backward()``, ``optimizer.step()``;
* builds an :class:`~edutools.engine.monitor.EdgeMonitor` on the same batch (``probe=(X, y)``,
  ``every=every``) and calls ``monitor.step()`` once after every ``optimizer.step()``;
* returns the monitor.

The check trains a small network with the learner's loop and with a reference loop that has no
monitor, and says what is wrong: the training changed (so the monitor, or the loop, is not the
plain loop), the monitor counted the wrong number of steps, or it measured before the step.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from edutools.engine.monitor import EdgeMonitor
from edutools.engine.sharpness import top_eigenvalues
from edutools.face.exercises.core import ExerciseFeedback
from edutools.ground.models import half_mse, mlp

TrainWithMonitor = Callable[..., object]

EXERCISE = "an edge monitor on your own loop"
#: The check's setting: a tanh MLP 6-8-3 on 40 random points, SGD η = 0.3, β = 0.5.
NUM_STEPS, EVERY = 12, 4

__all__ = ["check_train_with_monitor", "reference_loop"]


def _setting() -> tuple[torch.nn.Module, torch.optim.Optimizer, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(8)
    X = torch.randn(40, 6, generator=generator)
    y = torch.randint(0, 3, (40,), generator=generator)
    model = mlp([6, 8, 3], seed=8)
    return model, torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.5), X, y


def reference_loop(model: torch.nn.Module, optimizer: torch.optim.Optimizer, X: torch.Tensor,
                   y: torch.Tensor, *, num_steps: int) -> None:
    """The plain loop without a monitor: what the learner's weights must equal."""
    for _ in range(num_steps):
        optimizer.zero_grad()
        half_mse(model(X), y).backward()
        optimizer.step()


def check_train_with_monitor(train_with_monitor: TrainWithMonitor) -> ExerciseFeedback:
    """Check a learner's ``train_with_monitor`` (see the module docstring for the contract)."""
    model, optimizer, X, y = _setting()
    try:
        monitor = train_with_monitor(model, optimizer, X, y, num_steps=NUM_STEPS, every=EVERY)
    except NotImplementedError:
        return _fail("not written yet: replace the `raise NotImplementedError` line.")
    except Exception as error:  # noqa: BLE001 — any learner error becomes feedback
        return _fail(f"it raised {type(error).__name__}: {error}")
    message = _diagnose(monitor, model, X, y)
    if message is not None:
        return _fail(message)
    return ExerciseFeedback(EXERCISE, True,
                            f"correct: {NUM_STEPS} steps trained exactly as without the monitor, "
                            f"measured after steps {EVERY}, {2 * EVERY}, …; last verdict: "
                            f"{monitor.verdict()}")


def _fail(message: str) -> ExerciseFeedback:
    return ExerciseFeedback(EXERCISE, False, message)


def _diagnose(monitor: object, model: torch.nn.Module, X: torch.Tensor,
              y: torch.Tensor) -> str | None:
    """None when the learner's run is right, else what is wrong."""
    if not isinstance(monitor, EdgeMonitor):
        return (f"it returned {type(monitor).__name__}, not the EdgeMonitor: end with "
                f"`return monitor`.")
    reference, reference_opt, _, _ = _setting()
    reference_loop(reference, reference_opt, X, y, num_steps=NUM_STEPS)
    if monitor.steps != NUM_STEPS:
        return (f"the monitor counted {monitor.steps} steps for {NUM_STEPS} optimizer steps: "
                f"call `monitor.step()` exactly once after each `optimizer.step()`.")
    same = all(torch.equal(p, q) for p, q in zip(model.parameters(), reference.parameters(),
                                                 strict=True))
    if not same:
        return ("the trained weights differ from the same loop without a monitor: zero the "
                "gradients every step (`optimizer.zero_grad()`), use `half_mse` on the whole "
                f"batch and take exactly {NUM_STEPS} optimizer steps.")
    measured = float(monitor.record["lambda_max"].iloc[0])
    before, after = _curvature_around_first_measurement(X, y)
    if abs(measured - before) < abs(measured - after):
        return (f"the first measurement (λ_max = {measured:.5g}) is the curvature *before* "
                f"step {EVERY} ({before:.5g}), not after it ({after:.5g}): call "
                "`monitor.step()` after `optimizer.step()`, so it measures the step's weights.")
    return None


def _curvature_around_first_measurement(X: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """λ_max of the reference run after steps ``EVERY − 1`` and ``EVERY`` (they differ by about
    1% here, far more than the monitor's Lanczos error)."""
    model, optimizer, _, _ = _setting()
    values = []
    for steps in (EVERY - 1, 1):
        reference_loop(model, optimizer, X, y, num_steps=steps)
        values.append(float(top_eigenvalues(model, half_mse, X, y, tol=1e-8).eigenvalues[0]))
    return values[0], values[1]
