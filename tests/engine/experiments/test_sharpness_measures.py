"""Lesson 05's sharpness tables: density smoothing, bulk share, batch sharpness, ε-sharpness
against its first-order prediction, the perturbation estimate along checkpoints."""

import numpy as np
import pytest
import torch

from edutools.engine import sharpness
from edutools.engine.experiments import sharpness_measures as measures
from edutools.ground.models import cross_entropy, mlp


@pytest.fixture(scope="module")
def tiny():
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(64, 5, generator=generator, dtype=torch.float64)
    y = torch.randint(0, 3, (64,), generator=generator)
    return mlp([5, 6, 3], seed=0, dtype=torch.float64), X, y


def test_gaussian_density_integrates_to_one_and_peaks_at_the_eigenvalues():
    grid = np.linspace(-5, 15, 4001)
    density = measures.gaussian_density(np.array([0.0, 0.0, 10.0]), grid, 0.5)
    assert np.trapezoid(density, grid) == pytest.approx(1.0, rel=1e-4)
    at_zero, at_ten = density[np.argmin(abs(grid))], density[np.argmin(abs(grid - 10))]
    assert at_zero == pytest.approx(2 * at_ten)


def test_bulk_fraction_counts_weights_near_zero_and_nan_as_far():
    nodes = np.array([0.01, -0.02, 5.0, np.nan])
    weights = np.array([0.25, 0.25, 0.25, 0.25])
    assert measures.bulk_fraction(nodes, weights, 1.0) == pytest.approx(0.5)
    assert measures.bulk_fraction(nodes, weights, 0.1) == pytest.approx(0.0)


def test_batch_sharpness_table_full_batch_is_a_rayleigh_quotient(tiny):
    model, X, y = tiny
    table = measures.batch_sharpness_table(model, cross_entropy, X, y, batch_sizes=[8, len(X)],
                                           num_batches=5)
    assert list(table.index) == [8, 64] and table.loc[64, "standard error"] == 0.0
    lam = sharpness.lambda_max(model, cross_entropy, X, y, tol=1e-10)
    assert table.loc[64, "batch sharpness"] <= lam * (1 + 1e-8)


def test_eps_sharpness_table_first_order_term(tiny):
    model, X, y = tiny
    table = measures.eps_sharpness_table(model, cross_entropy, X, y, eps_values=(1e-3, 5e-4))
    g = sharpness.flat_grad(model, cross_entropy, X, y)
    theta = sharpness.flatten_params(model)
    with torch.no_grad():
        loss = float(cross_entropy(model(X), y))
    expected = 100 * 1e-3 * float((g.abs() * (theta.abs() + 1)).sum()) / (1 + loss)
    assert table.loc[1e-3, "first-order prediction (%)"] == pytest.approx(expected)
    assert table.loc[5e-4, "first-order prediction (%)"] == pytest.approx(expected / 2)
    assert (table["ε-sharpness (%)"] > 0).all() and (table["loss evaluations"] > 0).all()


def test_perturbation_along_one_value_per_checkpoint_model_untouched(tiny):
    model, X, y = tiny
    theta = sharpness.flatten_params(model)
    checkpoints = [(0, theta), (10, theta * 0.9)]
    values = measures.perturbation_along(model, cross_entropy, X, y, checkpoints, num_trials=2)
    assert values.shape == (2,) and np.all(values > 0)
    assert torch.equal(sharpness.flatten_params(model), theta)
    direct = sharpness.perturbation_sharpness(model, cross_entropy, X, y, num_trials=2, seed=0)
    assert values[0] == pytest.approx(direct.sharpness)


def test_perturbation_recipes_online_noise_grows_with_the_square_root_of_the_size(tiny):
    model, X, y = tiny
    table = measures.perturbation_recipes(model, cross_entropy, X, y, eps=1e-4, num_trials=20)
    assert list(table["entries"]) == [30, 6, 18, 3]
    # The mean norm of a Gaussian vector of n entries is close to √n (within 2/√n here).
    ratio = table["online: noise norm ÷ ε"] / table["√entries"]
    assert (abs(ratio - 1) < 2 / table["√entries"]).all()
    # Same draws, first order dominates at this ε: online = norm-ε value × ‖z‖ ≈ √n.
    assert (abs(table["online ÷ norm ε"] / table["√entries"] - 1) < 0.5).all()
