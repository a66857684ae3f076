"""edutools.engine.sharpness.batch_sharpness: the vectorized (torch.func.vmap) path against the
loop, on models it can transform and on ones it cannot (which fall back to the loop)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from edutools.engine import sharpness as S
from edutools.engine.sharpness.algorithms import batch as batch_module
from tests.engine.sharpness_reference import (
    assert_untouched,
    make_data,
    make_problem,
    mse_half,
    snapshot,
)

pytestmark = pytest.mark.filterwarnings(
    "ignore:`torch.jit.script` is deprecated:DeprecationWarning"
)


@pytest.fixture(scope="module", params=["mse", "ce"])
def problem(request):
    return make_problem(request.param)


def both(model, loss_fn, X, y, **options):
    looped = S.batch_sharpness(model, loss_fn, X, y, vectorize=False, **options)
    vectorized = S.batch_sharpness(model, loss_fn, X, y, vectorize=True, **options)
    return looped, vectorized


@pytest.mark.parametrize("method", ["double_backward", "forward_over_reverse"])
def test_vectorized_equals_loop(problem, method):
    before = snapshot(problem.model)
    looped, vectorized = both(problem.model, problem.loss_fn, problem.X, problem.y,
                              batch_size=7, num_batches=9, seed=4, method=method)
    np.testing.assert_array_equal(vectorized.batch_indices, looped.batch_indices)
    np.testing.assert_allclose(vectorized.values, looped.values, rtol=1e-10)
    assert vectorized.mean == pytest.approx(looped.mean, rel=1e-10)
    assert vectorized.standard_error == pytest.approx(looped.standard_error, rel=1e-8)
    assert_untouched(problem.model, before)


def test_slices_give_the_same_values(problem, monkeypatch):
    whole = S.batch_sharpness(problem.model, problem.loss_fn, problem.X, problem.y,
                              batch_size=6, num_batches=7, seed=2)
    monkeypatch.setattr(batch_module, "VMAP_SAMPLES", 12)  # 2 batches per vmap call
    sliced = S.batch_sharpness(problem.model, problem.loss_fn, problem.X, problem.y,
                               batch_size=6, num_batches=7, seed=2)
    np.testing.assert_allclose(sliced.values, whole.values, rtol=1e-12)


class ItemCallingNet(nn.Module):
    """A model vmap cannot transform: it reads a tensor's value with .item()."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(5, 3).double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = 1.0 + 0.0 * x.abs().max().item()
        return scale * torch.tanh(self.linear(x))


def test_untransformable_model_falls_back_to_the_loop():
    model = ItemCallingNet()
    X, y = make_data("mse")
    with pytest.raises(RuntimeError):
        batch_module._vectorized_pairs(model, mse_half, X, y, torch.zeros(2, 4, dtype=torch.long),
                                       method="double_backward")
    looped, vectorized = both(model, mse_half, X, y, batch_size=5, num_batches=4)
    np.testing.assert_array_equal(vectorized.values, looped.values)


def test_batchnorm_and_dropout_in_train_mode_are_measured_in_eval_mode():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Dropout(0.5),
                          nn.Linear(8, 3)).double()
    X, y = make_data("mse")
    with torch.no_grad():
        model(X)  # non-trivial running statistics
    model.train()
    stats = [b.clone() for b in model.buffers()]
    before = snapshot(model)
    looped, vectorized = both(model, mse_half, X, y, batch_size=6, num_batches=5, seed=1)
    np.testing.assert_allclose(vectorized.values, looped.values, rtol=1e-10)
    assert all(torch.equal(b, saved) for b, saved in zip(model.buffers(), stats, strict=True))
    assert_untouched(model, before)


def test_frozen_parameters_stay_out_of_the_gradient():
    model = make_problem("mse").model
    first = next(model.parameters())
    first.requires_grad_(False)
    X, y = make_data("mse")
    looped, vectorized = both(model, mse_half, X, y, batch_size=6, num_batches=4)
    np.testing.assert_allclose(vectorized.values, looped.values, rtol=1e-10)


def test_non_finite_gradient_names_the_batch():
    model = make_problem("mse").model
    X, y = make_data("mse")
    y = y * 1e200  # finite targets, but the squared error overflows to inf
    for vectorize in (True, False):
        with pytest.raises(ValueError, match="gradient on batch 0 is not finite"):
            S.batch_sharpness(model, mse_half, X, y, batch_size=len(X), num_batches=2,
                              vectorize=vectorize)
