"""Adam's preconditioned Hessian P⁻¹H as a symmetric operator, for its top eigenvalue.

Cohen et al. 2022 ("Adaptive gradient methods at the edge of stability") show that full-batch
Adam drives the *preconditioned sharpness* λ_max(P⁻¹H) up to (2+2β₁)/((1−β₁)η), with

    P = (1 − β₁ᵗ) · diag(√(v_t / (1 − β₂ᵗ)) + ε),

built from the optimizer's second-moment estimate v_t (``exp_avg_sq``; ``max_exp_avg_sq`` under
``amsgrad``) and its step count t. ``torch.optim.Adam``'s update θ ← θ − η m̂/(√v̂ + ε), with
m̂ = m_t/(1 − β₁ᵗ) and v̂ = v_t/(1 − β₂ᵗ), is then θ ← θ − η P⁻¹ m_t. P⁻¹H is not symmetric, but
P^{-1/2} H P^{-1/2} is similar to it (same eigenvalues) and symmetric, so Lanczos applies:
:class:`PreconditionedHessianOperator` applies it with one HVP per product.
"""

from __future__ import annotations

import torch
from torch import nn

from edutools.engine.sharpness.operators.hessian import HessianOperator
from edutools.engine.sharpness.operators.params import trainable_named_parameters


def adam_preconditioner(optimizer: torch.optim.Adam, model: nn.Module) -> torch.Tensor:
    """The diagonal of Adam's preconditioner P now, as a flat vector of shape ``(num_params,)``.

    In the layout of the model's trainable parameters (the sharpness package's flat vectors), on
    their device and dtype. Each entry is (1 − β₁ᵗ)(√(v/(1 − β₂ᵗ)) + ε) with that parameter's
    group's β₁, β₂, ε and its own state's t and v. A parameter without Adam state (never given a
    gradient, so Adam never moved it) gets +inf: P⁻¹ = 0 there, as Adam's step.

    Raises ``ValueError`` if no parameter has Adam state yet (before the first step).
    """
    group_of = {id(p): group for group in optimizer.param_groups for p in group["params"]}
    parts, found = [], False
    for _, param in trainable_named_parameters(model):
        state, group = optimizer.state.get(param, {}), group_of.get(id(param))
        if group is None or "exp_avg_sq" not in state:
            parts.append(torch.full_like(param, float("inf")).reshape(-1))
            continue
        found = True
        beta1, beta2 = (float(beta) for beta in group["betas"])
        step = float(state["step"])
        second = state["max_exp_avg_sq"] if group.get("amsgrad", False) else state["exp_avg_sq"]
        denominator = (second / (1.0 - beta2 ** step)).sqrt() + float(group["eps"])
        parts.append(((1.0 - beta1 ** step) * denominator).reshape(-1).to(param.dtype))
    if not found:
        raise ValueError(f"{type(optimizer).__name__} has no state yet: its preconditioner "
                         "exists only after the first optimizer step")
    return torch.cat(parts)


class PreconditionedHessianOperator:
    """``v ↦ P^{-1/2} (H + shift·I) P^{-1/2} v``: same eigenvalues as P⁻¹(H + shift·I).

    Has :class:`HessianOperator`'s interface (``num_params``, ``device``, ``dtype``,
    ``matvec``, ``num_hvps``, ``gradient``), so
    :func:`~edutools.engine.sharpness.operator_top_eigenvalues` runs Lanczos on it; each product
    is one HVP of the wrapped operator.

    Args:
        hessian: the Hessian H of the loss (its data and eval mode are the measurement's).
        preconditioner: P's diagonal, shape ``(num_params,)``, entries > 0 (+inf allowed: that
            coordinate is not preconditioned into the spectrum, P^{-1/2} = 0).
        shift: added to H before preconditioning; Adam's *coupled* weight decay wd (the step's
            gradient is g + wd·θ, whose Hessian is H + wd·I). 0 otherwise.
    """

    def __init__(self, hessian: HessianOperator, *, preconditioner: torch.Tensor,
                 shift: float = 0.0) -> None:
        if tuple(preconditioner.shape) != (hessian.num_params,):
            raise ValueError(f"preconditioner must have shape ({hessian.num_params},), got "
                             f"{tuple(preconditioner.shape)}")
        if not bool((preconditioner > 0).all()):
            raise ValueError("preconditioner entries must be > 0 (Adam's ε keeps them so)")
        self.hessian = hessian
        self.shift = float(shift)
        self.inverse_sqrt = preconditioner.to(hessian.device, hessian.dtype).rsqrt()

    @property
    def num_params(self) -> int:
        """Length of the flat vectors."""
        return self.hessian.num_params

    @property
    def device(self) -> torch.device:
        """The model's device."""
        return self.hessian.device

    @property
    def dtype(self) -> torch.dtype:
        """The model's dtype."""
        return self.hessian.dtype

    @property
    def num_hvps(self) -> int:
        """Hessian-vector products spent so far (one per :meth:`matvec`)."""
        return self.hessian.num_hvps

    def gradient(self) -> torch.Tensor:
        """The flat gradient ∇L of the wrapped loss (not preconditioned), ``(num_params,)``."""
        return self.hessian.gradient()

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        """Return ``P^{-1/2}(H + shift·I)P^{-1/2} v``, shape ``(num_params,)``."""
        scaled = self.inverse_sqrt * v.to(self.device, self.dtype)
        product = self.hessian.matvec(scaled)
        if self.shift:
            product = product + self.shift * scaled
        return self.inverse_sqrt * product
