"""edutools.engine.sharpness: Hutchinson trace, spectral density, batch sharpness and
perturbation-based sharpness against independent references.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from edutools.engine import sharpness as S
from tests.engine.sharpness_reference import (
    assert_untouched,
    make_problem,
    mse_half,
    reference_grad,
    reference_hessian,
    snapshot,
)

# torch.func.jvp loads torch's forward-AD decompositions through torch.jit.script, which warns.
pytestmark = pytest.mark.filterwarnings(
    "ignore:`torch.jit.script` is deprecated:DeprecationWarning"
)


@pytest.fixture(scope="module", params=["mse", "ce"])
def problem(request):
    return make_problem(request.param)


# --- trace, density ---------------------------------------------------------------------------


def test_hutchinson_trace_within_three_standard_errors(problem):
    result = S.hessian_trace(problem.model, problem.loss_fn, problem.X, problem.y,
                             num_samples=300, seed=0)
    exact = float(torch.trace(problem.hessian))
    assert result.num_samples == 300 and result.samples.shape == (300,)
    assert result.standard_error > 0
    assert abs(result.trace - exact) <= 3 * result.standard_error
    again = S.hessian_trace(problem.model, problem.loss_fn, problem.X, problem.y,
                            num_samples=300, seed=0)
    assert again.trace == result.trace


def test_spectral_density_quadrature(problem):
    n = problem.hessian.shape[0]
    result = S.spectral_density(problem.model, problem.loss_fn, problem.X, problem.y,
                                num_probes=6, lanczos_steps=40, seed=0)
    assert result.nodes.shape == (6, 40) and result.weights.shape == (6, 40)
    assert result.num_params == n and result.num_hvps <= 240
    np.testing.assert_allclose(result.weights.sum(axis=1), 1.0, rtol=1e-10)
    # 40 Lanczos steps resolve the extreme eigenvalues of this 147-dimensional Hessian.
    top_nodes = np.nanmax(result.nodes, axis=1)
    np.testing.assert_allclose(top_nodes, problem.eigenvalues[0], rtol=1e-6)
    lowest, highest = problem.eigenvalues[-1], problem.eigenvalues[0]
    valid = result.weights > 0
    assert np.all(result.nodes[valid] >= lowest - 1e-8)
    assert np.all(result.nodes[valid] <= highest + 1e-8)
    # First moment: Σ w θ = qᵀHq per probe, so the mean estimates tr(H)/n.
    first_moment = (np.nan_to_num(result.nodes) * result.weights).sum(axis=1)
    assert abs(first_moment.mean() - float(torch.trace(problem.hessian)) / n) <= (
        4 * first_moment.std(ddof=1) / np.sqrt(6)
    )
    grid = np.linspace(lowest - 1.0, highest + 1.0, 4001)
    density = result.density(grid, sigma=0.01)
    assert density.shape == grid.shape and np.all(density >= 0)
    assert np.trapezoid(density, grid) == pytest.approx(1.0, abs=1e-3)


def test_spectral_density_survives_an_exhausted_krylov_space():
    # A linear model with MSE on 3 samples has a Hessian of rank 3 per output block: Lanczos runs
    # out of directions early, and the quadrature is then exact on fewer nodes.
    torch.manual_seed(0)
    model = nn.Linear(4, 1).double()
    X = torch.randn(3, 4, dtype=torch.float64)
    y = torch.randn(3, 1, dtype=torch.float64)
    result = S.spectral_density(model, mse_half, X, y, num_probes=2, lanczos_steps=5)
    np.testing.assert_allclose(result.weights.sum(axis=1), 1.0, rtol=1e-8)
    assert np.all(np.isfinite(result.density(np.linspace(-1, 5, 50), sigma=0.1)))


# --- batch sharpness --------------------------------------------------------------------------


@pytest.mark.parametrize("vectorize", [True, False])
def test_batch_sharpness_equals_direct_computation(problem, vectorize):
    before = snapshot(problem.model)
    result = S.batch_sharpness(problem.model, problem.loss_fn, problem.X, problem.y,
                               batch_size=8, num_batches=12, seed=3, vectorize=vectorize)
    assert result.batch_indices.shape == (12, 8)
    # The documented sampling rule, replicated.
    generator = torch.Generator().manual_seed(3)
    for b in range(12):
        expected = torch.randperm(len(problem.X), generator=generator)[:8].numpy()
        np.testing.assert_array_equal(result.batch_indices[b], expected)
    direct = []
    for indices in result.batch_indices:
        Xb, yb = problem.X[indices], problem.y[indices]
        hessian = reference_hessian(problem.model, problem.loss_fn, Xb, yb)
        g = reference_grad(problem.model, problem.loss_fn, Xb, yb)
        direct.append(float(g @ hessian @ g / (g @ g)))
    np.testing.assert_allclose(result.values, direct, rtol=1e-9)
    assert result.mean == pytest.approx(np.mean(direct), rel=1e-9)
    assert result.standard_error == pytest.approx(np.std(direct, ddof=1) / np.sqrt(12), rel=1e-9)
    assert_untouched(problem.model, before)


def test_full_batch_sharpness_is_the_gradient_rayleigh_quotient(problem):
    n = len(problem.X)
    result = S.batch_sharpness(problem.model, problem.loss_fn, problem.X, problem.y,
                               batch_size=n, num_batches=2)
    g = reference_grad(problem.model, problem.loss_fn, problem.X, problem.y)
    expected = float(g @ problem.hessian @ g / (g @ g))
    np.testing.assert_allclose(result.values, expected, rtol=1e-9)
    assert expected <= problem.eigenvalues[0]


# --- perturbation-based sharpness -------------------------------------------------------------


def test_eps_sharpness_is_nonnegative_and_grows_with_eps(problem):
    before = snapshot(problem.model)
    values = []
    for eps in (1e-4, 5e-4, 1e-3, 5e-3):
        result = S.eps_sharpness(problem.model, problem.loss_fn, problem.X, problem.y, eps=eps)
        assert result.sharpness >= 0 and result.max_loss >= result.loss
        assert result.sharpness == pytest.approx(
            100 * (result.max_loss - result.loss) / (1 + result.loss))
        values.append(result.sharpness)
    assert all(a < b for a, b in zip(values, values[1:], strict=False))
    assert_untouched(problem.model, before)


def test_eps_sharpness_is_the_box_maximum_on_a_quadratic():
    # L(θ) = 0.5 Σ c_i θ_i² (a linear "model" whose output is its parameter vector): at θ = 0 the
    # maximum over the box |δ_i| ≤ ε is at a corner, 0.5 ε² Σ c_i, which L-BFGS-B must find.
    class Quadratic(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.theta = nn.Parameter(torch.zeros(4, dtype=torch.float64))

        def forward(self, X: torch.Tensor) -> torch.Tensor:
            return X * self.theta

    curvatures = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)

    def loss_fn(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return 0.5 * (curvatures * outputs[0] ** 2).sum() + 0 * targets.sum()

    X = torch.ones(1, 4, dtype=torch.float64)
    y = torch.zeros(1, 4, dtype=torch.float64)
    result = S.eps_sharpness(Quadratic(), loss_fn, X, y, eps=0.1, num_random_starts=2)
    assert result.max_loss == pytest.approx(0.5 * 0.1**2 * 10.0, rel=1e-6)
    assert result.num_starts == 3


def test_perturbation_sharpness_is_a_first_order_quantity(problem):
    before = snapshot(problem.model)
    eps = 1e-3
    result = S.perturbation_sharpness(problem.model, problem.loss_fn, problem.X, problem.y,
                                      eps=eps, num_trials=5, seed=0)
    names = [name for name, _ in problem.model.named_parameters()]
    assert result.tensor_names == tuple(names)
    assert result.values.shape == (5, len(names))
    assert result.sharpness == result.values.max()
    # Taylor: |ΔL|/eps ≤ ‖g_t‖ + (eps/2)·max|λ| + O(eps²) for a perturbation of norm eps.
    gradient = reference_grad(problem.model, problem.loss_fn, problem.X, problem.y)
    blocks = S.unflatten_params(problem.model, gradient)
    bound = np.array([float(torch.linalg.vector_norm(b)) for b in blocks])
    bound += 0.5 * eps * np.abs(problem.eigenvalues).max() + 1e-6
    assert np.all(result.values <= bound[None, :])
    assert_untouched(problem.model, before)
