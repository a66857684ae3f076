"""Heavy ball and Nesterov on a quadratic (lesson 03, section 1): where each is stable.

Along an eigen-direction of curvature λ, heavy ball is the linear recursion
θ_{t+1} = (1+β−ηλ)θ_t − βθ_{t−1}: stable iff ηλ < 2(1+β); Nesterov iff ηλ < (2+2β)/(1+2β).

* :func:`run_quadratics` — GD, heavy ball and Nesterov on one direction (the slider's run
  function; :data:`SLIDER_GRID` holds its values);
* :func:`verify_quadratic_edges` — the computed stable region against the closed-form edges, and
  runs just inside / outside each edge;
* :func:`verify_mean_square_edge` — the mean-square edge with a random curvature against the
  exact second-moment recursion.

Engine layer: nothing here draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from edutools.ground.theory import edges, momentum_dynamics
from edutools.ground.theory.quadratic import QuadraticRun, regime, run_quadratic, spectral_radius

__all__ = ["QuadraticComparison", "SLIDER_GRID", "run_quadratics", "verify_mean_square_edge",
           "verify_quadratic_edges"]

#: Values of the quadratic panel's sliders.
SLIDER_GRID: dict[str, tuple[float, ...]] = {
    "lr": (0.05, 0.1, 0.2, 0.25, 0.3, 0.4, 0.5),
    "momentum": (0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99),
}


@dataclass(frozen=True)
class QuadraticComparison:
    """GD, heavy ball and Nesterov on f(θ) = ½λθ² from θ = 1, at one (η, β).

    Attributes:
        curvature: λ.
        lr, momentum: the step rule (heavy ball and Nesterov share β; GD has β = 0).
        runs: rule name (``"GD"``, ``"heavy ball"``, ``"Nesterov"``) → its trajectory.
        regimes: rule name → ``"converges"``, ``"oscillates"`` or ``"diverges"``.
    """

    curvature: float
    lr: float
    momentum: float
    runs: dict[str, QuadraticRun]
    regimes: dict[str, str]


def run_quadratics(*, lr: float, momentum: float, curvature: float = 8.0,
                   num_steps: int = 60) -> QuadraticComparison:
    """Run GD, heavy ball and Nesterov (``torch.optim.SGD``) on one direction of curvature λ.

    At β = 0 "Nesterov" is plain heavy ball with β = 0, i.e. GD.
    """
    rules = {"GD": dict(momentum=0.0), "heavy ball": dict(momentum=momentum),
             "Nesterov": dict(momentum=momentum, nesterov=momentum > 0)}
    runs = {name: run_quadratic([curvature], lr=lr, num_steps=num_steps, **rule)
            for name, rule in rules.items()}
    regimes = {name: regime(curvature, lr=lr, momentum=run.momentum, nesterov=run.nesterov)
               for name, run in runs.items()}
    return QuadraticComparison(curvature=float(curvature), lr=float(lr),
                               momentum=float(momentum), runs=runs, regimes=regimes)


def verify_quadratic_edges(*, step_curvatures: np.ndarray, momenta: np.ndarray,
                           checked_momenta: Sequence[float] = (0.0, 0.5, 0.9),
                           margin: float = 0.03, num_steps: int = 2000) -> pd.DataFrame:
    """Compare the stable region on an (ηλ, β) grid with the closed-form edges, and run inside /
    outside each edge.

    For heavy ball and Nesterov (one row each, column ``nesterov``): ``max boundary error`` is
    the largest |last stable ηλ on the grid − theory edge| over the β grid (to compare with the
    grid step); ``inside converges`` / ``outside diverges`` say whether runs at (1 ∓ ``margin``)
    × the edge, for every β in ``checked_momenta``, shrink the loss below 1e-6 of its start /
    blow up, within ``num_steps`` steps.
    """
    h, beta = np.meshgrid(step_curvatures, momenta)
    rows = []
    for nesterov in (False, True):
        stable = spectral_radius(h, beta, nesterov=nesterov) < 1
        last_stable = step_curvatures[stable.shape[1] - 1 - np.argmax(stable[:, ::-1], axis=1)]
        theory_edge = np.array([edges.momentum_edge(1.0, b, nesterov=nesterov) for b in momenta])
        inside_ok, outside_ok = True, True
        for b in checked_momenta:
            rule = dict(lr=1.0, momentum=b, nesterov=nesterov and b > 0, num_steps=num_steps)
            edge = edges.momentum_edge(1.0, b, nesterov=rule["nesterov"])
            inside = run_quadratic([(1 - margin) * edge], **rule)
            outside = run_quadratic([(1 + margin) * edge], **rule)
            inside_ok &= bool(inside.losses[-1] < 1e-6 * inside.losses[0])
            outside_ok &= outside.diverged
        rows.append({"nesterov": nesterov,
                     "max boundary error": float(np.max(np.abs(last_stable - theory_edge))),
                     "inside converges": inside_ok, "outside diverges": outside_ok})
    return pd.DataFrame(rows)


def verify_mean_square_edge(*, momenta: Sequence[float], noise_ratios: Sequence[float],
                            margin: float = 0.05, num_steps: int = 10**7) -> pd.DataFrame:
    """The course's mean-square edge η* = 2/(m/(1+β) + σ²/((1−β)m)) against the exact
    second-moment recursion of heavy ball with curvature drawn afresh each step (m = 1).

    One row per (β, s = σ²/m²): ``formula lr`` (η*), ``recursion lr`` (where the spectral radius
    of the 3×3 second-moment map crosses 1, by bisection to 1e-10), their ``relative error``;
    ``inside shrinks`` / ``outside grows``: E[x_T²] after T = ``num_steps`` steps at
    (1 ∓ margin)·η* below 1e-3 / above 1e3 of its start (the exact recursion, no sampling).
    """
    rows = []
    for beta in momenta:
        for ratio in noise_ratios:
            edge = momentum_dynamics.mean_square_edge(beta, 1.0, ratio)
            low, high = 0.0, 4.0 * edge
            while high - low > 1e-10 * edge:
                middle = (low + high) / 2
                stable = momentum_dynamics.mean_square_radius(middle, beta, 1.0, ratio) < 1
                low, high = (middle, high) if stable else (low, middle)
            inside, outside = (momentum_dynamics.second_moment_after(
                factor * edge, beta, 1.0, ratio, num_steps=num_steps)
                for factor in (1 - margin, 1 + margin))
            rows.append({"momentum": beta, "noise ratio σ²/m²": ratio, "formula lr": edge,
                         "recursion lr": low, "relative error": abs(low / edge - 1),
                         "inside shrinks": bool(inside < 1e-3), "outside grows": not outside < 1e3,
                         "η·E[h²]/E[h] at edge":
                             momentum_dynamics.effective_curvature_edge(beta, ratio)})
    return pd.DataFrame(rows)
