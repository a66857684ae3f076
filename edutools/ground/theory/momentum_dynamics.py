"""Two closed-form stories of one recursion, x_{t+1} = (1 + β − ηh)·x_t − β·x_{t−1} (lesson 03).

Heavy ball (``torch.optim.SGD``: ``v ← βv + g``, ``θ ← θ − ηv``) along one eigen-direction of
curvature h is this recursion.

* **Mean-square stability** (the course's own derivation): if h is drawn afresh each step with
  mean m and variance σ², the second moments (E[x_t²], E[x_t x_{t−1}], E[x_{t−1}²]) follow an
  exact 3×3 linear map (:func:`second_moment_matrix`); it is stable iff
  2/η > m/(1+β) + σ²/((1−β)·m) (:func:`mean_square_edge`). Noise-free, that is ηm < 2(1+β), the
  full-batch edge; noise-dominated, it bounds η·E[h²]/E[h] by 2(1−β), plain SGD's bound at the
  effective step η/(1−β).
* **Acceleration** (Polyak 1964): on a quadratic with curvatures in [μ, L] (κ = L/μ), GD at its
  best step 2/(L+μ) contracts by (κ−1)/(κ+1) per step; heavy ball with η = 4/(√L+√μ)² and
  β = ((√κ−1)/(√κ+1))² (critical damping at both ends) by (√κ−1)/(√κ+1)
  (:func:`polyak_heavy_ball`, :func:`optimal_gd`): ≈ √κ times fewer steps.

Pure NumPy; no training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edutools.ground.theory.quadratic import spectral_radius
from edutools.ground.validation import check_lr, check_momentum, check_positive, check_positive_int

__all__ = ["StepRule", "critical_momentum", "effective_curvature_edge", "mean_square_edge",
           "mean_square_radius", "optimal_gd", "polyak_heavy_ball", "predicted_iterations",
           "second_moment_after", "second_moment_matrix", "second_moments", "worst_rate"]


def _check_noise(mean_curvature: float, curvature_variance: float) -> tuple[float, float]:
    mean = check_positive(mean_curvature, name="mean_curvature")
    if not (math.isfinite(curvature_variance) and curvature_variance >= 0):
        raise ValueError(f"curvature_variance must be a finite number ≥ 0, got "
                         f"{curvature_variance!r}")
    return mean, float(curvature_variance)


def second_moment_matrix(lr: float, momentum: float, mean_curvature: float,
                         curvature_variance: float) -> np.ndarray:
    """The exact 3×3 map M with s_{t+1} = M s_t, s_t = (E[x_t²], E[x_t x_{t−1}], E[x_{t−1}²]).

    With A_t = 1 + β − ηh_t independent of (x_t, x_{t−1}): mean a = 1 + β − ηm and
    E[A²] = a² + η²σ², so E[x_{t+1}²] = E[A²]·E[x_t²] − 2βa·E[x_t x_{t−1}] + β²·E[x_{t−1}²] and
    E[x_{t+1}x_t] = a·E[x_t²] − β·E[x_t x_{t−1}].
    """
    lr, beta = check_lr(lr), check_momentum(momentum)
    mean, variance = _check_noise(mean_curvature, curvature_variance)
    a = 1 + beta - lr * mean
    second = a * a + lr * lr * variance
    return np.array([[second, -2 * beta * a, beta * beta], [a, -beta, 0.0], [1.0, 0.0, 0.0]])


def mean_square_radius(lr: float, momentum: float, mean_curvature: float,
                       curvature_variance: float) -> float:
    """Spectral radius of :func:`second_moment_matrix`: E[x_t²] grows iff it exceeds 1."""
    matrix = second_moment_matrix(lr, momentum, mean_curvature, curvature_variance)
    return float(np.abs(np.linalg.eigvals(matrix)).max())


def second_moments(lr: float, momentum: float, mean_curvature: float, curvature_variance: float,
                   *, num_steps: int, start: float = 1.0) -> np.ndarray:
    """E[x_t²] for t = 0..num_steps from x_0 = x_{−1} = ``start`` by the exact recursion (no
    sampling), shape (num_steps + 1,)."""
    num_steps = check_positive_int(num_steps, name="num_steps")
    matrix = second_moment_matrix(lr, momentum, mean_curvature, curvature_variance)
    state = np.array([start * start] * 3, dtype=float)
    out = [state[0]]
    for _ in range(num_steps):
        state = matrix @ state
        out.append(state[0])
    return np.array(out)


def second_moment_after(lr: float, momentum: float, mean_curvature: float,
                        curvature_variance: float, *, num_steps: int, start: float = 1.0) -> float:
    """E[x_T²] after T = ``num_steps`` steps of the exact recursion, by repeated squaring of the
    3×3 map (so T = 10⁷ costs ~25 products); inf once it overflows."""
    num_steps = check_positive_int(num_steps, name="num_steps")
    matrix = second_moment_matrix(lr, momentum, mean_curvature, curvature_variance)
    with np.errstate(over="ignore", invalid="ignore"):
        value = (np.linalg.matrix_power(matrix, num_steps) @ np.full(3, start * start))[0]
    return float(value) if np.isfinite(value) else math.inf


def mean_square_edge(momentum: float, mean_curvature: float, curvature_variance: float) -> float:
    """Largest stable step size: η* = 2 / (m/(1+β) + σ²/((1−β)·m)).

    Where M has eigenvalue 1, b = a·E[x²]/(1+β) and the first row gives
    (1+β)² − a² = η²σ²(1+β)/(1−β); with a = 1 + β − ηm this is the formula.
    """
    beta = check_momentum(momentum)
    mean, variance = _check_noise(mean_curvature, curvature_variance)
    return 2.0 / (mean / (1 + beta) + variance / ((1 - beta) * mean))


def effective_curvature_edge(momentum: float, noise_ratio: float) -> float:
    """η·E[h²]/E[h] at the mean-square edge, for noise ratio s = σ²/m².

    Equals 2(1+s)/(1/(1+β) + s/(1−β)): 2(1+β) without noise (s = 0), falling to 2(1−β) as the
    noise dominates (s → ∞). At β = 0 it is 2 for every s: plain SGD's η·E[h²]/E[h] < 2.
    """
    beta = check_momentum(momentum)
    if not (noise_ratio >= 0 and math.isfinite(noise_ratio)):
        raise ValueError(f"noise_ratio must be a finite number ≥ 0, got {noise_ratio!r}")
    return 2 * (1 + noise_ratio) / (1 / (1 + beta) + noise_ratio / (1 - beta))


@dataclass(frozen=True)
class StepRule:
    """A step size and momentum with its worst-case contraction factor per step on [μ, L].

    Attributes:
        lr: η; momentum: β (0 for GD); rate: the largest spectral radius over [μ, L].
    """

    lr: float
    momentum: float
    rate: float


def _check_interval(smallest: float, largest: float) -> tuple[float, float]:
    mu, big_l = check_positive(smallest, name="smallest"), check_positive(largest, name="largest")
    if big_l < mu:
        raise ValueError(f"largest must be ≥ smallest, got smallest={smallest!r}, "
                         f"largest={largest!r}")
    return mu, big_l


def optimal_gd(smallest: float, largest: float) -> StepRule:
    """GD's best fixed step on curvatures [μ, L]: η = 2/(L+μ), rate (κ−1)/(κ+1)."""
    mu, big_l = _check_interval(smallest, largest)
    kappa = big_l / mu
    return StepRule(lr=2 / (big_l + mu), momentum=0.0, rate=(kappa - 1) / (kappa + 1))


def polyak_heavy_ball(smallest: float, largest: float) -> StepRule:
    """Polyak's heavy ball on [μ, L]: η = 4/(√L+√μ)², β* = ((√κ−1)/(√κ+1))², rate √β*."""
    mu, big_l = _check_interval(smallest, largest)
    root = math.sqrt(big_l / mu)
    rate = (root - 1) / (root + 1)
    return StepRule(lr=4 / (math.sqrt(big_l) + math.sqrt(mu)) ** 2, momentum=rate * rate,
                    rate=rate)


def critical_momentum(step_curvature: float) -> float:
    """β at which the roots of z² − (1+β−h)z + β coincide (critical damping), for h = ηλ ≤ 1:
    (1+β−h)² = 4β ⇔ β = (1 − √h)²."""
    if not 0 < step_curvature <= 1:
        raise ValueError(f"step_curvature η·λ must be in (0, 1], got {step_curvature!r}")
    return (1 - math.sqrt(step_curvature)) ** 2


def worst_rate(lr: float | np.ndarray, momentum: float | np.ndarray, smallest: float,
               largest: float) -> np.ndarray:
    """Largest spectral radius of heavy ball over curvatures in [μ, L] (broadcast over η, β).

    For fixed β the radius is √β between the critical points and grows away from them, so the
    maximum sits at an end of the interval.
    """
    mu, big_l = _check_interval(smallest, largest)
    lr, beta = np.asarray(lr, float), np.asarray(momentum, float)
    return np.maximum(spectral_radius(lr * mu, beta), spectral_radius(lr * big_l, beta))


def predicted_iterations(rate: float | np.ndarray, tolerance: float) -> np.ndarray:
    """Steps for rate^t to fall below ``tolerance``: log(tol)/log(rate) (inf when rate ≥ 1)."""
    if not 0 < tolerance < 1:
        raise ValueError(f"tolerance must be in (0, 1), got {tolerance!r}")
    rate = np.asarray(rate, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(rate < 1, math.log(tolerance) / np.log(np.clip(rate, 1e-300, None)),
                        np.inf)
