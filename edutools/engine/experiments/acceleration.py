"""Momentum as acceleration (lesson 03): iterations to a tolerance, GD vs heavy ball over (η, β).

On f(θ) = ½ Σ_i λ_i θ_i² with curvatures from μ = 1/κ to L = 1, every eigen-direction follows
θ_{t+1} = (1+β−ηλ)θ_t − βθ_{t−1} (heavy ball, ``torch.optim.SGD``'s convention, from zero
velocity). :func:`run_acceleration` (the κ slider's run function; :data:`SLIDER_GRID`) returns

* the closed-form map of iterations log(tol)/log(worst rate) over (ηL, β) (instant);
* the same count *measured* by running the recursion on a coarse grid of (ηL, β);
* the error curves of GD at its best step and of Polyak's heavy ball, run to the tolerance.

The same recursion gives the edge: the map is infinite where ηL ≥ 2(1+β). Engine layer: nothing
here draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edutools.ground.theory.momentum_dynamics import (
    StepRule,
    optimal_gd,
    polyak_heavy_ball,
    predicted_iterations,
    worst_rate,
)
from edutools.ground.validation import check_positive, check_positive_int

__all__ = ["AccelerationMap", "SLIDER_GRID", "measure_iterations", "run_acceleration"]

#: Values of the condition-number slider.
SLIDER_GRID: dict[str, tuple[float, ...]] = {"condition_number": (10.0, 30.0, 100.0, 300.0,
                                                                  1000.0)}
NUM_DIRECTIONS = 8  # curvatures geometrically spaced over [1/κ, 1], both ends included


def _curvatures(condition_number: float) -> np.ndarray:
    return np.geomspace(1.0 / condition_number, 1.0, NUM_DIRECTIONS)


def measure_iterations(lr: np.ndarray, momentum: np.ndarray, curvatures: np.ndarray, *,
                       tolerance: float, max_iterations: int) -> np.ndarray:
    """Steps after which max_i |θ_i| stays below ``tolerance`` (θ_0 = 1, zero velocity), by
    running the recursion; ``inf`` where it is still above at ``max_iterations``.

    ``lr`` and ``momentum`` broadcast to one shape S; the result has shape S.
    """
    max_iterations = check_positive_int(max_iterations, name="max_iterations")
    lr, beta = np.broadcast_arrays(np.asarray(lr, float), np.asarray(momentum, float))
    h = lr[..., None] * curvatures  # shape S + (d,)
    beta = beta[..., None]
    previous, current = np.ones_like(h), np.ones_like(h)
    last_above = np.zeros(lr.shape)
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(1, max_iterations + 1):
            previous, current = current, (1 + beta - h) * current - beta * previous
            above = ~(np.abs(current).max(axis=-1) < tolerance)  # NaN/inf count as above
            last_above[above] = t
    return np.where(last_above >= max_iterations, np.inf, last_above + 1)


def _run_to_tolerance(rule: StepRule, curvatures: np.ndarray,
                      tolerance: float) -> tuple[np.ndarray, int]:
    """Error curve max_i |θ_i| of one rule until it stays below ``tolerance``, and that step.

    Runs up to 4× the closed-form count (+ 20): the critically damped double root of Polyak's
    setting costs a factor t in front of rate^t, never more than that here.
    """
    num_steps = int(4 * predicted_iterations(rule.rate, tolerance)) + 20
    previous, current = np.ones_like(curvatures), np.ones_like(curvatures)
    errors = np.empty(num_steps + 1)
    errors[0] = 1.0
    h = rule.lr * curvatures
    for t in range(1, num_steps + 1):
        previous, current = current, (1 + rule.momentum - h) * current - rule.momentum * previous
        errors[t] = np.abs(current).max()
    above = np.flatnonzero(~(errors < tolerance))
    steps = int(above[-1]) + 1
    return errors[:steps + 1], steps


@dataclass(frozen=True, eq=False)
class AccelerationMap:
    """GD vs heavy ball on a quadratic with condition number κ (curvatures in [1/κ, 1]).

    Attributes:
        condition_number: κ; tolerance: the error to reach (from 1).
        step_curvature: ηL values, shape (n,); momenta: β values, shape (m,).
        predicted: closed-form iterations log(tol)/log(worst rate), shape (m, n) (inf: diverges).
        coarse_step_curvature, coarse_momenta: the coarse grid, shapes (p,), (q,).
        measured: iterations measured by running the recursion on it, shape (q, p).
        coarse_predicted: the closed form on the coarse grid, shape (q, p).
        gd, heavy_ball: GD at η = 2/(L+μ) and Polyak's heavy ball (:class:`StepRule`).
        gd_errors, heavy_ball_errors: max_i |θ_i| per step of each, run until below tolerance.
        gd_iterations, heavy_ball_iterations: steps each took (measured).
    """

    condition_number: float
    tolerance: float
    step_curvature: np.ndarray
    momenta: np.ndarray
    predicted: np.ndarray
    coarse_step_curvature: np.ndarray
    coarse_momenta: np.ndarray
    measured: np.ndarray
    coarse_predicted: np.ndarray
    gd: StepRule
    heavy_ball: StepRule
    gd_errors: np.ndarray
    heavy_ball_errors: np.ndarray
    gd_iterations: int
    heavy_ball_iterations: int

    @property
    def speedup(self) -> float:
        """Measured GD iterations / heavy-ball iterations (closed form: ≈ √κ)."""
        return self.gd_iterations / self.heavy_ball_iterations


def run_acceleration(*, condition_number: float, tolerance: float = 1e-6, resolution: int = 121,
                     coarse: int = 13, max_iterations: int = 3000) -> AccelerationMap:
    """The (ηL, β) map of iterations to ``tolerance`` for condition number κ (see the module).

    ``resolution``: points per axis of the closed-form map (ηL ∈ (0, 4], β ∈ [0, 0.99]);
    ``coarse``: per axis of the measured grid (run for at most ``max_iterations`` steps).
    About 0.1 s for κ ≤ 1000.
    """
    kappa = check_positive(condition_number, name="condition_number")
    if kappa < 1:
        raise ValueError(f"condition_number must be ≥ 1, got {condition_number!r}")
    curvatures = _curvatures(kappa)
    step_curvature = np.linspace(4.0 / resolution, 4.0, resolution)
    momenta = np.linspace(0.0, 0.99, resolution)
    grid_h, grid_beta = np.meshgrid(step_curvature, momenta)
    predicted = predicted_iterations(worst_rate(grid_h, grid_beta, 1 / kappa, 1.0), tolerance)
    coarse_h = np.linspace(0.1, 3.9, coarse)
    coarse_beta = np.linspace(0.0, 0.96, coarse)
    coarse_grid_h, coarse_grid_beta = np.meshgrid(coarse_h, coarse_beta)
    measured = measure_iterations(coarse_grid_h, coarse_grid_beta, curvatures,
                                  tolerance=tolerance, max_iterations=max_iterations)
    coarse_predicted = predicted_iterations(
        worst_rate(coarse_grid_h, coarse_grid_beta, 1 / kappa, 1.0), tolerance)
    gd, heavy_ball = optimal_gd(1 / kappa, 1.0), polyak_heavy_ball(1 / kappa, 1.0)
    gd_errors, gd_steps = _run_to_tolerance(gd, curvatures, tolerance)
    heavy_ball_errors, hb_steps = _run_to_tolerance(heavy_ball, curvatures, tolerance)
    return AccelerationMap(
        condition_number=kappa, tolerance=tolerance, step_curvature=step_curvature,
        momenta=momenta, predicted=predicted, coarse_step_curvature=coarse_h,
        coarse_momenta=coarse_beta, measured=measured, coarse_predicted=coarse_predicted,
        gd=gd, heavy_ball=heavy_ball, gd_errors=gd_errors,
        heavy_ball_errors=heavy_ball_errors, gd_iterations=gd_steps,
        heavy_ball_iterations=hb_steps)
