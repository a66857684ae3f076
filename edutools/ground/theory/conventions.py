"""Momentum conventions, converted into the course's one: PyTorch heavy ball.

Three ways of writing heavy-ball momentum are in use, and papers and libraries mix them
(:data:`USED_BY`):

* ``"pytorch"`` (``torch.optim.SGD``, the course's):      v ← βv + g,        θ ← θ − ηv;
* ``"averaged"`` (EMA form, e.g. Jelassi & Li 2022):      v ← βv + (1−β)g,   θ ← θ − αv;
* ``"velocity"`` (``keras.optimizers.SGD``, Sutskever et al. 2013): v ← βv − ηg, θ ← θ + v.

With zero initial velocity and a *constant* step size all three make the same trajectory once the
step sizes are matched: the averaged form with step α is PyTorch's with η = α(1−β) (its velocity
is (1−β) times PyTorch's), and the velocity form with step η is PyTorch's with the same η (its
velocity is −η times PyTorch's). :func:`to_pytorch` does the conversion and returns the effective
step and the edges in one frozen record; :func:`momentum_trajectory` runs any of the rules
numerically, which is how the tests check the conversion.

**Under a learning-rate schedule** the velocity form (Keras) and PyTorch part ways. Keras's
velocity keeps every past gradient multiplied by the step size *of its own step*,
v_t = βv_{t−1} − η_t g_t; PyTorch multiplies the whole buffer by the *current* step,
θ_t = θ_{t−1} − η_t(βb_{t−1} + g_t). Writing b_t = −v_t/η_t shows the fix: PyTorch follows
Keras exactly if its buffer is multiplied by η_{t−1}/η_t whenever η changes
(:func:`velocity_buffer_rescale`; ``momentum_trajectory(..., rescale_buffer=True)``). The averaged
form has no η in its buffer, so step α_t is PyTorch's η_t = α_t(1−β) under any schedule.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from edutools.ground.theory import edges as theory
from edutools.ground.validation import check_lr, check_momentum, check_positive_int

CONVENTIONS: dict[str, str] = {
    "pytorch": "v ← βv + g,  θ ← θ − ηv",
    "averaged": "v ← βv + (1−β)g,  θ ← θ − αv",
    "velocity": "v ← βv − ηg,  θ ← θ + v",
}

#: Who writes momentum each way. Keras (``keras.optimizers.SGD``) uses the velocity form, not
#: PyTorch's: the two agree at a constant η and differ under a schedule.
USED_BY: dict[str, str] = {
    "pytorch": "torch.optim.SGD (this course)",
    "averaged": "EMA form: Jelassi & Li 2022, Adam's first moment",
    "velocity": "keras.optimizers.SGD; Sutskever et al. 2013",
}


@dataclass(frozen=True)
class MomentumConversion:
    """One momentum setting written in some convention, and what it is in PyTorch's.

    Attributes:
        convention: ``"pytorch"``, ``"averaged"`` or ``"velocity"``.
        rule: the update rule of that convention, as text.
        used_by: who writes momentum that way (:data:`USED_BY`).
        lr: the step size as written in that convention (η, α or η).
        momentum: β (the same number in every convention).
        pytorch_lr: the ``lr`` to give ``torch.optim.SGD(momentum=β)`` for the same trajectory.
        effective_lr: η/(1−β) with η = ``pytorch_lr``: the step a constant gradient settles to.
        full_batch_edge: heavy ball's full-batch edge 2(1+β)/η (η = ``pytorch_lr``).
        small_batch_edge: the small-batch plateau of batch sharpness, 2(1−β)/η.
        velocity_factor: the convention's velocity is this multiple of PyTorch's
            (1, 1−β, −η respectively), at every step.
    """

    convention: str
    rule: str
    used_by: str
    lr: float
    momentum: float
    pytorch_lr: float
    effective_lr: float
    full_batch_edge: float
    small_batch_edge: float
    velocity_factor: float


def _check_convention(convention: str) -> str:
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {sorted(CONVENTIONS)}, got {convention!r}")
    return convention


def to_pytorch(convention: str, lr: float, momentum: float) -> MomentumConversion:
    """Convert step size ``lr`` and momentum β written in ``convention`` to PyTorch heavy ball."""
    convention = _check_convention(convention)
    lr, momentum = check_lr(lr), check_momentum(momentum)
    pytorch_lr = lr * (1.0 - momentum) if convention == "averaged" else lr
    factor = {"pytorch": 1.0, "averaged": 1.0 - momentum, "velocity": -pytorch_lr}[convention]
    return MomentumConversion(
        convention=convention, rule=CONVENTIONS[convention], used_by=USED_BY[convention], lr=lr,
        momentum=momentum,
        pytorch_lr=pytorch_lr, effective_lr=theory.effective_lr(pytorch_lr, momentum),
        full_batch_edge=theory.momentum_edge(pytorch_lr, momentum),
        small_batch_edge=theory.small_batch_momentum_edge(pytorch_lr, momentum),
        velocity_factor=factor)


def from_pytorch(convention: str, lr: float, momentum: float) -> MomentumConversion:
    """The setting of ``convention`` that reproduces PyTorch heavy ball with ``lr``, β."""
    convention = _check_convention(convention)
    lr, momentum = check_lr(lr), check_momentum(momentum)
    own_lr = lr / (1.0 - momentum) if convention == "averaged" else lr
    return to_pytorch(convention, own_lr, momentum)


def conversion_table(lr: float, momentum: float) -> pd.DataFrame:
    """One row per convention, each read with the *same numbers* ``lr`` and β.

    Shows how far apart the conventions are when a paper's "lr" is copied as is: the PyTorch
    ``lr`` each one means, its effective step and its full-batch and small-batch edges.
    """
    rows = [to_pytorch(name, lr, momentum) for name in CONVENTIONS]
    return pd.DataFrame({
        "convention": [r.convention for r in rows],
        "update rule": [r.rule for r in rows],
        "used by": [r.used_by for r in rows],
        "its lr": [r.lr for r in rows],
        "PyTorch lr η": [r.pytorch_lr for r in rows],
        "effective step η/(1−β)": [r.effective_lr for r in rows],
        "full-batch edge 2(1+β)/η": [r.full_batch_edge for r in rows],
        "small-batch edge 2(1−β)/η": [r.small_batch_edge for r in rows],
    }).set_index("convention")


def momentum_step(convention: str, theta: np.ndarray, velocity: np.ndarray, grad: np.ndarray,
                  *, lr: float, momentum: float) -> tuple[np.ndarray, np.ndarray]:
    """One update of ``convention`` from (θ, v) with gradient ``grad``; returns the new (θ, v)."""
    convention = _check_convention(convention)
    if convention == "pytorch":
        velocity = momentum * velocity + grad
        return theta - lr * velocity, velocity
    if convention == "averaged":
        velocity = momentum * velocity + (1.0 - momentum) * grad
        return theta - lr * velocity, velocity
    velocity = momentum * velocity - lr * grad
    return theta + velocity, velocity


def velocity_buffer_rescale(previous_lr: float, lr: float) -> float:
    """Factor for ``torch.optim.SGD``'s momentum buffer when the step size changes from
    ``previous_lr`` to ``lr``, so that PyTorch keeps following the velocity form (Keras):
    η_{t−1}/η_t. Multiply every ``optimizer.state[p]["momentum_buffer"]`` by it before the step
    taken with the new η. At a constant η it is 1: nothing to do."""
    return check_lr(previous_lr) / check_lr(lr)


def momentum_trajectory(convention: str, grad_fn: Callable[[np.ndarray], np.ndarray],
                        theta0: np.ndarray, *, lr: float | Sequence[float], momentum: float,
                        num_steps: int, rescale_buffer: bool = False) -> np.ndarray:
    """Iterates θ_0 … θ_T of ``convention`` from zero velocity; shape (num_steps + 1, dim).

    ``lr`` is one step size or a schedule (one value per step, length ``num_steps``).
    ``rescale_buffer`` (PyTorch only) multiplies the buffer by
    :func:`velocity_buffer_rescale` before each step, which reproduces the velocity form under a
    schedule.
    """
    momentum = check_momentum(momentum)
    num_steps = check_positive_int(num_steps, name="num_steps")
    schedule = (np.full(num_steps, lr, dtype=np.float64) if np.ndim(lr) == 0
                else np.asarray(lr, dtype=np.float64))
    if schedule.shape != (num_steps,):
        raise ValueError(f"lr must be a number or a schedule of num_steps={num_steps} values, "
                         f"got {len(schedule)} values")
    for value in schedule:
        check_lr(float(value))
    if rescale_buffer and convention != "pytorch":
        raise ValueError(f"rescale_buffer applies to the 'pytorch' convention only, got "
                         f"convention={convention!r}")
    theta = np.array(theta0, dtype=np.float64)
    velocity = np.zeros_like(theta)
    path = [theta.copy()]
    for step in range(num_steps):
        if rescale_buffer and step > 0:
            velocity = velocity * velocity_buffer_rescale(schedule[step - 1], schedule[step])
        theta, velocity = momentum_step(convention, theta, velocity, grad_fn(theta),
                                        lr=float(schedule[step]), momentum=momentum)
        path.append(theta.copy())
    return np.asarray(path)
