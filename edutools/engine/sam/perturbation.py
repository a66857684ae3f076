"""The ascent step of SAM and ASAM: the perturbation ε̂ added to the weights θ.

SAM (Foret et al. 2021): ε̂ = ρ·g/‖g‖, the norm taken over ALL parameters together, so that
‖ε̂‖ = ρ exactly.

ASAM (Kwon et al. 2021, element-wise operator with the offset η of their code): for a weight
tensor w with more than one dimension T_w = |w| + η; for a 1-D tensor (bias, normalisation scale
or shift) T_w = 1. Then ε̂ = ρ·T_w²g/‖T_w g‖, so that ‖T_w⁻¹ε̂‖ = ρ exactly: the ball has radius ρ
in the rescaled coordinates w/T_w, and is therefore larger for large weights.

These functions are pure tensor code shared by the :class:`~edutools.engine.sam.SAM` optimizer and
by :func:`~edutools.engine.sam.m_sharpness_gradient`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

# The checks live with the package's other argument checks; imported here for the old path.
from edutools.ground.validation import check_asam_eta, check_rho

__all__ = ["AscentResult", "asam_scale", "ascent_perturbation", "check_asam_eta", "check_rho",
           "global_norm"]


def asam_scale(param: torch.Tensor, *, asam_eta: float = 0.01) -> torch.Tensor | None:
    """The diagonal of ASAM's T_w for one parameter tensor: |w| + η, same shape as ``param``.

    Returns ``None`` (meaning T_w = identity) for tensors with at most one dimension: biases and
    normalisation scales are not rescaled, as in Kwon et al.'s own code (where, however, the test
    is the parameter's *name* containing "weight", so BatchNorm scales are rescaled there).
    """
    if param.ndim <= 1:
        return None
    return param.detach().abs().add_(asam_eta)


def ascent_perturbation(params: Sequence[torch.Tensor], grads: Sequence[torch.Tensor], *,
                        rho: float | Sequence[float], adaptive: bool | Sequence[bool] = False,
                        asam_eta: float | Sequence[float] = 0.01) -> AscentResult:
    """ε̂ for SAM (``adaptive=False``) or ASAM (``adaptive=True``) from the gradient g at θ.

    Args:
        params: the parameter tensors θ (used only by ASAM's T_w), any shapes.
        grads: the gradient g, one tensor per parameter, same shapes; ``None`` is not allowed
            (leave such parameters out of both lists).
        rho: radius ρ ≥ 0, a float or one per tensor (the optimizer passes its groups' values;
            with different values ‖ε̂‖ is no longer ρ).
        adaptive: ASAM or SAM, a bool or one per tensor.
        asam_eta: ASAM offset η ≥ 0, a float or one per tensor.

    Returns:
        An :class:`AscentResult`: ``perturbation`` (ε̂ per tensor, new tensors), ``grad_norm``
        (‖T_w g‖ as a float; ‖g‖ for SAM) and ``finite`` (False if g held inf/NaN). When g = 0
        or g is not finite, ε̂ = 0: there is no ascent direction, and no NaN is produced.
    """
    count = len(params)
    if len(grads) != count:
        raise ValueError(f"params and grads must have the same length, got {count} and "
                         f"{len(grads)}")
    rhos = _per_tensor(rho, count, "rho")
    flags = _per_tensor(adaptive, count, "adaptive")
    etas = _per_tensor(asam_eta, count, "asam_eta")
    with torch.no_grad():
        # Indices of the tensors ASAM rescales (more than one dimension); the rest keep T_w = 1.
        rescaled = [i for i in range(count) if flags[i] and params[i].ndim > 1]
        scaled = list(grads)
        scales: list[torch.Tensor] = []
        if rescaled:
            scales = list(torch._foreach_abs([params[i].detach() for i in rescaled]))
            for i, s in zip(rescaled, scales, strict=True):
                s.add_(etas[i])
                scaled[i] = grads[i] * s
        norm = global_norm(scaled)
        finite = math.isfinite(norm)
        if not finite or norm == 0.0 or count == 0:
            perturbation = tuple(torch.zeros_like(g) for g in grads)
        else:
            if len(set(rhos)) == 1:
                eps = list(torch._foreach_mul(scaled, rhos[0] / norm))
            else:
                eps = [t * (r / norm) for t, r in zip(scaled, rhos, strict=True)]
            for i, s in zip(rescaled, scales, strict=True):
                eps[i].mul_(s)
            perturbation = tuple(eps)
    return AscentResult(perturbation=perturbation, grad_norm=norm, finite=finite)


def global_norm(tensors: Sequence[torch.Tensor]) -> float:
    """Euclidean norm of all ``tensors`` together, as a Python float (0.0 for an empty list).

    Each tensor's norm is taken in its own dtype, at least float32, on its own device; the
    norm of those norms on the first tensor's device.
    """
    if not tensors:
        return 0.0
    if all(t.dtype in (torch.float32, torch.float64) for t in tensors):
        norms = torch._foreach_norm(list(tensors))
    else:  # half-precision tensors: reduce in float32, their own precision is too coarse
        norms = [torch.linalg.vector_norm(t, dtype=torch.promote_types(t.dtype, torch.float32))
                 for t in tensors]
    device = tensors[0].device
    if any(n.device != device for n in norms):
        norms = [n.to(device) for n in norms]
    return float(torch.linalg.vector_norm(torch.stack(norms)))


def _per_tensor(value, count: int, name: str) -> list:
    if isinstance(value, (list, tuple)):
        if len(value) != count:
            raise ValueError(f"{name} must be a single value or one per tensor ({count}), got "
                             f"{len(value)} values")
        return list(value)
    return [value] * count


@dataclass(frozen=True)
class AscentResult:
    """What :func:`ascent_perturbation` returns.

    Attributes:
        perturbation: ε̂, one tensor per parameter (same shapes as the parameters).
        grad_norm: ‖T_w g‖ over all tensors (‖g‖ for SAM), a float; inf/NaN if g was not finite.
        finite: whether g was finite; if not, ε̂ = 0.
    """

    perturbation: tuple[torch.Tensor, ...]
    grad_norm: float
    finite: bool
