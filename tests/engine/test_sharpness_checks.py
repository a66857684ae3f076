"""edutools.engine.sharpness: measurements leave the model as they found it (eval mode,
parameters, requires_grad, dtype, device) and bad arguments are named.
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


# --- eval mode, restoration, requires_grad ----------------------------------------------------


def test_measurements_use_eval_mode_and_restore_everything():
    model = make_mlp(seed=2, dropout=0.5)
    model.train()
    model[2].eval()  # a mixed state must survive too
    X, y = make_data("ce", seed=2)
    eval_hessian = reference_hessian(model, cross_entropy, X, y)
    top = float(torch.linalg.eigvalsh(eval_hessian)[-1])
    before = snapshot(model)
    calls = {
        "hvp": lambda: S.hvp(model, cross_entropy, X, y, torch.ones(S.num_params(model),
                                                                     dtype=torch.float64)),
        "flat_grad": lambda: S.flat_grad(model, cross_entropy, X, y),
        "top": lambda: S.top_eigenvalues(model, cross_entropy, X, y, tol=1e-10),
        "power": lambda: S.power_iteration(model, cross_entropy, X, y, max_iters=5),
        "trace": lambda: S.hessian_trace(model, cross_entropy, X, y, num_samples=3),
        "density": lambda: S.spectral_density(model, cross_entropy, X, y, num_probes=1,
                                              lanczos_steps=5),
        "batch": lambda: S.batch_sharpness(model, cross_entropy, X, y, batch_size=5,
                                           num_batches=2),
        "exact": lambda: S.exact_hessian(model, cross_entropy, X, y),
        "eps": lambda: S.eps_sharpness(model, cross_entropy, X, y, eps=1e-2, max_iters=3),
        "perturb": lambda: S.perturbation_sharpness(model, cross_entropy, X, y, num_trials=2),
    }
    results = {}
    for name, call in calls.items():
        results[name] = call()
        assert_untouched(model, before)
    # Dropout is off inside the measurements: deterministic, and equal to the eval-mode truth.
    torch.testing.assert_close(results["exact"], eval_hessian, rtol=1e-9, atol=1e-12)
    assert results["top"].lambda_max == pytest.approx(top, rel=1e-6)


def test_frozen_parameters_are_left_out():
    model = make_mlp(seed=4)
    X, y = make_data("mse", seed=4)
    full = reference_hessian(model, mse_half, X, y)
    first_layer = model[0].weight.numel() + model[0].bias.numel()
    for p in model[0].parameters():
        p.requires_grad_(False)
    n = S.num_params(model)
    assert n == full.shape[0] - first_layer
    assert S.flatten_params(model).shape == (n,)
    block = full[first_layer:, first_layer:]
    torch.testing.assert_close(S.exact_hessian(model, mse_half, X, y), block, rtol=1e-9,
                               atol=1e-12)
    v = torch.randn(n, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    product = S.hvp(model, mse_half, X, y, v, method="forward_over_reverse")
    torch.testing.assert_close(product, block @ v, rtol=1e-9, atol=1e-11)


def test_float32_model_gets_float32_vectors():
    model = make_mlp(seed=7).float()
    X, y = make_data("ce", seed=7)
    X = X.float()
    result = S.top_eigenvalues(model, cross_entropy, X, y, k=2, tol=1e-3)
    assert result.eigenvectors.dtype == torch.float32
    assert result.eigenvalues.dtype == np.float64
    v = torch.randn(S.num_params(model), dtype=torch.float64)  # converted to the model's dtype
    assert S.hvp(model, cross_entropy, X, y, v).dtype == torch.float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda():
    model = make_mlp(seed=8).cuda()
    X, y = make_data("ce", seed=8)
    X, y = X.cuda(), y.cuda()
    cpu = S.top_eigenvalues(model.cpu(), cross_entropy, X.cpu(), y.cpu(), tol=1e-10)
    model.cuda()
    result = S.top_eigenvalues(model, cross_entropy, X, y, tol=1e-10)
    assert result.eigenvectors.device.type == "cuda"
    assert result.lambda_max == pytest.approx(cpu.lambda_max, rel=1e-6)
    assert S.batch_sharpness(model, cross_entropy, X, y, batch_size=8, num_batches=2).mean > 0


# --- argument checks --------------------------------------------------------------------------


def _bad_calls():
    model = make_mlp()
    X, y = make_data("mse")
    n = S.num_params(model)
    return [
        (lambda: S.top_eigenvalues(model, mse_half, X, y, k=0), "k"),
        (lambda: S.top_eigenvalues(model, mse_half, X, y, k=n), "k"),
        (lambda: S.top_eigenvalues(model, mse_half, X, y, tol=0.0), "tol"),
        (lambda: S.top_eigenvalues(model, mse_half, X, y, tol=-1e-3), "tol"),
        (lambda: S.top_eigenvalues(model, mse_half, X, y, k=3, max_hvps=2), "max_hvps"),
        (lambda: S.top_eigenvalues(model, mse_half, X, y, v0=torch.ones(n + 1)), "v0"),
        (lambda: S.top_eigenvalues(model, mse_half, X, y, v0=torch.zeros(n)), "v0"),
        (lambda: S.top_eigenvalues(model, mse_half, X, y, solver="qr"), "solver"),
        (lambda: S.top_eigenvalues(model, mse_half, X, y, solver="arpack", ncv=1), "ncv"),
        (lambda: S.hvp(model, mse_half, X, y, torch.ones(n), method="finite"), "method"),
        (lambda: S.hvp(model, mse_half, X, y, torch.ones(3)), "v"),
        (lambda: S.HessianOperator(model, mse_half, X, y, chunk_size=0), "chunk_size"),
        (lambda: S.hvp(model, mse_half, X, y[:5], torch.ones(n)), "same number of samples"),
        (lambda: S.hvp(model, lambda o, t: ((o - t) ** 2).mean(dim=1), X, y, torch.ones(n)),
         "scalar"),
        (lambda: S.power_iteration(model, mse_half, X, y, tol=0), "tol"),
        (lambda: S.power_iteration(model, mse_half, X, y, max_iters=0), "max_iters"),
        (lambda: S.hessian_trace(model, mse_half, X, y, num_samples=1), "num_samples"),
        (lambda: S.spectral_density(model, mse_half, X, y, lanczos_steps=n + 1),
         "lanczos_steps"),
        (lambda: S.spectral_density(model, mse_half, X, y, num_probes=0), "num_probes"),
        (lambda: S.batch_sharpness(model, mse_half, X, y, batch_size=0), "batch_size"),
        (lambda: S.batch_sharpness(model, mse_half, X, y, batch_size=len(X) + 1), "batch_size"),
        (lambda: S.batch_sharpness(model, mse_half, X, y, batch_size=4, num_batches=0),
         "num_batches"),
        (lambda: S.exact_hessian(model, mse_half, X, y, max_params=0), "max_params"),
        (lambda: S.eps_sharpness(model, mse_half, X, y, eps=0), "eps"),
        (lambda: S.eps_sharpness(model, mse_half, X, y, max_iters=0), "max_iters"),
        (lambda: S.perturbation_sharpness(model, mse_half, X, y, eps=-1.0), "eps"),
        (lambda: S.set_flat_params(model, torch.ones(n - 1)), "flat"),
        (lambda: S.LambdaMaxMeter(k=0), "k"),
        (lambda: S.BatchSharpnessMeter(batch_size=0), "batch_size"),
        (lambda: S.DensityResult(np.zeros((1, 1)), np.ones((1, 1)), 1, 1).density(
            np.zeros(3), sigma=0.0), "sigma"),
    ]


@pytest.mark.parametrize("index", range(len(_bad_calls())))
def test_bad_arguments_raise_value_error_naming_the_parameter(index):
    call, name = _bad_calls()[index]
    with pytest.raises(ValueError, match=name):
        call()


def test_model_without_trainable_parameters_is_refused():
    model = make_mlp()
    for p in model.parameters():
        p.requires_grad_(False)
    X, y = make_data("mse")
    with pytest.raises(ValueError, match="requires_grad"):
        S.top_eigenvalues(model, mse_half, X, y)
