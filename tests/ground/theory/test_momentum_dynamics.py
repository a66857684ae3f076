"""The mean-square edge and the acceleration closed forms (lesson 03)."""

import math

import numpy as np
import pytest

from edutools.ground.theory import momentum_dynamics as md


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9])
@pytest.mark.parametrize("ratio", [0.0, 0.1, 1.0, 30.0])
def test_mean_square_edge_is_where_the_second_moment_map_becomes_unstable(beta, ratio):
    edge = md.mean_square_edge(beta, 2.0, ratio * 4.0)  # m = 2, σ² = ratio·m²
    assert md.mean_square_radius(0.99 * edge, beta, 2.0, ratio * 4.0) < 1
    assert md.mean_square_radius(1.01 * edge, beta, 2.0, ratio * 4.0) > 1


def test_no_noise_gives_the_full_batch_edge_and_beta_zero_the_sgd_bound():
    assert md.mean_square_edge(0.5, 10.0, 0.0) == pytest.approx(2 * 1.5 / 10.0)
    for ratio in (0.0, 1.0, 100.0):
        assert md.effective_curvature_edge(0.0, ratio) == pytest.approx(2.0)
    assert md.effective_curvature_edge(0.9, 0.0) == pytest.approx(3.8)
    assert md.effective_curvature_edge(0.9, 1e9) == pytest.approx(0.2, rel=1e-6)


def test_second_moments_match_a_monte_carlo_estimate():
    rng = np.random.default_rng(0)
    lr, beta, m, var, steps = 0.3, 0.5, 1.0, 0.25, 30
    curv = m + math.sqrt(var) * rng.choice([-1.0, 1.0], size=(200_000, steps))
    prev = cur = np.ones(200_000)
    for t in range(steps):
        prev, cur = cur, (1 + beta - lr * curv[:, t]) * cur - beta * prev
    exact = md.second_moments(lr, beta, m, var, num_steps=steps)[-1]
    assert np.mean(cur**2) == pytest.approx(exact, rel=0.03)
    assert md.second_moment_after(lr, beta, m, var, num_steps=steps) == pytest.approx(exact)


def test_polyak_is_critically_damped_at_both_ends_and_beats_gd():
    rule, gd = md.polyak_heavy_ball(0.01, 1.0), md.optimal_gd(0.01, 1.0)
    assert rule.momentum == pytest.approx(((10 - 1) / (10 + 1)) ** 2)
    assert rule.lr == pytest.approx(4 / (1 + 0.1) ** 2)
    assert md.critical_momentum(rule.lr * 0.01) == pytest.approx(rule.momentum)
    assert float(md.worst_rate(rule.lr, rule.momentum, 0.01, 1.0)) == pytest.approx(rule.rate)
    assert gd.rate == pytest.approx(99 / 101) and gd.lr == pytest.approx(2 / 1.01)
    assert float(md.worst_rate(gd.lr, 0.0, 0.01, 1.0)) == pytest.approx(gd.rate)


def test_bad_input_names_the_value():
    with pytest.raises(ValueError, match="curvature_variance"):
        md.mean_square_edge(0.5, 1.0, -1.0)
    with pytest.raises(ValueError, match="largest"):
        md.optimal_gd(2.0, 1.0)
    with pytest.raises(ValueError, match="tolerance"):
        md.predicted_iterations(0.5, 2.0)
