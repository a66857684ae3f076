"""Tests of edutools.engine.landscape: directions, slices and interpolation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from edutools.engine import landscape as L
from edutools.engine import sharpness as S

cross_entropy = nn.CrossEntropyLoss()


def make_model(seed: int = 0, dropout: float = 0.0) -> nn.Module:
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Conv1d(2, 4, kernel_size=3), nn.Tanh(), nn.Flatten()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers += [nn.Linear(4 * 6, 5), nn.Tanh(), nn.Linear(5, 3)]
    return nn.Sequential(*layers).double()


def make_data(n: int = 30, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 2, 8, generator=generator, dtype=torch.float64)
    y = torch.randint(0, 3, (n,), generator=generator)
    return X, y


def loss_at(model: nn.Module, flat: torch.Tensor, X, y) -> float:
    saved = S.flatten_params(model)
    try:
        S.set_flat_params(model, flat)
        was_training = model.training
        model.eval()
        with torch.no_grad():
            value = float(cross_entropy(model(X), y))
        model.train(was_training)
        return value
    finally:
        S.set_flat_params(model, saved)


def test_filter_normalized_direction_matches_row_norms_and_zeroes_biases():
    model = make_model()
    direction = L.random_direction(model, seed=3)
    assert direction.shape == (S.num_params(model),)
    assert direction.dtype == torch.float64
    for (name, p), d in zip(model.named_parameters(), S.unflatten_params(model, direction),
                            strict=True):
        if p.dim() == 1:
            assert torch.count_nonzero(d) == 0, name
        else:
            d_rows = d.reshape(d.shape[0], -1)
            w_rows = p.detach().reshape(p.shape[0], -1)
            torch.testing.assert_close(torch.linalg.vector_norm(d_rows, dim=1),
                                       torch.linalg.vector_norm(w_rows, dim=1))
            # Not simply the weights rescaled: a random direction.
            assert not torch.allclose(d, p.detach())
    torch.testing.assert_close(L.random_direction(model, seed=3), direction)
    assert not torch.equal(L.random_direction(model, seed=4), direction)


def test_direction_options():
    model = make_model()
    params = S.flatten_params(model)
    kept = L.random_direction(model, seed=0, ignore_biases=False)
    for p, d in zip(model.parameters(), S.unflatten_params(model, kept), strict=True):
        if p.dim() == 1:
            torch.testing.assert_close(d, p.detach())  # Li et al.'s reference code copies them
    raw = L.random_direction(model, seed=0, filter_normalize=False)
    assert torch.count_nonzero(raw) == S.num_params(model) - sum(
        p.numel() for p in model.parameters() if p.dim() == 1)
    scaled = L.random_direction(model, seed=0, filter_normalize=False, match_global_norm=True)
    torch.testing.assert_close(torch.linalg.vector_norm(scaled), torch.linalg.vector_norm(params))
    torch.testing.assert_close(scaled / torch.linalg.vector_norm(scaled),
                               raw / torch.linalg.vector_norm(raw))
    with pytest.raises(ValueError, match="requires_grad"):
        frozen = make_model()
        for p in frozen.parameters():
            p.requires_grad_(False)
        L.random_direction(frozen, seed=0)


def test_slice_1d_values_restoration_and_curvature():
    model = make_model(dropout=0.3)
    model.train()
    X, y = make_data()
    before = [p.detach().clone() for p in model.parameters()]
    direction = L.random_direction(model, seed=1)
    base = S.flatten_params(model)
    alphas = np.array([-0.5, 0.0, 0.25, 1.0])
    result = L.loss_slice_1d(model, cross_entropy, X, y, direction=direction, alphas=alphas,
                             metric_fn=L.classification_accuracy)
    np.testing.assert_array_equal(result.alphas, alphas)
    expected = [loss_at(model, base + a * direction, X, y) for a in alphas]
    np.testing.assert_allclose(result.losses, expected, rtol=1e-12)
    assert result.metrics is not None and np.all((result.metrics >= 0) & (result.metrics <= 1))
    assert model.training and all(m.training for m in model.modules())
    for p, saved in zip(model.parameters(), before, strict=True):
        assert torch.equal(p.detach(), saved) and p.grad is None
    # The slice's second difference at 0 is the Hessian's curvature along the direction.
    h = 1e-4
    tiny = L.loss_slice_1d(model, cross_entropy, X, y, direction=direction, alphas=[-h, 0, h])
    second_difference = (tiny.losses[0] - 2 * tiny.losses[1] + tiny.losses[2]) / h**2
    curvature = float(direction @ S.hvp(model, cross_entropy, X, y, direction))
    assert second_difference == pytest.approx(curvature, rel=1e-4)
    assert L.loss_slice_1d(model, cross_entropy, X, y, direction=direction,
                           alphas=[0.0]).metrics is None


def test_slice_2d_grid_orientation():
    model = make_model()
    X, y = make_data()
    d1 = L.random_direction(model, seed=1)
    d2 = L.random_direction(model, seed=2)
    alphas = np.linspace(-1, 1, 3)
    betas = np.linspace(-0.5, 0.5, 4)
    result = L.loss_slice_2d(model, cross_entropy, X, y, directions=(d1, d2), alphas=alphas,
                             betas=betas, metric_fn=L.classification_accuracy)
    assert result.losses.shape == (3, 4) and result.metrics.shape == (3, 4)
    base = S.flatten_params(model)
    for i, a in enumerate(alphas):
        for j, b in enumerate(betas):
            assert result.losses[i, j] == pytest.approx(
                loss_at(model, base + a * d1 + b * d2, X, y), rel=1e-12)
    torch.testing.assert_close(S.flatten_params(model), base, rtol=0, atol=0)


def test_interpolation_endpoints_and_vector_form():
    model_a = make_model(seed=0)
    model_b = make_model(seed=1)
    X, y = make_data()
    theta_a = S.flatten_params(model_a)
    theta_b = S.flatten_params(model_b)
    alphas = np.array([-1.0, 0.0, 0.5, 1.0, 2.0])
    result = L.interpolate(model_a, model_b, cross_entropy, X, y, alphas=alphas)
    assert result.losses[1] == pytest.approx(loss_at(model_a, theta_a, X, y), rel=1e-12)
    assert result.losses[3] == pytest.approx(loss_at(model_b, theta_b, X, y), rel=1e-12)
    assert result.losses[4] == pytest.approx(
        loss_at(model_a, 2 * theta_b - theta_a, X, y), rel=1e-12)
    from_vector = L.interpolate(model_a, theta_b, cross_entropy, X, y, alphas=alphas)
    np.testing.assert_allclose(from_vector.losses, result.losses, rtol=1e-12)
    torch.testing.assert_close(S.flatten_params(model_a), theta_a, rtol=0, atol=0)
    torch.testing.assert_close(S.flatten_params(model_b), theta_b, rtol=0, atol=0)


def test_bad_arguments():
    model = make_model()
    X, y = make_data()
    n = S.num_params(model)
    d = torch.zeros(n, dtype=torch.float64)
    with pytest.raises(ValueError, match="direction"):
        L.loss_slice_1d(model, cross_entropy, X, y, direction=torch.zeros(n + 1), alphas=[0.0])
    with pytest.raises(ValueError, match="alphas"):
        L.loss_slice_1d(model, cross_entropy, X, y, direction=d, alphas=[])
    with pytest.raises(ValueError, match="alphas"):
        L.loss_slice_1d(model, cross_entropy, X, y, direction=d, alphas=[0.0, float("nan")])
    with pytest.raises(ValueError, match="betas"):
        L.loss_slice_2d(model, cross_entropy, X, y, directions=(d, d), alphas=[0.0],
                        betas=[[0.0]])
    with pytest.raises(ValueError, match="directions"):
        L.loss_slice_2d(model, cross_entropy, X, y, directions=(d,), alphas=[0.0], betas=[0.0])
    with pytest.raises(ValueError, match="model_b"):
        L.interpolate(model, nn.Linear(2, 2).double(), cross_entropy, X, y, alphas=[0.0])
    with pytest.raises(ValueError, match="samples"):
        L.loss_slice_1d(model, cross_entropy, X, y[:3], direction=d, alphas=[0.0])
