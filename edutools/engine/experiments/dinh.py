"""Rescalings that leave a ReLU network's function unchanged (Dinh et al. 2017).

Engine layer. A positively homogeneous activation σ satisfies σ(α·z) = α·σ(z) for every α > 0
(ReLU, leaky ReLU, the identity; dropout too). Multiplying one linear layer's weights *and bias* by
α and the next linear layer's weights by 1/α then leaves the network's output unchanged for every
input: the hidden units are α times larger, and the next layer divides them back.

In terms of the flat parameter vector of :mod:`edutools.engine.sharpness` the rescaling is
θ' = D·θ, with
D a diagonal of factors (α on the first layer, 1/α on the next layer's weights, 1 elsewhere;
:func:`rescaling_factors`). The loss of the new parameters is L'(θ') = L(θ'/D), so by the chain rule

* the gradient becomes ∇L/D, and
* the Hessian becomes H' = D⁻¹·H·D⁻¹, entry by entry H'_ij = H_ij / (D_i D_j):

the block of the rescaled layer is divided by α², the next layer's weight block is multiplied by
α², their cross block is unchanged. The function is the same, yet its sharpness λ_max is not:
curvature in parameter space depends on how the function is parametrized.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import pandas as pd
import torch
from torch import nn

from edutools.engine.sharpness import (
    eps_sharpness,
    exact_hessian,
    lambda_max,
    trainable_named_parameters,
)
from edutools.ground.models import LossFn

#: Modules through which the rescaling passes unchanged: σ(α·z) = α·σ(z) for α > 0.
HOMOGENEOUS_MODULES: tuple[type[nn.Module], ...] = (nn.ReLU, nn.LeakyReLU, nn.Identity,
                                                    nn.Dropout)

__all__ = [
    "HOMOGENEOUS_MODULES",
    "alpha_sweep",
    "parameter_slices",
    "rescale_layers",
    "rescaling_check",
    "rescaling_factors",
]


def parameter_slices(model: nn.Module) -> dict[str, slice]:
    """Where each trainable parameter sits in the flat parameter vector.

    Returns ``{name: slice}`` in ``model.named_parameters()`` order (the layout of every flat
    vector in :mod:`edutools.engine.sharpness`), e.g. ``H[s, s]`` with ``s = slices["3.weight"]`` is
    that tensor's Hessian block.
    """
    slices: dict[str, slice] = {}
    start = 0
    for name, p in trainable_named_parameters(model):
        slices[name] = slice(start, start + p.numel())
        start += p.numel()
    if not slices:
        raise ValueError("model has no parameters with requires_grad=True")
    return slices


def rescale_layers(model: nn.Sequential, alpha: float, *, layer: int = 0) -> nn.Sequential:
    """A rescaled copy of ``model`` that computes the same function (``model`` is not changed).

    Linear layer number ``layer`` (counting only ``nn.Linear`` modules, from 0) gets its weights
    and bias multiplied by ``alpha``; the next linear layer gets its weights divided by
    ``alpha`` (its bias is unchanged). Every module between the two must be positively
    homogeneous (:data:`HOMOGENEOUS_MODULES`), otherwise the function would change.

    Raises:
        ValueError: ``alpha`` is not a finite number > 0; ``model`` is not an ``nn.Sequential``;
            there is no linear layer after number ``layer``; a module between the two layers is
            not positively homogeneous (e.g. tanh: tanh(α·z) ≠ α·tanh(z)).
    """
    first, second = _layer_pair(model, alpha, layer)
    rescaled = copy.deepcopy(model)
    with torch.no_grad():
        rescaled[first].weight.mul_(alpha)
        if rescaled[first].bias is not None:
            rescaled[first].bias.mul_(alpha)
        rescaled[second].weight.div_(alpha)
    return rescaled


def rescaling_factors(model: nn.Sequential, alpha: float, *, layer: int = 0) -> torch.Tensor:
    """The flat vector D with θ_rescaled = D·θ for :func:`rescale_layers` (same arguments).

    Shape ``(n_params,)``, on the model's device and in its dtype: ``alpha`` on the weights and
    bias of linear layer ``layer``, ``1/alpha`` on the weights of the next one, 1 elsewhere.
    The Hessian of the rescaled model is ``H / torch.outer(D, D)``.
    """
    first, second = _layer_pair(model, alpha, layer)
    slices = parameter_slices(model)
    reference = next(p for _, p in trainable_named_parameters(model))
    factors = torch.ones(sum(s.stop - s.start for s in slices.values()),
                         device=reference.device, dtype=reference.dtype)
    for name, part in slices.items():
        module, _, kind = name.rpartition(".")
        if module == str(first):
            factors[part] = alpha
        elif module == str(second) and kind == "weight":
            factors[part] = 1.0 / alpha
    return factors


def _layer_pair(model: nn.Module, alpha: float, layer: int) -> tuple[int, int]:
    """Positions in ``model`` of linear layer ``layer`` and the next one, after the checks."""
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not math.isfinite(alpha) \
            or alpha <= 0:
        raise ValueError(f"alpha must be a finite number > 0 (ReLU(α·z) = α·ReLU(z) needs α > 0), "
                         f"got {alpha!r}")
    if not isinstance(model, nn.Sequential):
        raise ValueError("model must be an nn.Sequential (as built by edutools.ground.models.mlp), "
                         f"got {type(model).__name__}")
    linears = [i for i, module in enumerate(model) if isinstance(module, nn.Linear)]
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < len(linears) - 1:
        raise ValueError(f"layer must be the index of a linear layer followed by another one, "
                         f"0 <= layer < {len(linears) - 1} here ({len(linears)} linear layers), "
                         f"got {layer!r}")
    first, second = linears[layer], linears[layer + 1]
    for i in range(first + 1, second):
        module = model[i]
        if not isinstance(module, HOMOGENEOUS_MODULES):
            raise ValueError(
                f"module {i} ({type(module).__name__}) between linear layers {first} and {second} "
                f"is not positively homogeneous (σ(α·z) ≠ α·σ(z)), so rescaling would change the "
                f"function; allowed: {', '.join(m.__name__ for m in HOMOGENEOUS_MODULES)}")
    return first, second


def rescaling_check(model: nn.Sequential, alpha: float, loss_fn: LossFn, X: torch.Tensor,
                    y: torch.Tensor, *, inputs: Sequence[torch.Tensor],
                    layer: int = 0) -> pd.Series:
    """Dinh et al.'s claims on one rescaling, measured exactly (the model must be small enough
    for :func:`~edutools.engine.sharpness.exact_hessian`; use float64).

    Returns a Series with the largest output change over ``inputs``, the largest relative gap
    of the rescaled layer's weight block to H/α², of the next layer's weight block to α²·H and of
    the whole Hessian to D⁻¹HD⁻¹, and λ_max before and after.
    """
    rescaled = rescale_layers(model, alpha, layer=layer)
    with torch.no_grad():
        max_output_change = max(float((rescaled(batch) - model(batch)).abs().max())
                                for batch in inputs)
    hessian = exact_hessian(model, loss_fn, X, y)
    hessian_rescaled = exact_hessian(rescaled, loss_fn, X, y)
    first, second = _layer_pair(model, alpha, layer)
    blocks = parameter_slices(model)
    w1, w2 = blocks[f"{first}.weight"], blocks[f"{second}.weight"]
    factors = rescaling_factors(model, alpha, layer=layer)

    def max_relative_gap(a: torch.Tensor, b: torch.Tensor) -> float:
        return float((a - b).abs().max() / b.abs().max())

    return pd.Series({
        "max |Δ output| (train and validation)": max_output_change,
        "first-layer weight block vs H/α²": max_relative_gap(hessian_rescaled[w1, w1],
                                                            hessian[w1, w1] / alpha**2),
        "second-layer weight block vs α²·H": max_relative_gap(hessian_rescaled[w2, w2],
                                                             alpha**2 * hessian[w2, w2]),
        "whole Hessian vs D⁻¹HD⁻¹": max_relative_gap(hessian_rescaled,
                                                    hessian / torch.outer(factors, factors)),
        "λ_max before": float(torch.linalg.eigvalsh(hessian)[-1]),
        "λ_max after": float(torch.linalg.eigvalsh(hessian_rescaled)[-1]),
    })


def alpha_sweep(model: nn.Sequential, alphas: Sequence[float], loss_fn: LossFn,
                X: torch.Tensor, y: torch.Tensor, *, eps: float = 1e-3, tol: float = 1e-8,
                max_hvps: int = 300, layer: int = 0) -> pd.DataFrame:
    """For each α, the rescaled copy's training loss (the same function: constant), its λ_max
    (Lanczos to ``tol``) and its ε-sharpness at ``eps``; indexed by ``α``."""
    rows = []
    for alpha in alphas:
        net = rescale_layers(model, float(alpha), layer=layer)
        with torch.no_grad():
            loss = float(loss_fn(net(X), y))
        rows.append({
            "α": alpha,
            "training loss": loss,
            "λ_max": lambda_max(net, loss_fn, X, y, tol=tol, max_hvps=max_hvps),
            "ε-sharpness": eps_sharpness(net, loss_fn, X, y, eps=eps).sharpness,
        })
    return pd.DataFrame(rows).set_index("α")
