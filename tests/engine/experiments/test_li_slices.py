"""Li et al.'s filter-normalized slices are the same for a rescaled copy of a ReLU network;
raw slices are not."""

import numpy as np
import torch

from edutools.engine.experiments.dinh import rescale_layers
from edutools.engine.experiments.li_slices import (
    parametrization_slices_1d,
    parametrization_slices_2d,
)
from edutools.ground.models import cross_entropy, mlp


def test_filter_normalized_slices_are_invariant_to_rescaling():
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(40, 5, generator=generator, dtype=torch.float64)
    y = torch.randint(0, 3, (40,), generator=generator)
    net = mlp([5, 8, 3], activation="relu", seed=0, dtype=torch.float64)
    nets = {"original": net, "rescaled": rescale_layers(net, 5.0)}
    one = parametrization_slices_1d(nets, cross_entropy, X, y, offsets=np.linspace(-1, 1, 5))
    two = parametrization_slices_2d(nets, cross_entropy, X, y, grid=np.linspace(-1, 1, 3))
    assert set(one) == {(kind, name) for kind in ("raw", "filter-normalized") for name in nets}
    assert two["raw", "original"].shape == (3, 3)
    for slices in (one, two):
        assert np.abs(slices["filter-normalized", "original"]
                      - slices["filter-normalized", "rescaled"]).max() < 1e-10
        assert np.abs(slices["raw", "original"] - slices["raw", "rescaled"]).max() > 1e-3
