"""Problem and reference formulas for the SAM tests: plain tensors and ``torch.func``, no code
from the package (the tests compare edutools.engine.sam against them)."""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call

LR, MOMENTUM = 0.1, 0.9


# ---------------------------------------------------------------------------------------------
# Problem and reference formulas (plain tensors and torch.func, no code from the package)
# ---------------------------------------------------------------------------------------------

def make_model(seed: int = 0, dtype: torch.dtype = torch.float64) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)).to(dtype)


def make_data(n: int = 24, seed: int = 1, dtype: torch.dtype = torch.float64):
    generator = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 5, generator=generator, dtype=dtype)
    y = torch.randn(n, 3, generator=generator, dtype=dtype)
    return X, y


def loss_fn(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return 0.5 * (outputs - targets).pow(2).sum(dim=1).mean()


def params_of(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def ref_grad(model, theta, X, y):
    """∇L at the parameters ``theta`` (a name → tensor dict), by autograd on a functional call.

    (torch.func.grad would do too, but its first call costs seconds of lazy imports.)
    """
    leaves = {k: v.detach().requires_grad_() for k, v in theta.items()}
    loss = loss_fn(functional_call(model, leaves, (X,)), y)
    return dict(zip(leaves, torch.autograd.grad(loss, list(leaves.values())), strict=True))


def ref_eps(theta, g, *, rho, adaptive=False, eta=0.01):
    """ε̂ = ρ·T²g/‖Tg‖ with T = |w| + η on >1-D tensors, T = 1 otherwise (T = 1 for SAM)."""
    T = {k: (v.abs() + eta) if adaptive and v.ndim > 1 else torch.ones_like(v)
         for k, v in theta.items()}
    norm = torch.sqrt(sum(((T[k] * g[k]) ** 2).sum() for k in g))
    return {k: rho * T[k] ** 2 * g[k] / norm for k in g}


def ref_sam_sgd(model, X, y, *, steps, rho, adaptive=False, eta=0.01, every=1):
    """SAM with heavy-ball SGD (v ← βv + g_SAM, θ ← θ − ηv); ε̂ recomputed when t % every == 0."""
    theta, velocity, eps = params_of(model), None, None
    for t in range(steps):
        if t % every == 0:
            eps = ref_eps(theta, ref_grad(model, theta, X, y), rho=rho, adaptive=adaptive,
                          eta=eta)
        g_sam = ref_grad(model, {k: theta[k] + eps[k] for k in theta}, X, y)
        velocity = (dict(g_sam) if velocity is None
                    else {k: MOMENTUM * velocity[k] + g_sam[k] for k in theta})
        theta = {k: theta[k] - LR * velocity[k] for k in theta}
    return theta


def make_closure(model, X, y, counter=None):
    def closure():
        if counter is not None:
            counter.append(1)
        loss = loss_fn(model(X), y)
        loss.backward()
        return loss
    return closure


def assert_params_close(model, expected, *, tol=1e-10):
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), expected[name], rtol=tol, atol=tol)


def flat(tensors) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])
