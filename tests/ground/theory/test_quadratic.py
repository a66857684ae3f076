"""The quadratic model problem: iteration matrices, regimes, and torch's own optimizer."""

import numpy as np
import pytest

from edutools.ground import theory
from edutools.ground.theory.quadratic import (
    iteration_matrix,
    regime,
    run_quadratic,
    spectral_radius,
)


@pytest.mark.parametrize("momentum, nesterov", [(0.0, False), (0.5, False), (0.9, False),
                                                (0.5, True), (0.9, True)])
def test_spectral_radius_crosses_one_exactly_at_the_theory_edge(momentum, nesterov):
    lr = 0.1
    edge = (theory.momentum_edge(lr, momentum, nesterov=nesterov) if momentum
            else theory.gd_edge(lr))
    assert spectral_radius(lr * edge * 0.999, momentum, nesterov=nesterov) < 1
    assert spectral_radius(lr * edge * 1.001, momentum, nesterov=nesterov) > 1


def test_spectral_radius_matches_the_iteration_matrix():
    for curvature, momentum, nesterov in [(3.0, 0.0, False), (7.0, 0.6, False), (4.0, 0.8, True)]:
        matrix = iteration_matrix(curvature, lr=0.2, momentum=momentum, nesterov=nesterov)
        expected = max(abs(np.linalg.eigvals(matrix)))
        assert spectral_radius(0.2 * curvature, momentum, nesterov=nesterov) == pytest.approx(
            expected)


def test_gd_regimes_per_direction():
    assert regime(0.5, lr=1.0) == "converges"      # 1 − ηλ = 0.5
    assert regime(1.5, lr=1.0) == "oscillates"     # 1 − ηλ = −0.5
    assert regime(2.5, lr=1.0) == "diverges"       # |1 − ηλ| = 1.5
    assert regime(0.5, lr=1.0, momentum=0.9) == "oscillates"  # complex roots: a spiral


@pytest.mark.parametrize("momentum, nesterov", [(0.0, False), (0.7, False), (0.7, True)])
def test_torch_trajectory_follows_the_iteration_matrix(momentum, nesterov):
    curvatures, lr, steps = [0.5, 4.0, 9.0], 0.2, 6
    run = run_quadratic(curvatures, lr=lr, momentum=momentum, nesterov=nesterov, num_steps=steps)
    for index, curvature in enumerate(curvatures):
        matrix = iteration_matrix(curvature, lr=lr, momentum=momentum, nesterov=nesterov)
        state = np.array([1.0, 0.0])
        for step in range(1, steps + 1):
            state = matrix @ state
            assert run.positions[step, index] == pytest.approx(state[0], rel=1e-9, abs=1e-12)


def test_run_quadratic_diverges_above_the_edge_only():
    lr = 0.1
    below = run_quadratic([0.95 * theory.gd_edge(lr)], lr=lr, num_steps=300)
    above = run_quadratic([1.05 * theory.gd_edge(lr)], lr=lr, num_steps=300)
    assert not below.diverged and above.diverged
    assert below.losses[-1] < below.losses[0]


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="curvatures"):
        run_quadratic([-1.0], lr=0.1, num_steps=3)
    with pytest.raises(ValueError, match="lr"):
        run_quadratic([1.0], lr=-0.1, num_steps=3)
    with pytest.raises(ValueError, match="momentum"):
        regime(1.0, lr=0.1, momentum=1.0)
    with pytest.raises(ValueError, match="start has shape"):
        run_quadratic([1.0, 2.0], lr=0.1, num_steps=3, start=[1.0])
