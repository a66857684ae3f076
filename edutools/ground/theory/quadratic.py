"""Gradient descent, heavy ball and Nesterov on a quadratic — the model problem of every edge.

On f(θ) = ½ Σ_i λ_i θ_i² each eigen-direction evolves on its own: a linear iteration whose
matrix depends only on η·λ_i and β. The direction converges iff that matrix's spectral radius
is below 1, which gives the edges of :mod:`edutools.ground.theory.edges`: η·λ < 2 (GD), 2(1+β)
(heavy ball), (2+2β)/(1+2β) (Nesterov). Momentum follows ``torch.optim.SGD``: ``v ← βv + g``,
``θ ← θ − ηv``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from edutools.ground.validation import check_lr, check_momentum, check_positive_int

Regime = Literal["converges", "oscillates", "diverges"]


def iteration_matrix(curvature: float, *, lr: float, momentum: float = 0.0,
                     nesterov: bool = False) -> np.ndarray:
    """2×2 matrix M with (θ_{t+1}, v_{t+1}) = M (θ_t, v_t) along a direction of curvature λ.

    Heavy ball: v' = βv + λθ, θ' = θ − ηv'. Nesterov (PyTorch): θ' = θ − η(λθ + βv').
    """
    lr, momentum = check_lr(lr), check_momentum(momentum)
    h, beta = lr * curvature, momentum
    if nesterov:
        return np.array([[1 - h * (1 + beta), -lr * beta**2], [curvature, beta]])
    return np.array([[1 - h, -lr * beta], [curvature, beta]])


def _roots(step_curvature: np.ndarray, momentum: np.ndarray, nesterov: bool) -> np.ndarray:
    # Characteristic polynomial z² − t z + d of the iteration matrix, with h = η·λ.
    h, beta = np.asarray(step_curvature, float), np.asarray(momentum, float)
    if nesterov:
        trace, det = 1 + beta - h * (1 + beta), beta * (1 - h)
    else:
        trace, det = 1 + beta - h, beta + 0 * h
    disc = np.sqrt((trace**2 - 4 * det).astype(complex))
    return np.stack([(trace + disc) / 2, (trace - disc) / 2])


def spectral_radius(step_curvature: float | np.ndarray, momentum: float | np.ndarray = 0.0, *,
                    nesterov: bool = False) -> np.ndarray:
    """Per-step contraction factor as a function of h = η·λ and β (broadcast over arrays).

    Below 1: the direction converges (the error shrinks by this factor per step, asymptotically);
    above 1: it diverges. For plain GD (β = 0) it equals |1 − h|.
    """
    return np.abs(_roots(step_curvature, momentum, nesterov)).max(axis=0)


def regime(curvature: float, *, lr: float, momentum: float = 0.0,
           nesterov: bool = False) -> Regime:
    """How one eigen-direction behaves: ``converges`` (monotonically), ``oscillates`` (converges
    while flipping sign or spiralling), or ``diverges`` (spectral radius ≥ 1)."""
    lr, momentum = check_lr(lr), check_momentum(momentum)
    roots = _roots(np.asarray(lr * curvature), np.asarray(momentum), nesterov)
    dominant = roots[np.argmax(np.abs(roots))]
    if np.abs(dominant) >= 1 - 1e-12:
        return "diverges"
    if abs(dominant.imag) > 1e-12 or dominant.real < 0:
        return "oscillates"
    return "converges"


@dataclass(frozen=True)
class QuadraticRun:
    """A trajectory on f(θ) = ½ Σ λ_i θ_i².

    Attributes:
        curvatures: λ_i, shape (d,).
        positions: θ_t, shape (num_steps + 1, d), starting at θ_0.
        losses: f(θ_t), shape (num_steps + 1,).
        lr, momentum, nesterov: the step rule.
    """

    curvatures: np.ndarray
    positions: np.ndarray
    losses: np.ndarray
    lr: float
    momentum: float
    nesterov: bool

    @property
    def diverged(self) -> bool:
        """True if the final loss exceeds the initial one by more than 1000×, or is not finite."""
        final = self.losses[-1]
        return not np.isfinite(final) or final > 1e3 * self.losses[0]


def run_quadratic(curvatures: Sequence[float], *, lr: float, num_steps: int,
                  momentum: float = 0.0, nesterov: bool = False,
                  start: Sequence[float] | None = None) -> QuadraticRun:
    """Minimise ½ Σ λ_i θ_i² with ``torch.optim.SGD`` itself (so the convention is PyTorch's).

    Args:
        curvatures: the eigenvalues λ_i (≥ 0), one per direction.
        lr, momentum, nesterov: the step rule.
        num_steps: number of optimizer steps.
        start: θ_0 (default: all ones).
    """
    lr, momentum = check_lr(lr), check_momentum(momentum)
    num_steps = check_positive_int(num_steps, name="num_steps")
    lambdas = torch.as_tensor(np.asarray(curvatures, dtype=float))
    if lambdas.ndim != 1 or len(lambdas) == 0 or bool((lambdas < 0).any()):
        raise ValueError(f"curvatures must be a non-empty list of numbers ≥ 0, got {curvatures!r}")
    if nesterov and momentum == 0:
        raise ValueError("nesterov=True needs momentum > 0, got momentum=0")
    theta0 = torch.ones_like(lambdas) if start is None else torch.as_tensor(
        np.asarray(start, dtype=float))
    if theta0.shape != lambdas.shape:
        raise ValueError(f"start has shape {tuple(theta0.shape)}, "
                         f"curvatures {tuple(lambdas.shape)}")
    theta = theta0.clone().requires_grad_(True)
    optimizer = torch.optim.SGD([theta], lr=lr, momentum=momentum, nesterov=nesterov)
    positions = [theta.detach().clone()]
    for _ in range(num_steps):
        optimizer.zero_grad()
        (0.5 * (lambdas * theta**2).sum()).backward()
        optimizer.step()
        positions.append(theta.detach().clone())
    path = torch.stack(positions).numpy()
    with np.errstate(over="ignore", invalid="ignore"):
        losses = 0.5 * (path**2 * lambdas.numpy()).sum(axis=1)
    return QuadraticRun(curvatures=lambdas.numpy(), positions=path, losses=losses, lr=lr,
                        momentum=momentum, nesterov=nesterov)


@dataclass(frozen=True, eq=False)
class StabilityRegion:
    """Heavy-ball (or Nesterov) stability on a quadratic over a grid of (η·λ, β).

    Attributes:
        step_curvature: η·λ values, shape (n,) (x axis).
        momenta: β values, shape (m,) (y axis).
        radius: spectral radius of the iteration, shape (m, n); < 1 means the iteration converges
            and the value is the convergence factor per step.
        edge: the theory edge η·λ at each β, shape (m,) (``momentum_edge(1, β)``).
        nesterov: which method.
    """

    step_curvature: np.ndarray
    momenta: np.ndarray
    radius: np.ndarray
    edge: np.ndarray
    nesterov: bool


def stability_region(*, nesterov: bool = False, max_step_curvature: float = 4.2,
                     max_momentum: float = 0.99, resolution: int = 300) -> StabilityRegion:
    """Spectral radius of heavy ball (or Nesterov) on a quadratic over η·λ ∈ [0, max] × β ∈
    [0, max_momentum], with the closed-form edge, for lesson 03's region plot."""
    from edutools.ground.theory.edges import momentum_edge

    check_positive_int(resolution, name="resolution")
    if not max_step_curvature > 0:
        raise ValueError(f"max_step_curvature must be > 0, got {max_step_curvature!r}")
    check_momentum(max_momentum, name="max_momentum")
    step_curvature = np.linspace(0.0, max_step_curvature, resolution)
    momenta = np.linspace(0.0, max_momentum, resolution)
    radius = spectral_radius(*np.meshgrid(step_curvature, momenta), nesterov=nesterov)
    edge = np.array([momentum_edge(1.0, beta, nesterov=nesterov) for beta in momenta])
    return StabilityRegion(step_curvature=step_curvature, momenta=momenta, radius=radius,
                           edge=edge, nesterov=nesterov)
