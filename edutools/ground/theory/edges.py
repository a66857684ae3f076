"""Closed-form stability edges: the curvature at which a step-size rule stops being stable.

Convention (the course's only one): heavy-ball momentum as in ``torch.optim.SGD``,
``v ← βv + g``, ``θ ← θ − ηv``. On a quadratic with curvature λ each method is stable iff
λ is below its edge; training drives λ_max (or batch sharpness) up to that edge and holds it there.
All edges are in units of curvature (1 / the loss's parameter units squared), i.e. the same
units as Hessian eigenvalues.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from edutools.ground.validation import check_bool, check_lr, check_momentum, check_rho


@dataclass(frozen=True)
class RunEdges:
    """Every momentum/GD edge of one set of step-size settings, checked once on construction.

    The one home of the formulas below; a figure builds one of these per run (a
    :class:`~edutools.engine.training.record.RunRecord`'s ``edges``) and reads its properties,
    so ``lr`` and ``momentum`` are checked once per run, not once per edge drawn.

    Attributes:
        lr: step size η (> 0).
        momentum: heavy-ball β in [0, 1).
        nesterov: ``torch.optim.SGD(nesterov=True)``'s rule instead of heavy ball.
    """

    lr: float
    momentum: float = 0.0
    nesterov: bool = False

    def __post_init__(self) -> None:
        check_lr(self.lr)
        check_momentum(self.momentum)
        check_bool(self.nesterov, name="nesterov")

    @property
    def gd(self) -> float:
        """Plain gradient descent's edge 2/η: GD on a quadratic converges iff η·λ < 2."""
        return 2.0 / self.lr

    @property
    def full_batch(self) -> float:
        """Full-batch edge of the momentum rule: heavy ball 2(1+β)/η, Nesterov
        (2+2β)/(η(1+2β)); both equal 2/η at β = 0."""
        if self.nesterov:
            return (2.0 + 2.0 * self.momentum) / (self.lr * (1.0 + 2.0 * self.momentum))
        return 2.0 * (1.0 + self.momentum) / self.lr

    @property
    def small_batch(self) -> float:
        """Small-batch plateau of batch sharpness under heavy ball, 2(1−β)/η (Andreyev et al.
        2026): below plain SGD's 2/η at the same η."""
        return 2.0 * (1.0 - self.momentum) / self.lr


def gd_edge(lr: float) -> float:
    """Edge of plain gradient descent: 2/η. GD on a quadratic converges iff η·λ < 2."""
    return RunEdges(lr=lr).gd


def momentum_edge(lr: float, momentum: float, nesterov: bool = False) -> float:
    """Full-batch edge with momentum β (PyTorch convention).

    Heavy ball: 2(1+β)/η. Nesterov (``nesterov=True`` in ``torch.optim.SGD``):
    (2+2β)/(η(1+2β)). At β = 0 both equal :func:`gd_edge`.
    """
    return RunEdges(lr=lr, momentum=momentum, nesterov=nesterov).full_batch


def small_batch_momentum_edge(lr: float, momentum: float) -> float:
    """Small-batch plateau of batch sharpness under SGD with heavy-ball momentum: 2(1−β)/η.

    Andreyev et al. 2026: with small batches momentum holds batch sharpness at this lower edge,
    below plain SGD's 2/η at the same η; with large batches it returns to :func:`momentum_edge`.
    """
    return RunEdges(lr=lr, momentum=momentum).small_batch


def effective_lr(lr: float, momentum: float) -> float:
    """Effective step size of heavy ball, η/(1−β): the step that a constant gradient settles to."""
    return check_lr(lr) / (1.0 - check_momentum(momentum))


def sam_edge(lr: float, rho: float, grad_norm: float) -> float:
    """Edge of SAM (Long & Bartlett 2023) at full-batch gradient norm ‖g‖.

    λ_SAM = (‖g‖/(2ρ))·(√(1 + 8ρ/(η‖g‖)) − 1). It lies below 2/η, tends to 2/η as ρ → 0 and
    shrinks as ‖g‖ → 0 (like √(2‖g‖/(ηρ))).
    """
    lr = check_lr(lr)
    rho = check_rho(rho)
    if not math.isfinite(grad_norm) or grad_norm < 0:
        raise ValueError(f"grad_norm must be a finite number ≥ 0, got {grad_norm!r}")
    if rho == 0:
        return 2.0 / lr
    if grad_norm == 0:
        return 0.0
    ratio = 8.0 * rho / (lr * grad_norm)
    # Rewritten as 4/(η(√(1+r)+1)) it stays accurate when ρ/‖g‖ is tiny.
    return 4.0 / (lr * (math.sqrt(1.0 + ratio) + 1.0))
