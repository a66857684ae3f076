"""Momentum as acceleration: measured iterations against the closed form."""

import numpy as np
import pytest

from edutools.engine.experiments import acceleration, heavy_ball


@pytest.mark.parametrize("kappa", [10.0, 1000.0])
def test_measured_iterations_follow_the_closed_form(kappa):
    result = acceleration.run_acceleration(condition_number=kappa, resolution=41, coarse=9)
    both = np.isfinite(result.measured) & np.isfinite(result.coarse_predicted)
    ratio = result.measured[both] / result.coarse_predicted[both]
    assert both.sum() > 10 and ratio.min() > 0.95 and ratio.max() < 1.3
    assert result.gd_iterations == pytest.approx(np.log(1e-6) / np.log(result.gd.rate), rel=0.01)
    assert 0.5 * np.sqrt(kappa) < result.speedup < 1.1 * np.sqrt(kappa)
    grid_h, grid_beta = np.meshgrid(result.coarse_step_curvature, result.coarse_momenta)
    assert (np.isinf(result.coarse_predicted) == (grid_h >= 2 * (1 + grid_beta))).all()


def test_measure_iterations_counts_steps_until_it_stays_below():
    steps = acceleration.measure_iterations(np.array([0.5]), np.array([0.0]), np.array([1.0]),
                                            tolerance=0.1, max_iterations=50)
    assert steps.tolist() == [4.0]  # 0.5⁴ = 0.0625 < 0.1 ≤ 0.5³
    diverging = acceleration.measure_iterations(np.array(3.0), np.array(0.0), np.array([1.0]),
                                                tolerance=0.1, max_iterations=50)
    assert np.isinf(diverging)


def test_mean_square_edge_check_finds_the_formula():
    table = heavy_ball.verify_mean_square_edge(momenta=(0.0, 0.9), noise_ratios=(0.01, 1.0, 100.0))
    assert table["relative error"].max() < 1e-8
    assert table["inside shrinks"].all() and table["outside grows"].all()
