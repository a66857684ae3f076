"""Lesson 05's cost measurements: HVP timing, the Rayleigh recorder, HVPs to a target, residuals
and warm against cold starts, on a tiny float64 model whose Hessian is known exactly."""

import numpy as np
import pytest
import torch

from edutools.engine import sharpness
from edutools.engine.experiments import eigen_costs
from edutools.ground.models import cross_entropy, mlp


@pytest.fixture(scope="module")
def tiny():
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(48, 5, generator=generator, dtype=torch.float64)
    y = torch.randint(0, 3, (48,), generator=generator)
    model = mlp([5, 6, 3], seed=0, dtype=torch.float64)
    return model, X, y


def test_hvps_to_reach_counts_from_one_and_says_inf_when_never():
    errors = np.array([1.0, 0.1, 1e-3, 1e-5, 1e-6])
    assert eigen_costs.hvps_to_reach(errors, 1e-4) == 4
    assert eigen_costs.hvps_to_reach(errors, 2.0) == 1
    assert eigen_costs.hvps_to_reach(errors, 1e-9) == np.inf
    np.testing.assert_allclose(eigen_costs.relative_errors([2.0, 3.0], 2.0), [0.0, 0.5])


def test_rayleigh_recorder_records_one_quotient_per_product(tiny):
    model, X, y = tiny
    operator = sharpness.HessianOperator(model, cross_entropy, X, y)
    recorder = eigen_costs.RayleighRecorder(operator)
    H = sharpness.exact_hessian(model, cross_entropy, X, y)
    v = torch.randn(operator.num_params, generator=torch.Generator().manual_seed(1),
                    dtype=torch.float64)
    product = recorder(v)
    torch.testing.assert_close(product, H @ v)
    recorder(2 * v)
    assert len(recorder.rayleigh_quotients) == 2
    expected = float(v @ H @ v / (v @ v))
    assert recorder.rayleigh_quotients == pytest.approx([expected, expected])


def test_residual_table_matches_explicit_residuals(tiny):
    model, X, y = tiny
    result = sharpness.top_eigenvalues(model, cross_entropy, X, y, k=2, tol=1e-10)
    exact = np.sort(torch.linalg.eigvalsh(
        sharpness.exact_hessian(model, cross_entropy, X, y)).numpy())[::-1]
    operator = sharpness.HessianOperator(model, cross_entropy, X, y)
    table = eigen_costs.residual_table(operator, result, exact)
    assert list(table.index) == [1, 2]
    assert (table["relative error"] < 1e-6).all()
    assert np.allclose(table["reported residual"], table["explicit residual"], atol=1e-6)


def test_time_hvp_methods_times_both_and_they_agree(tiny):
    model, X, y = tiny
    v = torch.ones(sharpness.num_params(model), dtype=torch.float64)
    timing = eigen_costs.time_hvp_methods(model, cross_entropy, X, y, v, repeats=2)
    assert set(timing.ms_per_hvp) == set(sharpness.HVP_METHODS)
    assert all(t > 0 for t in timing.ms_per_hvp.values())
    assert timing.relative_difference < 1e-10
    with pytest.raises(ValueError, match="repeats"):
        eigen_costs.time_hvp_methods(model, cross_entropy, X, y, v, repeats=0)


def test_warm_and_cold_starts_find_lambda_max_at_every_checkpoint(tiny):
    model, X, y = tiny
    theta = sharpness.flatten_params(model)
    checkpoints = [(0, theta), (1, theta * 1.01), (2, theta * 1.02)]
    before = theta.clone()
    along = eigen_costs.warm_and_cold_starts(model, cross_entropy, X, y, checkpoints, tol=1e-8)
    assert torch.equal(sharpness.flatten_params(model), before)  # the model is not touched
    assert list(along["step"]) == [0, 1, 2]
    assert (along["cold error"] < 1e-5).all() and (along["warm error"] < 1e-5).all()
    assert along.loc[0, "warm HVPs"] == along.loc[0, "cold HVPs"]  # nothing to warm-start from


def test_power_vs_lanczos_counts_per_start_and_lanczos_is_never_slower(tiny):
    model, X, y = tiny
    reference = sharpness.lambda_max(model, cross_entropy, X, y, tol=1e-12)
    starts = [torch.randn(sharpness.num_params(model), generator=torch.Generator().manual_seed(s),
                          dtype=torch.float64) for s in (1, 2)]
    table = eigen_costs.power_vs_lanczos(model, cross_entropy, X, y,
                                         power_iteration=sharpness_power_iteration,
                                         starts=starts, reference=reference, target=1e-6,
                                         num_iters=200)
    assert list(table.index) == [0, 1]
    assert (table["Lanczos"] <= table["power iteration"]).all()
    assert (table["Lanczos"] < np.inf).all()


def sharpness_power_iteration(hvp_fn, v0, num_iters):
    v = v0 / torch.linalg.vector_norm(v0)
    eigenvalue = 0.0
    for _ in range(num_iters):
        w = hvp_fn(v)
        eigenvalue = float(torch.dot(v, w))
        v = w / torch.linalg.vector_norm(w)
    return eigenvalue, v
