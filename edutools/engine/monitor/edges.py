"""The stability edge of a ``torch.optim`` optimizer, read from its param groups at one step.

:func:`optimizer_edge` turns an optimizer's current hyper-parameters (``param_groups[0]``: an LR
scheduler or a warm-up that changed ``lr`` is followed) into an :class:`OptimizerEdge`: which
curvature to compare (λ_max of the loss Hessian H, or Adam's preconditioned sharpness) and the
edge it is compared with, full-batch (for λ_max) and small-batch (for batch sharpness). The
closed forms come from :mod:`edutools.ground.theory.edges`; this module only reads the settings
and says what each formula assumes.

Derivations stated here (the others are in the theory module):

* **Dampening τ** (``torch.optim.SGD``: ``v ← βv + (1−τ)g``, ``θ ← θ − ηv``). With
  ``v' = v/(1−τ)`` this is ``v' ← βv' + g``, ``θ ← θ − η(1−τ)v'``: heavy ball with step
  η(1−τ), so every heavy-ball edge holds with η → η(1−τ), e.g. 2(1+β)/(η(1−τ)). (PyTorch's
  first step sets ``v = g`` undamped: a one-step transient that does not move the edge.)
* **Coupled weight decay** wd (SGD's ``weight_decay``): the step uses ``g + wd·θ``, the gradient
  of L + wd/2‖θ‖², whose Hessian is H + wd·I. The monitor measures H (``loss_fn`` only), so the
  edge on H is the edge on H + wd·I minus wd: every SGD edge is reported as ``formula − wd``.
  Adam's coupled ``weight_decay`` (``torch.optim.Adam``) cannot be moved to the edge, because
  P⁻¹(H + wd·I) is not P⁻¹H shifted; the monitor instead adds wd·I to H inside the
  preconditioned operator (see :mod:`.preconditioned`) and keeps the edge.
* **Adam** (Cohen et al. 2022, "Adaptive gradient methods at the edge of stability"): with the
  preconditioner P = (1−β₁ᵗ)·diag(√(v_t/(1−β₂ᵗ)) + ε) frozen, Adam's momentum
  ``m ← β₁m + (1−β₁)g`` along an eigenvector of P⁻¹H of eigenvalue a is heavy ball with
  gradient scale (1−β₁): stable iff a < (2 + 2β₁)/((1−β₁)η).
* **AdamW's decoupled weight decay** wd (``θ ← (1 − η·wd)θ − η·(Adam step)``). With c = 1 − η·wd
  the same recurrence reads ``x_{t+1} = (c − ηa(1−β₁) + β₁) x_t − β₁c x_{t−1}``; its root crosses
  −1 at ηa(1−β₁) = (1+β₁)(1+c), so the edge is (2+2β₁)/((1−β₁)η) − wd(1+β₁)/(1−β₁).
* **SAM** (the course's :class:`~edutools.engine.sam.SAM` on plain SGD): λ_SAM(η, ρ, ‖g‖) of
  Long & Bartlett 2023, which needs the full-batch gradient norm ‖g‖ at the step (the monitor
  measures it on its probe). With a momentum or adaptive base there is no formula here.

Any other optimizer gets ``full_batch = small_batch = None`` and the note
``"no edge formula for <ClassName>"``; the monitor still measures its curvature.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch

from edutools.engine.sam.optimizer import SAM
from edutools.ground.theory.edges import (
    gd_edge,
    momentum_edge,
    sam_edge,
    small_batch_momentum_edge,
)

#: The curvatures an edge can refer to (the monitor's record columns).
LAMBDA_MAX = "lambda_max"
PRECONDITIONED = "preconditioned_sharpness"


@dataclass(frozen=True)
class OptimizerEdge:
    """The edge of one optimizer at one step, from ``param_groups[0]``.

    Attributes:
        optimizer: the optimizer's name: its class name, ``"SAM(SGD)"`` for the course's SAM.
        lr: η of group 0 at this step.
        momentum: β (SGD's ``momentum``) or β₁ (Adam's ``betas[0]``); 0 when there is none.
        dampening: SGD's τ (0 otherwise).
        nesterov: SGD's ``nesterov`` flag.
        weight_decay: group 0's ``weight_decay`` (coupled for SGD and Adam, decoupled for AdamW).
        rho: SAM's radius ρ (parameter units); None for other optimizers.
        curvature: what the full-batch edge is compared with: ``"lambda_max"`` (λ_max of the
            Hessian H of ``loss_fn``) or ``"preconditioned_sharpness"`` (Adam's λ_max(P⁻¹H)).
        full_batch: the edge for that curvature (1/parameter², as Hessian eigenvalues); None
            when there is no formula.
        full_batch_name: the formula, e.g. ``"2(1+β)/η"``, ``"2/η − wd"`` ("" when None).
        small_batch: the edge for batch sharpness (small batches); None when there is none.
        small_batch_name: its formula ("" when None).
        notes: what the formulas assume, or why one is missing (one sentence each).
    """

    optimizer: str
    lr: float
    momentum: float = 0.0
    dampening: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    rho: float | None = None
    curvature: str = LAMBDA_MAX
    full_batch: float | None = None
    full_batch_name: str = ""
    small_batch: float | None = None
    small_batch_name: str = ""
    notes: tuple[str, ...] = ()

    @property
    def description(self) -> str:
        """The optimizer and its non-default settings, e.g. ``"SGD, lr=0.1, momentum=0.9"``."""
        parts = [self.optimizer, f"lr={self.lr:.4g}"]
        beta = "beta1" if self.curvature == PRECONDITIONED else "momentum"
        for name, value in ((beta, self.momentum), ("dampening", self.dampening),
                            ("weight_decay", self.weight_decay)):
            if value:
                parts.append(f"{name}={value:.4g}")
        if self.nesterov:
            parts.append("nesterov")
        if self.rho is not None:
            parts.append(f"rho={self.rho:.4g}")
        return ", ".join(parts)


def optimizer_edge(optimizer: torch.optim.Optimizer, *,
                   grad_norm: float | None = None) -> OptimizerEdge:
    """The :class:`OptimizerEdge` of ``optimizer`` now, read from ``optimizer.param_groups[0]``.

    Args:
        optimizer: a ``torch.optim`` optimizer (SGD, Adam, AdamW and the course's SAM have
            formulas; any other gets None edges and a note saying so).
        grad_norm: full-batch gradient norm ‖g‖ (loss per parameter unit) at this step; only
            SAM's edge needs it (None: SAM's edge is None, with a note).

    Groups with other ``lr``/``momentum``/``betas`` than group 0 are noted, not averaged.
    """
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ValueError(f"optimizer must be a torch.optim.Optimizer, got "
                         f"{type(optimizer).__name__}")
    group = optimizer.param_groups[0]
    notes = _mixed_groups_note(optimizer.param_groups)
    if isinstance(optimizer, SAM):
        edge = _sam_edge(optimizer, group, grad_norm)
    elif isinstance(optimizer, torch.optim.Adam):  # AdamW is a subclass in torch ≥ 2.6
        edge = _adam_edge(optimizer, group)
    elif type(optimizer) is torch.optim.SGD:
        edge = _sgd_edge(group)
    else:
        name = type(optimizer).__name__
        edge = OptimizerEdge(optimizer=name, lr=_number(group["lr"]),
                             weight_decay=_number(group.get("weight_decay", 0.0)),
                             notes=(f"no edge formula for {name}",))
    return _with_notes(edge, notes)


# ---------------------------------------------------------------------------------------------


def _sgd_edge(group: dict[str, Any]) -> OptimizerEdge:
    lr, beta = _number(group["lr"]), _number(group.get("momentum", 0.0))
    tau, wd = _number(group.get("dampening", 0.0)), _number(group.get("weight_decay", 0.0))
    nesterov = bool(group.get("nesterov", False))
    notes: list[str] = []
    step = lr * (1.0 - tau)  # dampening τ is heavy ball with step η(1−τ) (module docstring)
    if beta == 0:
        full, full_name = gd_edge(step), "2/η"
        small, small_name = full, full_name
    elif nesterov:
        full, full_name = momentum_edge(step, beta, nesterov=True), "(2+2β)/(η(1+2β))"
        small, small_name = None, ""
        notes.append("no small-batch edge formula for Nesterov momentum")
    else:
        full, full_name = momentum_edge(step, beta), "2(1+β)/η"
        small, small_name = small_batch_momentum_edge(step, beta), "2(1−β)/η"
    if tau and beta:
        full_name, small_name = (_damped(n) for n in (full_name, small_name))
        notes.append(f"dampening τ={tau:g}: heavy ball with step η(1−τ) = {step:.4g}")
    if wd:
        full, full_name = full - wd, full_name + " − wd"
        if small is not None:
            small, small_name = small - wd, small_name + " − wd"
        notes.append(f"weight decay wd={wd:g}: the step's Hessian is H + wd·I, so the edge on "
                     f"H (measured) is the formula minus wd")
    return OptimizerEdge(optimizer="SGD", lr=lr, momentum=beta, dampening=tau, nesterov=nesterov,
                         weight_decay=wd, full_batch=full, full_batch_name=full_name,
                         small_batch=small, small_batch_name=small_name, notes=tuple(notes))


def _adam_edge(optimizer: torch.optim.Adam, group: dict[str, Any]) -> OptimizerEdge:
    lr, (beta1, _) = _number(group["lr"]), group["betas"]
    beta1, wd = _number(beta1), _number(group.get("weight_decay", 0.0))
    decoupled = bool(group.get("decoupled_weight_decay",
                               isinstance(optimizer, torch.optim.AdamW)))
    edge = (2.0 + 2.0 * beta1) / ((1.0 - beta1) * lr)
    name = "(2+2β₁)/((1−β₁)η)"
    notes = ["compared with the preconditioned sharpness λ_max(P⁻¹H), "
             "P = (1−β₁ᵗ)·diag(√(v_t/(1−β₂ᵗ)) + ε) (Cohen et al. 2022)",
             "no small-batch edge formula for Adam"]
    if wd and decoupled:
        edge -= wd * (1.0 + beta1) / (1.0 - beta1)
        name += " − wd(1+β₁)/(1−β₁)"
        notes.append(f"decoupled weight decay wd={wd:g} shrinks θ by 1 − η·wd each step, "
                     "which lowers the edge by wd(1+β₁)/(1−β₁)")
    elif wd:
        notes.append(f"coupled weight decay wd={wd:g}: the measured operator is "
                     "P^(−1/2)(H + wd·I)P^(−1/2), the Hessian the step sees")
    return OptimizerEdge(optimizer=type(optimizer).__name__, lr=lr, momentum=beta1,
                         weight_decay=wd, curvature=PRECONDITIONED, full_batch=edge,
                         full_batch_name=name, notes=tuple(notes))


def _sam_edge(optimizer: SAM, group: dict[str, Any], grad_norm: float | None) -> OptimizerEdge:
    base = type(optimizer.base_optimizer)
    name = f"SAM({base.__name__})"
    lr, rho = _number(group["lr"]), _number(group["sam_rho"])
    beta, wd = _number(group.get("momentum", 0.0)), _number(group.get("weight_decay", 0.0))
    settings = dict(optimizer=name, lr=lr, momentum=beta, weight_decay=wd, rho=rho)
    if base is not torch.optim.SGD or beta or wd or group.get("sam_adaptive", False):
        why = (f"no edge formula for {name} with these settings (Long & Bartlett's λ_SAM is for "
               "SAM on plain SGD, no momentum, weight decay or ASAM)")
        return OptimizerEdge(**settings, notes=(why,))
    if grad_norm is None or not math.isfinite(grad_norm):
        return OptimizerEdge(**settings, notes=("SAM's edge needs the gradient norm ‖g‖",))
    edge = sam_edge(lr, rho, grad_norm)
    note = f"λ_SAM at the probe's gradient norm ‖g‖ = {grad_norm:.4g} (Long & Bartlett 2023)"
    return OptimizerEdge(**settings, full_batch=edge, full_batch_name="λ_SAM(η, ρ, ‖g‖)",
                         notes=(note, "no small-batch edge formula for SAM"))


def _damped(name: str) -> str:
    return name.replace("/η", "/(η(1−τ))") if name.endswith("/η") else \
        name.replace("(η(1+2β))", "(η(1−τ)(1+2β))")


def _mixed_groups_note(groups: list[dict[str, Any]]) -> tuple[str, ...]:
    keys = ("lr", "momentum", "betas", "dampening", "weight_decay")
    first = {key: groups[0].get(key) for key in keys}
    if all({key: group.get(key) for key in keys} == first for group in groups[1:]):
        return ()
    return (f"the {len(groups)} param groups differ: the edge is group 0's",)


def _with_notes(edge: OptimizerEdge, extra: tuple[str, ...]) -> OptimizerEdge:
    return dataclasses.replace(edge, notes=edge.notes + extra) if extra else edge


def _number(value: Any) -> float:
    # Schedulers may store lr as a 0-d tensor (capturable optimizers); read it as a float.
    return float(value.item() if isinstance(value, torch.Tensor) else value)
