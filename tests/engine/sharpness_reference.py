"""Problem and dense reference Hessians for the sharpness tests, built independently of
edutools.engine.sharpness (``torch.autograd.functional.hessian`` of a ``functional_call``)."""

from __future__ import annotations

import types

import torch
from torch import nn


def mse_half(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The course MSE: 0.5 · mean over samples of the squared error summed over outputs."""
    return 0.5 * ((outputs - targets) ** 2).sum(dim=1).mean()


cross_entropy = nn.CrossEntropyLoss()


def make_mlp(seed: int = 0, dropout: float = 0.0) -> nn.Module:
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Linear(5, 8), nn.Tanh()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers += [nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 3)]
    return nn.Sequential(*layers).double()


def make_data(loss: str, n: int = 40, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 5, generator=generator, dtype=torch.float64)
    if loss == "mse":
        y = torch.randn(n, 3, generator=generator, dtype=torch.float64)
    else:
        y = torch.randint(0, 3, (n,), generator=generator)
    return X, y


LOSSES = {"mse": mse_half, "ce": cross_entropy}


def reference_hessian(model: nn.Module, loss_fn, X, y) -> torch.Tensor:
    """Dense Hessian over the trainable parameters, in eval mode, built without edutools."""
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    flat0 = torch.cat([p.detach().reshape(-1) for _, p in named])
    sizes = [p.numel() for _, p in named]

    def loss_of_flat(flat: torch.Tensor) -> torch.Tensor:
        parts = torch.split(flat, sizes)
        params = {name: part.view_as(p) for (name, p), part in zip(named, parts, strict=True)}
        return loss_fn(torch.func.functional_call(model, params, (X,)), y)

    was_training = model.training
    model.eval()
    try:
        return torch.autograd.functional.hessian(loss_of_flat, flat0)
    finally:
        model.train(was_training)


def reference_grad(model: nn.Module, loss_fn, X, y) -> torch.Tensor:
    params = [p for p in model.parameters() if p.requires_grad]
    was_training = model.training
    model.eval()
    try:
        grads = torch.autograd.grad(loss_fn(model(X), y), params)
    finally:
        model.train(was_training)
    return torch.cat([g.reshape(-1) for g in grads])


def make_problem(loss: str) -> types.SimpleNamespace:
    """The two-loss test problem: model, data, loss, dense reference Hessian and its spectrum
    (eigenvalues descending, eigenvectors as rows)."""
    model = make_mlp(seed=0)
    X, y = make_data(loss)
    loss_fn = LOSSES[loss]
    hessian = reference_hessian(model, loss_fn, X, y)
    eigenvalues, eigenvectors = torch.linalg.eigh(hessian)
    return types.SimpleNamespace(
        model=model, X=X, y=y, loss_fn=loss_fn, hessian=hessian,
        eigenvalues=eigenvalues.flip(0).numpy(), eigenvectors=eigenvectors.flip(1).T,
    )


def snapshot(model: nn.Module):
    return (
        [p.detach().clone() for p in model.parameters()],
        [m.training for m in model.modules()],
    )


def assert_untouched(model: nn.Module, before) -> None:
    params, modes = before
    for p, saved in zip(model.parameters(), params, strict=True):
        assert torch.equal(p.detach(), saved), "parameters changed"
        assert p.grad is None, ".grad was populated"
    assert [m.training for m in model.modules()] == modes, "train/eval modes changed"
