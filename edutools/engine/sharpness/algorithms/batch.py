"""Batch sharpness E_B[g_Bᵀ H_B g_B / ‖g_B‖²]: the curvature SGD feels along its own step
(Andreyev & Beneventano 2024).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from edutools.engine.sharpness.operators.hessian import (
    DEFAULT_HVP_METHOD,
    HessianOperator,
    HvpMethod,
)
from edutools.engine.sharpness.operators.params import _check_data
from edutools.ground.models import LossFn
from edutools.ground.validation import check_positive_int


@dataclass(frozen=True, eq=False)
class BatchSharpnessResult:
    """Batch sharpness E_B[g_Bᵀ H_B g_B / ‖g_B‖²] over random mini-batches.

    Attributes:
        mean: the average ratio (loss per parameter², comparable with 2/η).
        standard_error: sample standard deviation / √num_batches (NaN for one batch).
        values: shape ``(num_batches,)``, the ratio per batch (NaN where g_B = 0).
        batch_indices: shape ``(num_batches, batch_size)`` int64, the samples of each batch.
        batch_size: samples per batch.
        num_batches: number of batches.
    """

    mean: float
    standard_error: float
    values: np.ndarray
    batch_indices: np.ndarray
    batch_size: int
    num_batches: int


def batch_sharpness(
    model: nn.Module,
    loss_fn: LossFn,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    batch_size: int,
    num_batches: int = 100,
    seed: int = 0,
    method: HvpMethod = DEFAULT_HVP_METHOD,
) -> BatchSharpnessResult:
    """Batch sharpness, the curvature of the mini-batch loss along its own gradient.

    For each of ``num_batches`` batches B — ``batch_size`` distinct indices drawn afresh from the
    n samples by ``torch.randperm(n, generator)[:batch_size]`` with a CPU generator seeded by
    ``seed`` — compute ``g_B = ∇L_B`` and ``g_Bᵀ H_B g_B / ‖g_B‖²`` (one gradient and one HVP),
    and average the ratios (mean outside the ratio, Andreyev & Beneventano 2024). With
    ``batch_size = n`` it is the full-batch gradient's Rayleigh quotient, ≤ λ_max. Eval mode.
    """
    _check_data(X, y)
    n = len(X)
    check_positive_int(batch_size, name="batch_size")
    if not 1 <= batch_size <= n:
        raise ValueError(f"batch_size must be between 1 and the number of samples ({n}), "
                         f"got {batch_size}")
    check_positive_int(num_batches, name="num_batches")
    generator = torch.Generator().manual_seed(seed)
    values = np.empty(num_batches)
    indices = np.empty((num_batches, batch_size), dtype=np.int64)
    for b in range(num_batches):
        batch = torch.randperm(n, generator=generator)[:batch_size]
        indices[b] = batch.numpy()
        batch = batch.to(X.device)
        operator = HessianOperator(model, loss_fn, X[batch], y[batch], method=method)
        gradient = operator.gradient()
        squared_norm = float(torch.dot(gradient, gradient))
        if not math.isfinite(squared_norm):
            raise ValueError(f"the gradient on batch {b} is not finite (‖g‖² = {squared_norm}): "
                             "the model's outputs on that batch hold NaN or inf")
        curvature = float(torch.dot(gradient, operator.matvec(gradient)))
        values[b] = curvature / squared_norm if squared_norm > 0 else float("nan")
    standard_error = (
        float(values.std(ddof=1) / math.sqrt(num_batches)) if num_batches > 1 else float("nan")
    )
    return BatchSharpnessResult(
        mean=float(values.mean()),
        standard_error=standard_error,
        values=values,
        batch_indices=indices,
        batch_size=batch_size,
        num_batches=num_batches,
    )
