"""Sharpness by perturbing the weights: Keskar et al.'s ε-sharpness (:func:`eps_sharpness`) and
the random-perturbation estimate that circulates online (:func:`perturbation_sharpness`, kept as a
contrast).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.optimize
import scipy.sparse.linalg
import torch
from torch import nn

from edutools.engine.sharpness.operators.params import (
    _check_data,
    _loss_and_flat_grad,
    _scalar_loss,
    evaluation_mode,
    flatten_params,
    preserved_parameters,
    set_flat_params,
    trainable_named_parameters,
)
from edutools.ground.models import LossFn
from edutools.ground.validation import check_positive, check_positive_int


@dataclass(frozen=True, eq=False)
class EpsSharpnessResult:
    """Keskar et al. (2017) ε-sharpness.

    Attributes:
        sharpness: ``100·(max_loss − loss)/(1 + loss)``, in percent; ≥ 0.
        eps: the box half-width factor ε.
        loss: training loss at the current parameters.
        max_loss: the largest loss found inside the box (a lower bound on the true maximum).
        num_loss_evaluations: loss-and-gradient evaluations spent by L-BFGS-B.
        max_iters: L-BFGS-B iteration budget per start.
        num_starts: number of L-BFGS-B runs (the start at the centre plus random starts).
    """

    sharpness: float
    eps: float
    loss: float
    max_loss: float
    num_loss_evaluations: int
    max_iters: int
    num_starts: int


def eps_sharpness(
    model: nn.Module,
    loss_fn: LossFn,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float = 1e-3,
    max_iters: int = 10,
    num_random_starts: int = 0,
    seed: int = 0,
) -> EpsSharpnessResult:
    """Keskar et al. (2017) ε-sharpness: ``100·(max_{δ∈C_ε} L(θ+δ) − L(θ)) / (1 + L(θ))``.

    ``C_ε = {δ : |δ_i| ≤ ε(|θ_i| + 1)}``, a box over the full trainable parameter space (the
    paper's ``A = I`` version). The inner maximization runs ``scipy.optimize.minimize`` with
    ``method="L-BFGS-B"`` on −L (gradient supplied, float64 on the numpy side, at most
    ``max_iters`` iterations) from δ = 0, plus ``num_random_starts`` runs from uniform random
    points of the box (seeded by ``seed``); the best loss seen anywhere is kept, so the result is
    ≥ 0 and is a lower bound on the exact maximum. A larger ε gives a larger box and so (up to
    the approximate inner solve) a larger value. Eval mode; parameters restored afterwards.
    """
    check_positive(eps, name="eps")
    check_positive_int(max_iters, name="max_iters")
    if num_random_starts < 0:
        raise ValueError(f"num_random_starts must be >= 0, got {num_random_starts}")
    _check_data(X, y)
    centre = flatten_params(model)
    centre_np = centre.detach().to("cpu", torch.float64).numpy()
    half_width = eps * (np.abs(centre_np) + 1.0)
    bounds = scipy.optimize.Bounds(-half_width, half_width)
    rng = np.random.default_rng(seed)
    evaluations = 0
    best_loss = -math.inf

    def negative_loss_and_grad(delta: np.ndarray) -> tuple[float, np.ndarray]:
        nonlocal evaluations, best_loss
        shift = torch.as_tensor(delta, dtype=torch.float64).to(centre.device, centre.dtype)
        set_flat_params(model, centre + shift)
        loss, gradient = _loss_and_flat_grad(model, loss_fn, X, y)
        evaluations += 1
        best_loss = max(best_loss, loss)
        return -loss, -gradient.detach().to("cpu", torch.float64).numpy()

    with preserved_parameters(model), evaluation_mode(model):
        base_loss, _ = _loss_and_flat_grad(model, loss_fn, X, y)
        best_loss = base_loss
        starts = [np.zeros_like(centre_np)]
        starts += [rng.uniform(-half_width, half_width) for _ in range(num_random_starts)]
        for start in starts:
            scipy.optimize.minimize(
                negative_loss_and_grad,
                start,
                jac=True,
                method="L-BFGS-B",
                bounds=bounds,
                options={"maxiter": max_iters},
            )
    return EpsSharpnessResult(
        sharpness=100.0 * (best_loss - base_loss) / (1.0 + base_loss),
        eps=eps,
        loss=base_loss,
        max_loss=best_loss,
        num_loss_evaluations=evaluations,
        max_iters=max_iters,
        num_starts=len(starts),
    )


#: How :func:`perturbation_sharpness` scales its Gaussian noise (see there).
PERTURBATION_NOISES = ("norm", "per_entry")


@dataclass(frozen=True, eq=False)
class PerturbationSharpnessResult:
    """The one-tensor-at-a-time random-perturbation estimate (a teaching contrast).

    Attributes:
        sharpness: ``max |ΔL|/eps`` over tensors and trials (loss per parameter unit).
        values: shape ``(num_trials, num_tensors)``, ``|ΔL|/eps`` for each trial and tensor.
        tensor_names: names of the trainable tensors, the columns of ``values``.
        tensor_sizes: number of entries of each tensor.
        noise_norms: shape ``(num_trials, num_tensors)``, the norm of each perturbation: ``eps``
            for ``noise="norm"``, about ``eps·√size`` for ``noise="per_entry"``.
        eps: the noise scale ε.
        noise: ``"norm"`` or ``"per_entry"``.
        loss: training loss at the unperturbed parameters.
        num_trials: number of random draws per tensor.
    """

    sharpness: float
    values: np.ndarray
    tensor_names: tuple[str, ...]
    tensor_sizes: tuple[int, ...]
    noise_norms: np.ndarray
    eps: float
    noise: str
    loss: float
    num_trials: int


def perturbation_sharpness(
    model: nn.Module,
    loss_fn: LossFn,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float = 1e-3,
    num_trials: int = 10,
    seed: int = 0,
    noise: str = "norm",
) -> PerturbationSharpnessResult:
    """The "sharpness" estimate that circulates online — and why it is a poor one.

    For each trial and each trainable tensor alone, add Gaussian noise d, measure
    ``|L(θ + d) − L(θ)| / eps`` and report the maximum. ``noise`` says how d is scaled:

    * ``"per_entry"`` — the recipe as it circulates (``p + torch.randn_like(p) * eps``): every
      entry N(0, eps²), so ‖d‖ ≈ eps·√(tensor size): bigger tensors get bigger kicks, and the
      value grows with the tensor's size.
    * ``"norm"`` (default) — the same Gaussian draw rescaled to norm ``eps`` in every tensor.

    Both draw the same Gaussian numbers for the same ``seed``, so ``per_entry`` differs from
    ``norm`` only in the length of d. By Taylor, with ``u = d/‖d‖``,
    ``ΔL/eps = (‖d‖/eps)·(g·u + (‖d‖/2)·uᵀHu) + …``: away from a critical point it measures the
    gradient (a first-order quantity, in loss per parameter unit, not loss per parameter²); at a
    minimum it is a random-direction curvature (≈ tr(H)/n per tensor block), far below λ_max.
    Compare it with :func:`lambda_max` in lesson 05. Eval mode; parameters restored afterwards;
    noise from a CPU generator seeded by ``seed``.
    """
    check_positive(eps, name="eps")
    check_positive_int(num_trials, name="num_trials")
    if noise not in PERTURBATION_NOISES:
        raise ValueError(f"noise must be one of {PERTURBATION_NOISES}, got {noise!r}")
    _check_data(X, y)
    named = trainable_named_parameters(model)
    if not named:
        raise ValueError("model has no parameters with requires_grad=True")
    generator = torch.Generator().manual_seed(seed)
    values = np.empty((num_trials, len(named)))
    norms = np.empty((num_trials, len(named)))
    with preserved_parameters(model), evaluation_mode(model), torch.no_grad():
        base_loss = float(_scalar_loss(loss_fn, model(X), y))
        for trial in range(num_trials):
            for column, (_, p) in enumerate(named):
                draw = torch.randn(p.shape, generator=generator, dtype=torch.float64)
                scale = eps if noise == "per_entry" else eps / torch.linalg.vector_norm(draw)
                perturbation = (draw * scale).to(p.device, p.dtype)
                original = p.detach().clone()
                p.add_(perturbation)
                perturbed_loss = float(_scalar_loss(loss_fn, model(X), y))
                p.copy_(original)
                values[trial, column] = abs(perturbed_loss - base_loss) / eps
                norms[trial, column] = float(torch.linalg.vector_norm(perturbation.double()))
    return PerturbationSharpnessResult(
        sharpness=float(values.max()),
        values=values,
        tensor_names=tuple(name for name, _ in named),
        tensor_sizes=tuple(p.numel() for _, p in named),
        noise_norms=norms,
        eps=eps,
        noise=noise,
        loss=base_loss,
        num_trials=num_trials,
    )


# ---------------------------------------------------------------------------------------------
