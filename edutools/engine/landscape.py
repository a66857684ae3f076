"""Loss along lines and planes in parameter space: random directions, slices, interpolations.

Directions are flat vectors over the trainable parameters, laid out as in
:mod:`edutools.engine.sharpness` (so a Hessian eigenvector is a valid direction too). Every function
evaluates the model in eval mode under ``torch.no_grad()`` and puts the parameters back exactly
as it found them. Nothing here draws: the results are arrays ready for the plotting layer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from edutools.engine.sharpness import (
    evaluation_mode,
    flatten_params,
    num_params,
    preserved_parameters,
    set_flat_params,
    trainable_named_parameters,
)
from edutools.ground.models import LossFn

MetricFn = Callable[[torch.Tensor, torch.Tensor], "torch.Tensor | float"]

__all__ = [
    "SliceResult",
    "Slice2DResult",
    "classification_accuracy",
    "interpolate",
    "loss_slice_1d",
    "loss_slice_2d",
    "random_direction",
]


@dataclass(frozen=True, eq=False)
class SliceResult:
    """Loss (and optionally a metric) along a line θ(α) in parameter space.

    Attributes:
        alphas: shape ``(A,)``, the positions along the line.
        losses: shape ``(A,)``, the training loss at each position.
        metrics: shape ``(A,)``, ``metric_fn`` at each position, or None without a metric.
    """

    alphas: np.ndarray
    losses: np.ndarray
    metrics: np.ndarray | None


@dataclass(frozen=True, eq=False)
class Slice2DResult:
    """Loss on the plane θ + α·d1 + β·d2.

    Attributes:
        alphas: shape ``(A,)``, coefficients of the first direction.
        betas: shape ``(B,)``, coefficients of the second direction.
        losses: shape ``(A, B)``; ``losses[i, j]`` is the loss at ``alphas[i]``, ``betas[j]``
            (``np.meshgrid(alphas, betas, indexing="ij")`` matches it).
        metrics: shape ``(A, B)`` like ``losses``, or None without a metric.
    """

    alphas: np.ndarray
    betas: np.ndarray
    losses: np.ndarray
    metrics: np.ndarray | None


def classification_accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Fraction of samples whose arg-max output equals the integer target (a ``metric_fn``)."""
    return float((outputs.argmax(dim=1) == targets).float().mean())


def random_direction(
    model: nn.Module,
    *,
    seed: int,
    filter_normalize: bool = True,
    ignore_biases: bool = True,
    match_global_norm: bool = False,
) -> torch.Tensor:
    """A random direction in parameter space, as a flat vector of shape ``(n_params,)``.

    Gaussian entries from a CPU generator seeded by ``seed`` (the same direction on every
    device), moved to the model's device and dtype.

    * ``filter_normalize=True`` (Li et al. 2018): for each parameter with two or more dimensions,
      every slice along dim 0 (a row of a linear layer, a filter of a convolution) is rescaled to
      the norm of the matching slice of the weights, ``‖d_i‖ = ‖w_i‖``. One-dimensional
      parameters (biases, normalization scales) are set to zero when ``ignore_biases``, or else
      copied from the parameters, as in the authors' reference code.
    * ``filter_normalize=False``: the raw Gaussian direction (one-dimensional parameters zeroed
      when ``ignore_biases``), rescaled to the norm of the whole parameter vector when
      ``match_global_norm``.

    Split it per tensor with :func:`edutools.engine.sharpness.unflatten_params`.
    """
    named = trainable_named_parameters(model)
    if not named:
        raise ValueError("model has no parameters with requires_grad=True")
    generator = torch.Generator().manual_seed(seed)
    parts = []
    for _, p in named:
        weights = p.detach().to("cpu", torch.float64)
        d = torch.randn(p.shape, generator=generator, dtype=torch.float64)
        if p.dim() <= 1:
            if ignore_biases:
                d = torch.zeros_like(d)
            elif filter_normalize:
                d = weights.clone()
        elif filter_normalize:
            rows = d.reshape(d.shape[0], -1)
            weight_rows = weights.reshape(weights.shape[0], -1)
            row_norms = torch.linalg.vector_norm(rows, dim=1, keepdim=True)
            # A tiny floor keeps a zero-norm random row (impossible in practice) finite.
            rows = rows * (torch.linalg.vector_norm(weight_rows, dim=1, keepdim=True)
                           / row_norms.clamp_min(1e-30))
            d = rows.reshape(p.shape)
        parts.append(d.reshape(-1))
    direction = torch.cat(parts)
    if not filter_normalize and match_global_norm:
        params_norm = torch.linalg.vector_norm(flatten_params(model).to("cpu", torch.float64))
        direction = direction * (params_norm / torch.linalg.vector_norm(direction).clamp_min(1e-30))
    first = named[0][1]
    return direction.to(device=first.device, dtype=first.dtype)


def loss_slice_1d(
    model: nn.Module,
    loss_fn: LossFn,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    direction: torch.Tensor,
    alphas: Sequence[float] | np.ndarray,
    metric_fn: MetricFn | None = None,
) -> SliceResult:
    """Loss along θ + α·d for each α in ``alphas`` (θ: the current parameters).

    ``direction``: flat vector of shape ``(n_params,)`` (e.g. :func:`random_direction` or a Hessian
    eigenvector). ``metric_fn(outputs, targets)`` (e.g. :func:`classification_accuracy`) is
    recorded too when given. Eval mode, no gradients; parameters restored afterwards.
    """
    alphas_np = _as_coefficients(alphas, "alphas")
    base = flatten_params(model)
    d = _as_direction(model, direction, "direction")
    points = (base + float(a) * d for a in alphas_np)
    losses, metrics = _evaluate_points(model, loss_fn, X, y, points, len(alphas_np), metric_fn)
    return SliceResult(alphas=alphas_np, losses=losses, metrics=metrics)


def loss_slice_2d(
    model: nn.Module,
    loss_fn: LossFn,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    directions: tuple[torch.Tensor, torch.Tensor],
    alphas: Sequence[float] | np.ndarray,
    betas: Sequence[float] | np.ndarray,
    metric_fn: MetricFn | None = None,
) -> Slice2DResult:
    """Loss on the grid θ + α·d1 + β·d2, ``losses[i, j]`` at ``(alphas[i], betas[j])``.

    ``directions``: two flat vectors of shape ``(n_params,)``. Costs ``len(alphas)·len(betas)``
    loss evaluations. Eval mode, no gradients; parameters restored afterwards.
    """
    if len(directions) != 2:
        raise ValueError(f"directions must be a pair (d1, d2), got {len(directions)} vectors")
    alphas_np = _as_coefficients(alphas, "alphas")
    betas_np = _as_coefficients(betas, "betas")
    d1 = _as_direction(model, directions[0], "directions[0]")
    d2 = _as_direction(model, directions[1], "directions[1]")
    base = flatten_params(model)
    # A generator, not a list: a 51 × 51 grid of full parameter vectors would not fit in memory.
    points = (base + float(a) * d1 + float(b) * d2 for a in alphas_np for b in betas_np)
    shape = (len(alphas_np), len(betas_np))
    losses, metrics = _evaluate_points(model, loss_fn, X, y, points, shape[0] * shape[1],
                                       metric_fn)
    return Slice2DResult(
        alphas=alphas_np,
        betas=betas_np,
        losses=losses.reshape(shape),
        metrics=None if metrics is None else metrics.reshape(shape),
    )


def interpolate(
    model_a: nn.Module,
    model_b: nn.Module | torch.Tensor,
    loss_fn: LossFn,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    alphas: Sequence[float] | np.ndarray,
    metric_fn: MetricFn | None = None,
) -> SliceResult:
    """Loss along θ(α) = α·θ_b + (1 − α)·θ_a, Keskar et al.'s (2017) 1-D plot.

    α = 0 is ``model_a``, α = 1 is ``model_b``; α ∈ [−1, 2] shows both basins and beyond.
    ``model_b`` is a model of the same architecture or a flat parameter vector of shape
    ``(n_params,)``. The points are evaluated in ``model_a`` (so its buffers, e.g. batch-norm
    running statistics, and frozen parameters are used throughout); its parameters are restored
    afterwards. Eval mode, no gradients.
    """
    alphas_np = _as_coefficients(alphas, "alphas")
    theta_a = flatten_params(model_a)
    if isinstance(model_b, nn.Module):
        if num_params(model_b) != theta_a.numel():
            raise ValueError(f"model_b has {num_params(model_b)} trainable parameters, "
                             f"model_a has {theta_a.numel()}")
        theta_b = flatten_params(model_b).to(device=theta_a.device, dtype=theta_a.dtype)
    else:
        theta_b = _as_direction(model_a, model_b, "model_b")
    points = (float(a) * theta_b + (1.0 - float(a)) * theta_a for a in alphas_np)
    losses, metrics = _evaluate_points(model_a, loss_fn, X, y, points, len(alphas_np), metric_fn)
    return SliceResult(alphas=alphas_np, losses=losses, metrics=metrics)


def _evaluate_points(
    model: nn.Module,
    loss_fn: LossFn,
    X: torch.Tensor,
    y: torch.Tensor,
    points: Iterable[torch.Tensor],
    num_points: int,
    metric_fn: MetricFn | None,
) -> tuple[np.ndarray, np.ndarray | None]:
    if len(X) == 0 or len(X) != len(y):
        raise ValueError(f"X and y must hold the same positive number of samples, got {len(X)} "
                         f"and {len(y)}")
    losses = np.empty(num_points)
    metrics = None if metric_fn is None else np.empty(num_points)
    with preserved_parameters(model), evaluation_mode(model), torch.no_grad():
        for i, point in enumerate(points):
            set_flat_params(model, point)
            outputs = model(X)
            losses[i] = float(loss_fn(outputs, y))
            if metrics is not None:
                metrics[i] = float(metric_fn(outputs, y))
    return losses, metrics


def _as_coefficients(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of numbers, got shape "
                         f"{array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got {array}")
    return array


def _as_direction(model: nn.Module, direction: torch.Tensor, name: str) -> torch.Tensor:
    n = num_params(model)
    if not isinstance(direction, torch.Tensor) or tuple(direction.shape) != (n,):
        shape = tuple(direction.shape) if isinstance(direction, torch.Tensor) else direction
        raise ValueError(f"{name} must be a flat tensor of shape ({n},), got {shape}")
    first = trainable_named_parameters(model)[0][1]
    return direction.detach().to(device=first.device, dtype=first.dtype)
