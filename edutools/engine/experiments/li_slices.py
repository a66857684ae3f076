"""Loss-surface slices of one function in several parametrizations, along raw and along
filter-normalized random directions (Li et al. 2018; lesson 05).

Under Dinh et al.'s rescaling (:mod:`edutools.engine.experiments.dinh`) a filter-normalized
direction rescales with the weights, so the slice of the rescaled network equals the original's;
a raw direction does not. :func:`parametrization_slices_1d` and :func:`parametrization_slices_2d`
compute both kinds for every network given. Engine layer: nothing here draws.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from edutools.engine.landscape import loss_slice_1d, loss_slice_2d, random_direction
from edutools.ground.models import LossFn

__all__ = ["DIRECTION_KINDS", "parametrization_slices_1d", "parametrization_slices_2d"]

#: Kind of direction → ``filter_normalize`` of :func:`~edutools.engine.landscape.random_direction`.
DIRECTION_KINDS = {"raw": False, "filter-normalized": True}

SliceKey = tuple[str, str]


def parametrization_slices_1d(nets: Mapping[str, nn.Module], loss_fn: LossFn, X: torch.Tensor,
                              y: torch.Tensor, *, offsets: np.ndarray,
                              seed: int = 0) -> dict[SliceKey, np.ndarray]:
    """Training loss along θ + a·d at ``offsets`` for every net and kind of direction d (seeded
    ``seed``; raw directions rescaled to the norm of θ, biases not perturbed).

    Returns ``{(kind, net name): losses}``, each of shape ``(len(offsets),)``.
    """
    slices = {}
    for kind, normalize in DIRECTION_KINDS.items():
        for name, net in nets.items():
            direction = random_direction(net, seed=seed, filter_normalize=normalize,
                                         match_global_norm=True)
            slices[kind, name] = loss_slice_1d(net, loss_fn, X, y, direction=direction,
                                               alphas=offsets).losses
    return slices


def parametrization_slices_2d(nets: Mapping[str, nn.Module], loss_fn: LossFn, X: torch.Tensor,
                              y: torch.Tensor, *, grid: np.ndarray,
                              seed: int = 0) -> dict[SliceKey, np.ndarray]:
    """Training loss on θ + a·d1 + b·d2, a and b over ``grid`` (directions seeded ``seed`` and
    ``seed + 1``), for every net and kind of direction.

    Returns ``{(kind, net name): losses}``, each of shape ``(len(grid), len(grid))`` with
    ``losses[i, j]`` at ``(grid[i], grid[j])``.
    """
    slices = {}
    for kind, normalize in DIRECTION_KINDS.items():
        for name, net in nets.items():
            pair = tuple(random_direction(net, seed=seed + j, filter_normalize=normalize,
                                          match_global_norm=True) for j in (0, 1))
            slices[kind, name] = loss_slice_2d(net, loss_fn, X, y, directions=pair, alphas=grid,
                                               betas=grid).losses
    return slices
