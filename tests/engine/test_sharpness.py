"""Tests of edutools.engine.sharpness against dense Hessians built independently of the module:
Hessian-vector products, the operator and the eigen-solvers.

The reference Hessian comes from ``torch.autograd.functional.hessian`` of a
``torch.func.functional_call`` wrapper (:mod:`tests.engine.sharpness_reference`), never from
``edutools.engine.sharpness.exact_hessian``. Trace, density, batch and perturbation sharpness
are in ``test_sharpness_measures.py``; eval mode, restoration and argument checks in
``test_sharpness_checks.py``; the training meters in ``test_sharpness_meters.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edutools.engine import sharpness as S
from tests.engine.sharpness_reference import (
    assert_untouched,
    cross_entropy,
    make_data,
    make_mlp,
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


# --- HVPs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", S.HVP_METHODS)
def test_hvp_equals_dense_product_and_finite_differences(problem, method):
    generator = torch.Generator().manual_seed(3)
    v = torch.randn(problem.hessian.shape[0], generator=generator, dtype=torch.float64)
    product = S.hvp(problem.model, problem.loss_fn, problem.X, problem.y, v, method=method)
    dense = problem.hessian @ v
    torch.testing.assert_close(product, dense, rtol=1e-9, atol=1e-11)

    h = 1e-5
    base = S.flatten_params(problem.model)
    try:
        S.set_flat_params(problem.model, base + h * v)
        g_plus = reference_grad(problem.model, problem.loss_fn, problem.X, problem.y)
        S.set_flat_params(problem.model, base - h * v)
        g_minus = reference_grad(problem.model, problem.loss_fn, problem.X, problem.y)
    finally:
        S.set_flat_params(problem.model, base)
    central = (g_plus - g_minus) / (2 * h)
    assert torch.linalg.vector_norm(product - central) <= 1e-6 * torch.linalg.vector_norm(dense)


@pytest.mark.parametrize("method", S.HVP_METHODS)
def test_chunked_operator_equals_whole_batch(problem, method):
    v = torch.randn(problem.hessian.shape[0], generator=torch.Generator().manual_seed(4),
                    dtype=torch.float64)
    chunked = S.HessianOperator(problem.model, problem.loss_fn, problem.X, problem.y,
                                method=method, chunk_size=7)
    torch.testing.assert_close(chunked.matvec(v), problem.hessian @ v, rtol=1e-9, atol=1e-11)
    torch.testing.assert_close(
        chunked.gradient(), reference_grad(problem.model, problem.loss_fn, problem.X, problem.y)
    )
    assert chunked.num_hvps == 1


def test_operator_follows_parameter_updates_and_scipy_wrapper():
    model = make_mlp(seed=5)
    X, y = make_data("ce", seed=6)
    operator = S.HessianOperator(model, cross_entropy, X, y)
    v = torch.randn(operator.num_params, generator=torch.Generator().manual_seed(0),
                    dtype=torch.float64)
    operator.matvec(v)  # builds and keeps the first-order graph
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.1)
    # The kept graph belongs to the old parameters; the operator must notice the change.
    expected = reference_hessian(model, cross_entropy, X, y) @ v
    torch.testing.assert_close(operator.matvec(v), expected, rtol=1e-9, atol=1e-11)
    linear = operator.to_scipy()
    assert linear.shape == (operator.num_params, operator.num_params)
    np.testing.assert_allclose(linear.matvec(v.numpy()), expected.numpy(), rtol=1e-9, atol=1e-11)
    assert operator.num_hvps == 3


def test_exact_hessian_equals_independent_dense(problem):
    before = snapshot(problem.model)
    hessian = S.exact_hessian(problem.model, problem.loss_fn, problem.X, problem.y)
    assert hessian.shape == problem.hessian.shape
    torch.testing.assert_close(hessian, problem.hessian, rtol=1e-9, atol=1e-12)
    assert_untouched(problem.model, before)


def test_exact_hessian_refuses_models_over_the_limit():
    model = make_mlp()
    X, y = make_data("mse")
    n = S.num_params(model)
    with pytest.raises(ValueError, match=rf"{n} trainable parameters.*max_params=100"):
        S.exact_hessian(model, mse_half, X, y, max_params=100)
    assert S.EXACT_HESSIAN_MAX_PARAMS ** 2 * 8 <= 1e9


# --- eigenvalues ----------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("solver", ["lanczos", "arpack"])
def test_top_eigenvalues_match_dense(problem, k, solver):
    before = snapshot(problem.model)
    result = S.top_eigenvalues(problem.model, problem.loss_fn, problem.X, problem.y, k=k,
                               tol=1e-10, solver=solver)
    assert result.converged
    assert result.eigenvalues.shape == (k,)
    assert result.eigenvectors.shape == (k, problem.hessian.shape[0])
    assert np.all(np.diff(result.eigenvalues) <= 0), "eigenvalues must be descending"
    np.testing.assert_allclose(result.eigenvalues, problem.eigenvalues[:k], rtol=1e-6)
    explicit = torch.linalg.vector_norm(
        result.eigenvectors @ problem.hessian
        - torch.as_tensor(result.eigenvalues)[:, None] * result.eigenvectors, dim=1,
    ).numpy()
    np.testing.assert_allclose(result.residual_norms, explicit, rtol=1e-3, atol=1e-9)
    torch.testing.assert_close(torch.linalg.vector_norm(result.eigenvectors, dim=1),
                               torch.ones(k, dtype=torch.float64))
    # Well separated top eigenvalue: its eigenvector is determined up to sign.
    overlap = abs(float(result.eigenvectors[0] @ problem.eigenvectors[0]))
    assert overlap > 1 - 1e-6
    assert result.num_hvps < problem.hessian.shape[0]
    assert_untouched(problem.model, before)


def test_lanczos_history_and_tolerance_are_honest(problem):
    # A loose tolerance must still deliver an eigenvalue that accurate, with fewer HVPs.
    loose = S.top_eigenvalues(problem.model, problem.loss_fn, problem.X, problem.y, tol=1e-4)
    tight = S.top_eigenvalues(problem.model, problem.loss_fn, problem.X, problem.y, tol=1e-10)
    error = abs(loose.lambda_max - problem.eigenvalues[0]) / problem.eigenvalues[0]
    assert loose.converged and error <= 1e-4
    assert loose.num_hvps < tight.num_hvps
    assert loose.history.shape == (loose.num_hvps, 1)
    assert loose.history[-1, 0] == pytest.approx(loose.lambda_max)
    assert S.lambda_max(problem.model, problem.loss_fn, problem.X, problem.y,
                        tol=1e-10) == pytest.approx(problem.eigenvalues[0], rel=1e-6)


def test_power_iteration_matches_dense_top_eigenvalue(problem):
    # Power iteration finds the largest |λ|; the test problems have λ_max > |λ_min|.
    assert problem.eigenvalues[0] > abs(problem.eigenvalues[-1])
    before = snapshot(problem.model)
    result = S.power_iteration(problem.model, problem.loss_fn, problem.X, problem.y, tol=1e-12,
                               max_iters=5000)
    assert result.converged and result.solver == "power_iteration"
    assert result.lambda_max == pytest.approx(problem.eigenvalues[0], rel=1e-6)
    assert result.num_hvps == len(result.history)
    v = result.eigenvectors[0]
    explicit = torch.linalg.vector_norm(problem.hessian @ v - result.lambda_max * v)
    assert result.residual_norms[0] == pytest.approx(float(explicit), rel=1e-6, abs=1e-12)
    assert_untouched(problem.model, before)


def test_power_iteration_reports_non_convergence(problem):
    result = S.power_iteration(problem.model, problem.loss_fn, problem.X, problem.y, tol=1e-14,
                               max_iters=3)
    assert not result.converged and result.num_hvps == 3


def test_warm_start_from_the_exact_eigenvector_is_nearly_free(problem):
    v0 = problem.eigenvectors[0].clone()
    result = S.top_eigenvalues(problem.model, problem.loss_fn, problem.X, problem.y, v0=v0)
    assert result.converged and result.num_hvps <= 2
    assert result.lambda_max == pytest.approx(problem.eigenvalues[0], rel=1e-8)
    power = S.power_iteration(problem.model, problem.loss_fn, problem.X, problem.y, v0=v0)
    assert power.num_hvps == 2
    cold = S.top_eigenvalues(problem.model, problem.loss_fn, problem.X, problem.y)
    # A slightly perturbed eigenvector still beats a random start.
    noise = torch.randn(v0.shape, generator=torch.Generator().manual_seed(9), dtype=v0.dtype)
    nearby = S.top_eigenvalues(problem.model, problem.loss_fn, problem.X, problem.y,
                               v0=v0 + 1e-3 * noise / torch.linalg.vector_norm(noise))
    assert nearby.num_hvps < cold.num_hvps
    assert nearby.lambda_max == pytest.approx(problem.eigenvalues[0], rel=1e-4)


def test_top_eigenvalues_finds_several_eigenvalues_after_a_breakdown(problem):
    # Starting from an exact eigenvector the Krylov space is invariant at once; Lanczos must
    # restart from a fresh direction to find the other two.
    v0 = problem.eigenvectors[0].clone()
    result = S.top_eigenvalues(problem.model, problem.loss_fn, problem.X, problem.y, k=3,
                               v0=v0, tol=1e-10)
    np.testing.assert_allclose(result.eigenvalues, problem.eigenvalues[:3], rtol=1e-6)


@pytest.mark.parametrize("solver", ["lanczos", "arpack"])
def test_non_convergence_is_reported_not_raised(problem, solver):
    result = S.top_eigenvalues(problem.model, problem.loss_fn, problem.X, problem.y, k=1,
                               tol=1e-14, solver=solver, ncv=3 if solver == "arpack" else None,
                               max_hvps=3)
    assert not result.converged and result.solver == solver
    assert result.eigenvalues.shape == (1,) and result.eigenvectors.shape[0] == 1
    if solver == "lanczos":
        # Best estimate so far: a Ritz value, never above λ_max.
        assert result.num_hvps == 3
        assert 0 < result.lambda_max <= problem.eigenvalues[0] + 1e-12


def test_stopping_rule_keeps_its_residual_guard(problem):
    # A random start stops only with r ≤ max(tol, 1e-3)·|θ| (the guard against settling on
    # λ_2); a warm start with r ≤ √tol·|θ|. Both must still meet the requested accuracy.
    exact = problem.eigenvalues[0]
    for tol in (1e-3, 1e-4, 1e-6):
        cold = S.top_eigenvalues(problem.model, problem.loss_fn, problem.X, problem.y, tol=tol)
        assert cold.converged
        assert cold.residual_norms[0] <= max(tol, 1e-3) * cold.lambda_max
        assert abs(cold.lambda_max - exact) / exact <= tol
    noise = torch.randn(problem.eigenvectors[0].shape, generator=torch.Generator().manual_seed(4),
                        dtype=torch.float64)
    v0 = problem.eigenvectors[0] + 0.05 * noise / torch.linalg.vector_norm(noise)
    warm = S.top_eigenvalues(problem.model, problem.loss_fn, problem.X, problem.y, tol=1e-4,
                             v0=v0)
    assert warm.converged and warm.residual_norms[0] <= 1e-2 * warm.lambda_max
    assert abs(warm.lambda_max - exact) / exact <= 1e-4
    # Stopping on the estimate, not on the residual: a residual-only rule (tol²) costs more.
    strict = S.top_eigenvalues(problem.model, problem.loss_fn, problem.X, problem.y, tol=1e-8,
                               v0=v0)
    assert warm.num_hvps < strict.num_hvps
