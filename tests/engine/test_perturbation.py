"""perturbation_sharpness, both scalings of the noise: "norm" (each tensor kicked by norm ε) and
"per_entry" (the online recipe p + randn_like(p)·ε)."""

import numpy as np
import pytest
import torch
from torch import nn

from edutools.engine import sharpness


class Linear(nn.Module):
    """L(θ) = mean over samples of (w·x + b): linear in the parameters, so ΔL is exactly g·d."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(400, dtype=torch.float64))
        self.b = nn.Parameter(torch.zeros(4, dtype=torch.float64))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return X @ self.w + self.b.sum()


def mean_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return outputs.mean() + 0 * targets.sum()


@pytest.fixture
def linear():
    X = torch.ones(3, 400, dtype=torch.float64)
    return Linear(), X, torch.zeros(3, dtype=torch.float64)


def test_norm_noise_has_norm_eps_and_per_entry_noise_grows_like_sqrt_n(linear):
    model, X, y = linear
    norm = sharpness.perturbation_sharpness(model, mean_loss, X, y, eps=1e-3, num_trials=8,
                                            seed=3, noise="norm")
    entry = sharpness.perturbation_sharpness(model, mean_loss, X, y, eps=1e-3, num_trials=8,
                                             seed=3, noise="per_entry")
    assert norm.tensor_sizes == entry.tensor_sizes == (400, 4)
    np.testing.assert_allclose(norm.noise_norms, 1e-3)
    mean_norms = entry.noise_norms.mean(0) / 1e-3
    assert abs(mean_norms[0] / 20 - 1) < 0.05  # √400 = 20
    # A linear loss: ΔL = g·d exactly, and the same draws, so the two differ by ‖d‖/ε.
    np.testing.assert_allclose(entry.values, norm.values * entry.noise_norms / 1e-3, rtol=1e-8)
    assert entry.noise == "per_entry" and norm.noise == "norm"


def test_default_is_the_norm_scaling_and_a_bad_noise_names_the_parameter(linear):
    model, X, y = linear
    default = sharpness.perturbation_sharpness(model, mean_loss, X, y, num_trials=2, seed=1)
    explicit = sharpness.perturbation_sharpness(model, mean_loss, X, y, num_trials=2, seed=1,
                                                noise="norm")
    np.testing.assert_array_equal(default.values, explicit.values)
    with pytest.raises(ValueError, match="noise"):
        sharpness.perturbation_sharpness(model, mean_loss, X, y, noise="gaussian")
