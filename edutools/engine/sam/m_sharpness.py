"""m-sharpness: a separate SAM perturbation for every sub-batch of m samples.

Foret et al. (2021, section 4.1) compute SAM on each accelerator's share of the batch and
average: each sub-batch of m samples gets its own ε̂_c from its own gradient, and the update uses
the average of the sub-batch gradients taken at θ + ε̂_c. Smaller m generalises better in their
experiments; m = batch size is plain SAM. This module computes that average on one device.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from edutools.engine.sam.perturbation import ascent_perturbation, check_asam_eta, check_rho
from edutools.ground.batchnorm import frozen_running_stats
from edutools.ground.validation import check_positive_int


@dataclass(frozen=True)
class MSharpnessGradient:
    """The m-sharpness gradient of one batch.

    Attributes:
        grads: Σ_c (n_c/n)·∇L_c(θ + ε̂_c), one tensor per trainable parameter of the model, in
            the order of ``[p for p in model.parameters() if p.requires_grad]`` (zeros for a
            parameter that no sub-batch loss depends on).
        loss: Σ_c (n_c/n)·L_c(θ), the batch loss at θ (for a mean-reduced loss), a float.
        perturbed_loss: Σ_c (n_c/n)·L_c(θ + ε̂_c), a float.
        chunk_sizes: n_c for each sub-batch, in order; all equal to m except perhaps the last.
        grad_norms: ‖T_w g_c‖ (‖g_c‖ for SAM) for each sub-batch.
    """

    grads: tuple[torch.Tensor, ...]
    loss: float
    perturbed_loss: float
    chunk_sizes: tuple[int, ...]
    grad_norms: tuple[float, ...]

    @property
    def num_chunks(self) -> int:
        """Number of sub-batches."""
        return len(self.chunk_sizes)


def m_sharpness_gradient(model: nn.Module, loss_fn: Callable[[torch.Tensor, torch.Tensor],
                                                             torch.Tensor],
                         X: torch.Tensor, y: torch.Tensor, *, rho: float, m: int,
                         adaptive: bool = False, asam_eta: float = 0.01,
                         freeze_running_stats: bool = True) -> MSharpnessGradient:
    """Average of per-sub-batch SAM gradients; the model's parameters end where they started.

    The batch ``X`` (n, ...) with targets ``y`` (n, ...) is cut in order into sub-batches of
    ``m`` samples. For each sub-batch c: g_c = ∇L_c(θ), ε̂_c = ρ·g_c/‖g_c‖ (ASAM:
    ρ·T_w²g_c/‖T_w g_c‖), and the gradient ∇L_c(θ + ε̂_c); θ is then copied back bit for bit.

    If m does not divide n, the last sub-batch holds the n mod m remaining samples, and every
    sub-batch gradient is weighted by its share n_c/n rather than 1/(number of sub-batches):
    for a ``loss_fn`` that averages over samples this makes ρ = 0 give exactly the gradient of
    ``loss_fn`` on the whole batch, and m ≥ n gives plain SAM on the whole batch.

    Args:
        model: the network; its trainable parameters are perturbed. ``.grad`` is not touched.
        loss_fn: ``loss_fn(model(X_c), y_c)`` → scalar, averaged over samples.
        X, y: the batch, first dimension n.
        rho: radius ρ ≥ 0.
        m: sub-batch size, 1 ≤ m ≤ n.
        adaptive, asam_eta: ASAM as in :class:`~edutools.engine.sam.SAM`.
        freeze_running_stats: keep BatchNorm statistics unchanged in the perturbed passes; the
            passes at θ update them, once per sub-batch (as separate replicas would).
    """
    rho = check_rho(rho)
    asam_eta = check_asam_eta(asam_eta)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    if X.ndim == 0 or y.ndim == 0 or X.shape[0] != y.shape[0]:
        raise ValueError(f"X and y must have the same number of samples (first dimension), got "
                         f"shapes {tuple(X.shape)} and {tuple(y.shape)}")
    n = int(X.shape[0])
    m = check_positive_int(m, name="m")
    if m > n:
        raise ValueError(f"m={m} is larger than the batch ({n} samples)")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters")
    total = [torch.zeros_like(p) for p in params]
    loss_sum = perturbed_sum = 0.0
    sizes, norms = [], []
    for start in range(0, n, m):
        X_c, y_c = X[start:start + m], y[start:start + m]
        weight = X_c.shape[0] / n
        loss, grads = _loss_and_grads(model, loss_fn, X_c, y_c, params)
        present = [i for i, g in enumerate(grads) if g is not None]
        ascent = ascent_perturbation([params[i] for i in present], [grads[i] for i in present],
                                     rho=rho, adaptive=adaptive, asam_eta=asam_eta)
        with torch.no_grad():
            backups = [params[i].detach().clone() for i in present]
            for i, eps in zip(present, ascent.perturbation, strict=True):
                params[i].add_(eps)
        try:
            with frozen_running_stats(model, enabled=freeze_running_stats):
                perturbed_loss, perturbed_grads = _loss_and_grads(model, loss_fn, X_c, y_c,
                                                                  params)
        finally:
            with torch.no_grad():
                for i, backup in zip(present, backups, strict=True):
                    params[i].copy_(backup)
        with torch.no_grad():
            for acc, g in zip(total, perturbed_grads, strict=True):
                if g is not None:
                    acc.add_(g, alpha=weight)
        loss_sum += weight * float(loss)
        perturbed_sum += weight * float(perturbed_loss)
        sizes.append(int(X_c.shape[0]))
        norms.append(ascent.grad_norm)
    return MSharpnessGradient(grads=tuple(total), loss=loss_sum, perturbed_loss=perturbed_sum,
                              chunk_sizes=tuple(sizes), grad_norms=tuple(norms))


def _loss_and_grads(model, loss_fn, X, y, params):
    with torch.enable_grad():
        loss = loss_fn(model(X), y)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise ValueError(f"loss_fn must return a scalar tensor, got {loss!r}")
        grads = torch.autograd.grad(loss, params, allow_unused=True)
    return loss.detach(), grads
