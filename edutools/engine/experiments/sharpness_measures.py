"""Sharpness measures side by side (lesson 05): the spectrum's bulk, batch sharpness against the
batch size, Keskar's ε-sharpness against its first-order prediction, and the random-perturbation
estimate along a training run.

* :func:`gaussian_density`, :func:`bulk_fraction` — a smoothed exact spectrum, and the share of a
  spectrum near zero.
* :func:`batch_sharpness_table` — batch sharpness for several batch sizes.
* :func:`eps_sharpness_table` — ε-sharpness and the gradient term that dominates it away from a
  minimum.
* :func:`perturbation_recipes` — the online recipe (noise ε per entry) against noise of norm ε,
  tensor by tensor; :func:`perturbation_along` — an estimate at every checkpoint of a run.

Engine layer: nothing here draws.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from edutools.engine.sharpness import (
    batch_sharpness,
    eps_sharpness,
    flat_grad,
    flatten_params,
    perturbation_sharpness,
    set_flat_params,
)
from edutools.ground.models import LossFn

__all__ = ["batch_sharpness_table", "bulk_fraction", "eps_sharpness_table", "gaussian_density",
           "perturbation_along", "perturbation_recipes"]

#: A training checkpoint: (step, flat parameter vector).
Checkpoint = tuple[int, torch.Tensor]


def gaussian_density(eigenvalues: np.ndarray, grid: np.ndarray, sigma: float) -> np.ndarray:
    """The spectrum ``eigenvalues`` (shape (n,)) smoothed by a Gaussian of width ``sigma``, on
    ``grid`` (shape (G,)): a density that integrates to 1, as SLQ's ``density(grid, sigma)``."""
    eigenvalues = np.asarray(eigenvalues, dtype=float)
    grid = np.asarray(grid, dtype=float)
    density = np.exp(-0.5 * ((grid[:, None] - eigenvalues) / sigma) ** 2).sum(1)
    return density / (len(eigenvalues) * sigma * np.sqrt(2 * np.pi))


def bulk_fraction(nodes: np.ndarray, weights: np.ndarray, scale: float) -> float:
    """Share of a spectrum (quadrature ``nodes`` with ``weights``; NaN nodes count as far away)
    within 5% of ``scale`` of zero."""
    inside = np.abs(np.nan_to_num(nodes, nan=np.inf)) < 0.05 * scale
    return float((weights * inside).sum() / weights.sum())


def batch_sharpness_table(model: nn.Module, loss_fn: LossFn, X: torch.Tensor, y: torch.Tensor,
                          *, batch_sizes: Sequence[int], num_batches: int,
                          seed: int = 0) -> pd.DataFrame:
    """Batch sharpness (mean and standard error over ``num_batches`` batches; one batch, and a
    standard error of 0, for the whole training set) indexed by ``batch size``."""
    rows = []
    for batch_size in batch_sizes:
        full = batch_size == len(X)
        result = batch_sharpness(model, loss_fn, X, y, batch_size=batch_size,
                                 num_batches=1 if full else num_batches, seed=seed)
        rows.append({"batch size": batch_size, "batch sharpness": result.mean,
                     "standard error": 0.0 if full else result.standard_error})
    return pd.DataFrame(rows).set_index("batch size")


def eps_sharpness_table(model: nn.Module, loss_fn: LossFn, X: torch.Tensor, y: torch.Tensor, *,
                        eps_values: Sequence[float] = (1e-3, 5e-4)) -> pd.DataFrame:
    """Keskar's ε-sharpness (%) for each ε, beside its first-order prediction
    100·ε·Σ|g_i|(|θ_i|+1)/(1+L) — the gain of the box's best corner from the gradient alone —
    and the loss evaluations L-BFGS-B spent; indexed by ``ε``."""
    gradient = flat_grad(model, loss_fn, X, y)
    theta = flatten_params(model)
    with torch.no_grad():
        loss_now = float(loss_fn(model(X), y))
    rows = []
    for eps in eps_values:
        keskar = eps_sharpness(model, loss_fn, X, y, eps=eps)
        first_order = 100 * eps * float((gradient.abs() * (theta.abs() + 1)).sum()) / (1 + loss_now)
        rows.append({"ε": eps, "ε-sharpness (%)": keskar.sharpness,
                     "first-order prediction (%)": first_order,
                     "loss evaluations": keskar.num_loss_evaluations})
    return pd.DataFrame(rows).set_index("ε")


def perturbation_recipes(model: nn.Module, loss_fn: LossFn, X: torch.Tensor, y: torch.Tensor, *,
                         eps: float = 1e-3, num_trials: int = 10, seed: int = 0) -> pd.DataFrame:
    """The two scalings of :func:`~edutools.engine.sharpness.perturbation_sharpness`, tensor by
    tensor (index ``tensor``), from the same Gaussian draws: the size, the online recipe's noise
    norm ÷ ε (mean over trials; ≈ √size), its |ΔL|/ε and that of noise of norm ε (means), and
    the median over trials of their ratio."""
    online = perturbation_sharpness(model, loss_fn, X, y, eps=eps, num_trials=num_trials,
                                    seed=seed, noise="per_entry")
    unit = perturbation_sharpness(model, loss_fn, X, y, eps=eps, num_trials=num_trials,
                                  seed=seed, noise="norm")
    with np.errstate(divide="ignore", invalid="ignore"):
        # A norm-ε kick can leave a float32 loss unchanged (ratio inf): the median shrugs it off.
        ratios = np.nanmedian(online.values / unit.values, axis=0)
    return pd.DataFrame({
        "tensor": online.tensor_names, "entries": online.tensor_sizes,
        "√entries": np.sqrt(online.tensor_sizes),
        "online: noise norm ÷ ε": online.noise_norms.mean(0) / eps,
        "online: |ΔL|/ε": online.values.mean(0), "norm ε: |ΔL|/ε": unit.values.mean(0),
        "online ÷ norm ε": ratios,
    }).set_index("tensor")


def perturbation_along(model: nn.Module, loss_fn: LossFn, X: torch.Tensor, y: torch.Tensor,
                       checkpoints: Sequence[Checkpoint], *, eps: float = 1e-3,
                       num_trials: int = 10, seed: int = 0, noise: str = "norm") -> np.ndarray:
    """:func:`~edutools.engine.sharpness.perturbation_sharpness` (``noise`` = ``"norm"`` or the
    online ``"per_entry"``) at every checkpoint (trial noise seeded ``seed + i`` at checkpoint i),
    shape (num checkpoints,). ``model`` is not changed."""
    probe = copy.deepcopy(model)
    values = []
    for i, (_, parameters) in enumerate(checkpoints):
        set_flat_params(probe, parameters)
        values.append(perturbation_sharpness(probe, loss_fn, X, y, eps=eps, noise=noise,
                                             num_trials=num_trials, seed=seed + i).sharpness)
    return np.asarray(values)
