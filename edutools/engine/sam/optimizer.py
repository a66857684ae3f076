"""The :class:`SAM` optimizer: SAM, ASAM and the stale-ascent variant around any base optimizer."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from edutools.engine.sam.m_sharpness import MSharpnessGradient, m_sharpness_gradient
from edutools.engine.sam.perturbation import (
    ascent_perturbation,
    check_asam_eta,
    check_rho,
    global_norm,
)
from edutools.engine.training.protocols import TwoPassOptimizer
from edutools.ground.validation import check_param_groups, check_positive_int

# Keys SAM adds to every param group. Prefixed so that they never collide with a base
# optimizer's own hyper-parameters (torch.optim.Adadelta has a "rho" of its own).
GROUP_KEYS = ("sam_rho", "sam_adaptive", "sam_asam_eta")


class SAM(torch.optim.Optimizer, TwoPassOptimizer):
    """Sharpness-Aware Minimization wrapped around any ``torch.optim`` optimizer.

    One SAM step: take the gradient g at θ; move to θ + ε̂ with ε̂ = ρ·g/‖g‖ (norm over all
    parameters together, so ‖ε̂‖ = ρ); take the gradient there; copy θ back (bit for bit, from
    a saved copy: subtracting ε̂ would not give θ back exactly in floating point); let the base
    optimizer step with that gradient (Foret et al. 2021, arXiv 2010.01412). At g = 0 (or a
    non-finite g) ε̂ = 0, with no ``+ 1e-12`` in the norm. The interface is that of
    davda54/sam::

        sam = SAM(model.parameters(), torch.optim.SGD, rho=0.05, lr=0.1, momentum=0.9)
        # (a) two calls
        loss_fn(model(X), y).backward()          # gradient at θ
        sam.first_step(zero_grad=True)           # θ → θ + ε̂
        loss_fn(model(X), y).backward()          # gradient at θ + ε̂
        sam.second_step(zero_grad=True)          # θ back, base step
        # (b) a closure doing forward + backward and returning the loss
        def closure():
            loss = loss_fn(model(X), y)
            loss.backward()
            return loss
        sam.zero_grad()
        loss = sam.step(closure)                 # returns the loss at θ + ε̂

    With (b), ``step`` calls the closure at θ itself when no parameter has a gradient yet
    (``zero_grad()`` first, as above); if the gradient at θ is already there (davda54's
    ``loss.backward(); sam.step(closure)``) it calls the closure once, at θ + ε̂.

    Args:
        params: parameters or param groups, as for any optimizer. A group may set its own
            ``sam_rho``, ``sam_adaptive``, ``sam_asam_eta``; ε̂ always uses the norm over all
            groups, so ‖ε̂‖ = ρ only when every group has the same ρ.
        base_optimizer: the optimizer *class* doing the descent step (default
            ``torch.optim.SGD``; heavy-ball momentum v ← βv + g, θ ← θ − ηv).
        rho: radius ρ ≥ 0 of the ascent step, in parameter units (ρ = 0: the base optimizer).
        adaptive: ASAM (Kwon et al. 2021, arXiv 2102.11600): ε̂ = ρ·T_w²g/‖T_w g‖ with
            T_w = |w| + η for tensors with more than one dimension and T_w = 1 for 1-D ones
            (biases, norm scales), so that ‖T_w⁻¹ε̂‖ = ρ. Typical ρ is about 10× SAM's (0.5).
            **This differs from davda54/sam's ``adaptive=True``**, which uses T_w = |w| without
            η on every tensor, biases and norm parameters included (their issues #22 and #81):
            there a weight at 0 is never perturbed, zero-initialised biases stay unperturbed
            until they move, and the best ρ shifts (2.0 there against 0.5 with Kwon et al.'s
            code on CIFAR-10, their issue #37). Kwon et al.'s code adds η to tensors whose name
            contains "weight" (BatchNorm scales included); here the test is ``ndim > 1``.
        asam_eta: ASAM's offset η ≥ 0 (default 0.01, as in Kwon et al.'s code).
        ascent_every: k ≥ 1. k = 1 is SAM. k > 1 recomputes ε̂ only every k-th step and reuses
            the stored ε̂ (still ‖ε̂‖ = ρ) for the k − 1 steps in between, which then cost one
            forward/backward pass, at θ + ε̂_stale. This "stale ascent" is the simplest
            member of the family that amortises SAM's ascent over k steps, of which LookSAM
            (Liu et al. 2022, "Towards Efficient and Scalable Sharpness-Aware Minimization",
            arXiv 2203.02714) is the refined one: LookSAM instead reuses the component of the
            SAM gradient orthogonal to g and pays its one pass at θ. Average cost
            (k + 1)/k passes per step. A reuse step ignores any gradient present at
            ``first_step``: skip that backward when :attr:`ascent_due` is False, or use
            ``zero_grad(); step(closure)``, which does so by itself.
        **base_kwargs: passed to ``base_optimizer`` (``lr``, ``momentum``, ...).

    Attributes:
        base_optimizer: the base optimizer instance.
        ascent_every: k, see above.
        last_grad_norm: ‖g‖ (ASAM: ‖T_w g‖) at the last fresh ascent, a float.

    ``param_groups`` is the base optimizer's own list, so learning-rate schedulers and
    ``group["lr"] = ...`` act on the base step. ``state_dict()`` includes the base optimizer's
    state (momentum buffers, Adam moments), the stored ε̂ and the stale-ascent counter.

    BatchNorm: the perturbed pass must not update the running statistics; wrap it in
    :func:`~edutools.engine.sam.frozen_running_stats` (see that module for the policy).

    SAM implements :class:`~edutools.engine.training.protocols.TwoPassOptimizer`
    (``requires_closure``, :attr:`perturbed`, :attr:`ascent_due`, ``step(closure)``), which is
    how :func:`edutools.engine.training.train` drives it and freezes BatchNorm statistics.

    Mixed precision (``torch.amp.GradScaler``, through ``second_step(scaler=...)``) and
    DistributedDataParallel: see the recipes in the docstring of :mod:`edutools.engine.sam`.
    """

    # TwoPassOptimizer: edutools.engine.training.train calls step(closure).
    requires_closure = True

    def __init__(self, params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
                 base_optimizer: type[torch.optim.Optimizer] = torch.optim.SGD,
                 rho: float = 0.05, adaptive: bool = False, *, asam_eta: float = 0.01,
                 ascent_every: int = 1, **base_kwargs: Any) -> None:
        rho = check_rho(rho)
        asam_eta = check_asam_eta(asam_eta)
        if not isinstance(adaptive, bool):
            raise TypeError(f"adaptive must be True (ASAM) or False (SAM), got {adaptive!r}")
        _check_base_optimizer(base_optimizer)
        self.ascent_every = check_positive_int(ascent_every, name="ascent_every")
        defaults = dict(sam_rho=rho, sam_adaptive=adaptive, sam_asam_eta=asam_eta,
                        **base_kwargs)
        super().__init__(params, defaults)
        self.base_optimizer = base_optimizer(self.param_groups, **base_kwargs)
        check_param_groups(self.param_groups, owner=f"SAM's {base_optimizer.__name__}")
        # One list of groups for both: schedulers and manual lr changes reach the base step.
        self.param_groups = self.base_optimizer.param_groups
        self.defaults.update(self.base_optimizer.defaults)
        self._age: int | None = None  # steps since ε̂ was computed; None: no ε̂ stored
        # Plain lists, not self.state: per-step lookups keyed by tensors cost more than the
        # arithmetic on a small network. state_dict() packs the stored ε̂ by parameter index.
        self._eps_params: list[torch.Tensor] = []  # parameters with a stored ε̂ ...
        self._eps: list[torch.Tensor] = []  # ... and that ε̂
        self._active: list[torch.Tensor] = []  # parameters now at θ + ε̂ ...
        self._backups: list[torch.Tensor] = []  # ... and their θ (buffers reused across steps)
        self._active_cache: list[torch.Tensor] = []  # the parameters self._backups belongs to
        self._perturbed = False
        self._first_finite = True
        self._fresh = True
        self.last_grad_norm: float = float("nan")

    # -- state -------------------------------------------------------------------------

    @property
    def perturbed(self) -> bool:
        """True between :meth:`first_step` and :meth:`second_step` (parameters at θ + ε̂)."""
        return self._perturbed

    @property
    def ascent_due(self) -> bool:
        """Whether the current step (or the next one, outside a step) computes a fresh ε̂.

        Always True for ``ascent_every=1``. When False, ``first_step`` reuses the stored ε̂ and
        needs no gradient at θ.
        """
        if self._perturbed:
            return self._fresh
        return self._age is None or self._age >= self.ascent_every or not self._eps_params

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a param group to SAM and to the base optimizer (they share ``param_groups``)."""
        if not hasattr(self, "base_optimizer"):  # called from Optimizer.__init__
            super().add_param_group(param_group)
            return
        for key in GROUP_KEYS:
            param_group.setdefault(key, self.defaults[key])
        self.base_optimizer.add_param_group(param_group)

    def state_dict(self) -> dict[str, Any]:
        """SAM's groups plus the base optimizer's state, the stored ε̂ and the step counter."""
        state = super().state_dict()
        state["base_optimizer_state"] = self.base_optimizer.state_dict()["state"]
        index = {id(p): i for i, p in enumerate(self._flat_params())}
        state["sam_perturbation"] = {index[id(p)]: eps.clone()
                                     for p, eps in zip(self._eps_params, self._eps, strict=True)}
        state["sam_age"] = self._age
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load what :meth:`state_dict` returned, base optimizer state included."""
        if not isinstance(state_dict, dict) or "base_optimizer_state" not in state_dict:
            raise ValueError("state_dict is not a SAM state_dict: it has no "
                             "'base_optimizer_state' entry")
        if self._perturbed:
            raise RuntimeError("load_state_dict called between first_step and second_step")
        state_dict = dict(state_dict)
        base_state = state_dict.pop("base_optimizer_state")
        perturbation = state_dict.pop("sam_perturbation", {})
        age = state_dict.pop("sam_age", None)
        super().load_state_dict(state_dict)
        self.base_optimizer.load_state_dict(
            {"state": base_state, "param_groups": state_dict["param_groups"]})
        # Both loads built new group dicts; share the base optimizer's again.
        self.param_groups = self.base_optimizer.param_groups
        params = self._flat_params()
        self._eps_params = [params[i] for i in sorted(perturbation)]
        self._eps = [perturbation[i].to(params[i]) for i in sorted(perturbation)]
        self._age = age if self._eps_params else None
        self._active, self._backups, self._active_cache = [], [], []

    # -- the two half-steps --------------------------------------------------------------

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> None:
        """Move to θ + ε̂, keeping a copy of θ.

        On a fresh step ε̂ comes from the gradients now in ``.grad`` (parameters without a
        gradient are not perturbed). A gradient that holds inf/NaN gives ε̂ = 0 and marks the
        step as skipped when a GradScaler is used. On a reuse step (``ascent_every > 1``) the
        stored ε̂ is applied and ``.grad`` is ignored. ``zero_grad=True`` then clears the
        gradients, ready for the backward pass at θ + ε̂.
        """
        self._first_step(zero_grad)

    def _first_step(self, zero_grad: bool) -> None:
        if self._perturbed:
            raise RuntimeError("first_step() was called twice without second_step() in between; "
                               "the parameters are already at θ + ε̂")
        self._fresh = self.ascent_due
        alpha = 1.0
        if self._fresh:
            params, perturbation, alpha = self._fresh_perturbation()
        else:
            params, perturbation = self._eps_params, self._eps
            self._first_finite = True
        if params:
            if len(params) == len(self._active_cache) and all(
                    map(operator.is_, params, self._active_cache)):
                torch._foreach_copy_(self._backups, params)
            else:
                self._backups = [p.detach().clone() for p in params]
                self._active_cache = list(params)
            torch._foreach_add_(params, perturbation, alpha=alpha)
        self._active = params
        self._perturbed = True
        if zero_grad:
            self._clear_grads()

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False, *,
                    scaler: torch.amp.GradScaler | None = None) -> None:
        """Copy θ back and let the base optimizer step with the gradient now in ``.grad``.

        Args:
            zero_grad: clear the gradients afterwards.
            scaler: a ``torch.amp.GradScaler`` whose ``scale(loss)`` produced the gradients;
                the base step then goes through ``scaler.step`` (unscale, skip on inf/NaN).
                Call ``scaler.update()`` afterwards yourself, as usual.
        """
        self._second_step(zero_grad, scaler)

    def _second_step(self, zero_grad: bool, scaler: torch.amp.GradScaler | None) -> None:
        if not self._perturbed:
            raise RuntimeError("second_step() was called before first_step(): there is no "
                               "perturbation to undo")
        self._restore()
        if scaler is None or not scaler.is_enabled():
            self.base_optimizer.step()
        elif self._first_finite:
            scaler.step(self.base_optimizer)
        else:
            self._record_overflow(scaler)
        self._age = 1 if self._fresh and self._first_finite else (
            None if self._fresh else self._age + 1)
        # LR schedulers check this flag, which their wrapper around step() sets; the two-call
        # protocol never calls step(), so without it StepLR warns about the call order.
        self._opt_called = True
        if zero_grad:
            self.zero_grad()

    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor:
        """One SAM step; ``closure`` does forward + backward and returns the loss.

        Calls the closure at θ first if ε̂ is due and no parameter has a gradient, then at
        θ + ε̂. Returns the loss the closure returned at θ + ε̂.
        """
        if closure is None:
            raise TypeError("SAM.step() needs a closure that runs forward and backward and "
                            "returns the loss (or call first_step() and second_step())")
        if not callable(closure):
            raise TypeError(f"closure must be callable, got {type(closure).__name__}")
        # The C grad-mode setter (restored in finally): 4 context managers cost more per step.
        was_enabled = torch.is_grad_enabled()
        try:
            if self.ascent_due and not any(p.grad is not None for group in self.param_groups
                                           for p in group["params"]):
                torch._C._set_grad_enabled(True)  # even if step() itself runs under no_grad
                _check_loss(closure())
            torch._C._set_grad_enabled(False)
            self._first_step(zero_grad=True)
            try:
                torch._C._set_grad_enabled(True)
                loss = _check_loss(closure())
            except BaseException:
                torch._C._set_grad_enabled(False)
                self._restore()  # never leave the model at θ + ε̂
                raise
            torch._C._set_grad_enabled(False)
            self._second_step(zero_grad=False, scaler=None)
        finally:
            torch._C._set_grad_enabled(was_enabled)
        return loss

    def m_sharpness_step(self, model: nn.Module, loss_fn: Callable, X: torch.Tensor,
                         y: torch.Tensor, *, m: int,
                         freeze_running_stats: bool = True) -> MSharpnessGradient:
        """One step with the m-sharpness gradient: a separate ε̂ per sub-batch of ``m`` samples.

        Computes :func:`~edutools.engine.sam.m_sharpness_gradient` with this optimizer's ρ,
        ``adaptive`` and η (they must be the same in every group), writes it into ``.grad``
        and lets the base optimizer step. Always recomputes ε̂ (``ascent_every`` is ignored).
        ``model``'s trainable parameters must all belong to this optimizer.
        """
        if self._perturbed:
            raise RuntimeError("m_sharpness_step() was called between first_step() and "
                               "second_step()")
        settings = {tuple(group[key] for key in GROUP_KEYS) for group in self.param_groups}
        if len(settings) != 1:
            raise ValueError(f"m_sharpness_step needs one (rho, adaptive, asam_eta) for all "
                             f"param groups, got {sorted(settings)}")
        rho, adaptive, asam_eta = settings.pop()
        mine = {id(p) for group in self.param_groups for p in group["params"]}
        params = [p for p in model.parameters() if p.requires_grad]
        if any(id(p) not in mine for p in params):
            raise ValueError("model has trainable parameters that this optimizer does not own")
        result = m_sharpness_gradient(model, loss_fn, X, y, rho=rho, m=m, adaptive=adaptive,
                                      asam_eta=asam_eta,
                                      freeze_running_stats=freeze_running_stats)
        for p, grad in zip(params, result.grads, strict=True):
            p.grad = grad.clone()
        self.base_optimizer.step()
        self._opt_called = True
        return result

    # -- internals -----------------------------------------------------------------------

    def _flat_params(self) -> list[torch.Tensor]:
        # The order torch.optim.Optimizer.state_dict() numbers parameters in.
        return [p for group in self.param_groups for p in group["params"]]

    def _fresh_perturbation(self) -> tuple[list[torch.Tensor], list[torch.Tensor], float]:
        """(parameters, tensors, α) such that θ + ε̂ = θ + α·tensors; stores ε̂ if needed."""
        # Settings read once per group, not per parameter: visible overhead on a small network.
        params, grads, rhos, flags, etas = [], [], [], [], []
        for group in self.param_groups:
            mine = [p for p in group["params"] if p.grad is not None]  # no gradient: not perturbed
            if not mine:
                continue
            count = len(mine)
            params += mine
            grads += [p.grad for p in mine]
            rhos += [group["sam_rho"]] * count
            flags += [group["sam_adaptive"]] * count
            etas += [group["sam_asam_eta"]] * count
        if not any(flags) and len(set(rhos)) <= 1:
            # SAM with one ρ: ε̂ = (ρ/‖g‖)·g, the formula of ascent_perturbation (the tests
            # check both) with less bookkeeping. With ascent_every=1 nothing needs ε̂ after
            # this step, so it is added in place without being materialised.
            norm = global_norm(grads)
            self.last_grad_norm = norm
            self._first_finite = math.isfinite(norm)
            self._eps_params, self._eps = [], []
            if not self._first_finite or norm == 0.0:  # no direction: stay at θ, store nothing
                return [], [], 0.0
            if self.ascent_every == 1:
                return params, grads, rhos[0] / norm
            self._eps_params = params
            self._eps = list(torch._foreach_mul(grads, rhos[0] / norm))
            return self._eps_params, self._eps, 1.0
        result = ascent_perturbation(params, grads, rho=rhos, adaptive=flags, asam_eta=etas)
        self.last_grad_norm = result.grad_norm
        self._first_finite = result.finite
        if not result.finite:  # no ascent direction: stay at θ, store nothing
            self._eps_params, self._eps = [], []
            return [], [], 1.0
        self._eps_params, self._eps = params, list(result.perturbation)
        return self._eps_params, self._eps, 1.0

    def _clear_grads(self) -> None:
        # What zero_grad() (set_to_none=True) does, without its profiler bookkeeping, which
        # costs more than the loop on a small network.
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    def _restore(self) -> None:
        if self._active:
            with torch.no_grad():
                torch._foreach_copy_(self._active, self._backups)
        self._active = []
        self._perturbed = False

    def _record_overflow(self, scaler: torch.amp.GradScaler) -> None:
        # The first gradient overflowed: skip the base step. So that scaler.update() lowers the
        # scale even if unscale_(self) was not called after the first pass, hand the scaler a
        # non-finite gradient to find (if it has not unscaled the base optimizer already).
        grads = [p.grad for group in self.param_groups for p in group["params"]
                 if p.grad is not None]
        if grads:
            grads[0].fill_(float("inf"))
        try:
            scaler.unscale_(self.base_optimizer)
        except RuntimeError:
            pass  # already unscaled by the caller (e.g. for clipping): nothing more to record


def _check_base_optimizer(base_optimizer: Any) -> None:
    if isinstance(base_optimizer, torch.optim.Optimizer):
        raise TypeError(f"base_optimizer must be an optimizer class such as torch.optim.SGD, "
                        f"not an instance ({type(base_optimizer).__name__} object); SAM builds "
                        f"it from the parameters and **base_kwargs")
    if not (isinstance(base_optimizer, type) and issubclass(base_optimizer, torch.optim.Optimizer)):
        raise TypeError(f"base_optimizer must be a subclass of torch.optim.Optimizer, got "
                        f"{base_optimizer!r}")
    if issubclass(base_optimizer, SAM):
        raise TypeError("base_optimizer cannot be SAM itself")


def _check_loss(loss: Any) -> Any:
    if loss is None:
        raise TypeError("the closure returned None; it must run forward and backward and "
                        "return the loss")
    return loss
