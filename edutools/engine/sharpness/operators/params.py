"""Flat parameter vectors: the layout every sharpness vector uses, and helpers to move between
the model and that vector.

The flat vector is made of the parameters with ``requires_grad=True``, in
``model.named_parameters()`` order. Every vector the sharpness package takes or returns (``v``,
``v0``, eigenvectors, gradients) is such a flat vector of length ``num_params``.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from edutools.ground.models import LossFn
from edutools.ground.validation import check_samples


def trainable_named_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """Return ``(name, parameter)`` for every parameter with ``requires_grad=True``.

    The order (that of ``model.named_parameters()``, shared parameters listed once) defines the
    layout of every flat vector in this module.
    """
    return [(name, p) for name, p in model.named_parameters() if p.requires_grad]


def flatten_params(model: nn.Module) -> torch.Tensor:
    """Return a detached copy of the trainable parameters as one flat vector, shape ``(n_params,)``.

    On the model's device, in its dtype.
    """
    params = _require_trainable(model)
    return torch.cat([p.detach().reshape(-1) for p in params]).clone()


def set_flat_params(model: nn.Module, flat: torch.Tensor) -> None:
    """Copy a flat vector of shape ``(n_params,)`` into the trainable parameters, in place."""
    params = _require_trainable(model)
    _check_flat_vector(flat, sum(p.numel() for p in params), "flat")
    with torch.no_grad():
        for p, part in zip(params, _split_flat(flat, params), strict=True):
            p.copy_(part)


def unflatten_params(model: nn.Module, flat: torch.Tensor) -> list[torch.Tensor]:
    """Split a flat vector of shape ``(n_params,)`` into views shaped like each parameter."""
    params = _require_trainable(model)
    _check_flat_vector(flat, sum(p.numel() for p in params), "flat")
    return _split_flat(flat, params)


@contextmanager
def evaluation_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode for the block, then restore every submodule's own mode.

    Restoring per submodule (not ``model.train(previous)``) keeps mixed states intact, e.g. a
    frozen batch-norm left in eval mode inside a model in train mode.
    """
    previous = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, was_training in previous:
            module.training = was_training


@contextmanager
def preserved_parameters(model: nn.Module) -> Iterator[nn.Module]:
    """Save the trainable parameters and copy them back bit-for-bit when the block ends."""
    saved = [p.detach().clone() for p in _require_trainable(model)]
    try:
        yield model
    finally:
        with torch.no_grad():
            for p, value in zip(_require_trainable(model), saved, strict=True):
                p.copy_(value)


def flat_grad(
    model: nn.Module, loss_fn: LossFn, X: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """Gradient of ``loss_fn(model(X), y)`` as a flat vector, shape ``(n_params,)``.

    Evaluated in eval mode; ``.grad`` fields are left untouched.
    """
    _check_data(X, y)
    with evaluation_mode(model):
        _, gradient = _loss_and_flat_grad(model, loss_fn, X, y)
    return gradient


# ---------------------------------------------------------------------------------------------

def _split_flat(flat: torch.Tensor, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    parts = torch.split(flat, [p.numel() for p in params])
    return [part.view_as(p).to(p.dtype) for part, p in zip(parts, params, strict=True)]


def _require_trainable(model: nn.Module) -> list[nn.Parameter]:
    params = [p for _, p in trainable_named_parameters(model)]
    if not params:
        raise ValueError("model has no parameters with requires_grad=True")
    return params


def _check_flat_vector(v: torch.Tensor, length: int, name: str) -> None:
    if not isinstance(v, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape ({length},), got "
                         f"{type(v).__name__}")
    if tuple(v.shape) != (length,):
        raise ValueError(f"{name} must have shape ({length},), got {tuple(v.shape)}")


def _check_data(X: torch.Tensor, y: torch.Tensor) -> None:
    check_samples(X, y)  # one home for the check: edutools.ground.validation


def _loss_and_flat_grad(
    model: nn.Module, loss_fn: LossFn, X: torch.Tensor, y: torch.Tensor
) -> tuple[float, torch.Tensor]:
    params = _require_trainable(model)
    loss = _scalar_loss(loss_fn, model(X), y)
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    flat = torch.cat(
        [torch.zeros_like(p).reshape(-1) if g is None else g.reshape(-1)
         for g, p in zip(grads, params, strict=True)]
    )
    return float(loss.detach()), flat.detach()


def _scalar_loss(loss_fn: LossFn, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    loss = loss_fn(outputs, targets)
    if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise ValueError(f"loss_fn must return a scalar tensor, got {shape}")
    return loss
